// The kernel layer keeps a namespace's link list between passes (the link dump is
// the costliest read of a converged pass). Every change made behind its back must
// still show up in the very next read, with iproute2 making the changes.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeAllNamespaces, openNamespace } from '../src/kernel/namespace.js';
import { createNetns, deleteNetns, ip, requireRoot } from './helpers/netns.js';

const made: string[] = [];
beforeAll(() => requireRoot());
afterAll(() => {
  closeAllNamespaces();
  for (const n of made) deleteNetns(n);
});

const links = async (ns: string) =>
  Object.fromEntries((await openNamespace(ns).readLive({ links: true })).links.map((l) => [l.name, { ifindex: l.ifindex, up: l.up }]));

describe('cached link list', () => {
  it('sees links added, renamed, brought up/down and deleted by someone else at the next read', async () => {
    const ns = createNetns('klc');
    made.push(ns);
    // veth pairs: this kernel has no dummy driver.
    ip('-n', ns, 'link', 'add', 'a0', 'type', 'veth', 'peer', 'name', 'a1');
    const first = await links(ns);
    expect(Object.keys(first).sort()).toEqual(['a0', 'a1', 'lo']);
    expect(first.a0!.up).toBe(false);
    // A read without a change in between answers the same.
    expect(await links(ns)).toEqual(first);

    ip('-n', ns, 'link', 'add', 'b0', 'type', 'veth', 'peer', 'name', 'b1');
    expect(Object.keys(await links(ns)).sort()).toEqual(['a0', 'a1', 'b0', 'b1', 'lo']);

    ip('-n', ns, 'link', 'set', 'a0', 'up');
    expect((await links(ns)).a0!.up).toBe(true);

    ip('-n', ns, 'link', 'set', 'b0', 'name', 'c0');
    const renamed = await links(ns);
    expect(Object.keys(renamed).sort()).toEqual(['a0', 'a1', 'b1', 'c0', 'lo']);

    ip('-n', ns, 'link', 'del', 'a0');
    ip('-n', ns, 'link', 'add', 'a0', 'type', 'veth', 'peer', 'name', 'a1');
    const recreated = await links(ns);
    expect(recreated.a0!.ifindex).not.toBe(first.a0!.ifindex);
    expect(recreated.a0!.ifindex).toBe(Number(/^(\d+):/.exec(ip('-n', ns, '-o', 'link', 'show', 'a0'))![1]));

    // rp_filter follows the same list: an interface that is gone is left out.
    ip('-n', ns, 'link', 'del', 'c0');
    expect(Object.keys((await openNamespace(ns).readLive({ rpFilter: true })).rpFilter).sort()).toEqual(['a0', 'a1', 'all', 'default', 'lo']);
  });

  it('a list handed out is a copy: changing it does not change the next read', async () => {
    const ns = createNetns('klc');
    made.push(ns);
    const k = openNamespace(ns);
    const a = (await k.readLive({ links: true })).links;
    a[0]!.name = 'mangled';
    a.pop();
    expect((await k.readLive({ links: true })).links.map((l) => l.name)).toEqual(['lo']);
  });
});
