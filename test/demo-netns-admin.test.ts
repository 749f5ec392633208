// Namespace creation without `ip` (used by the demo): checked with iproute2.
import { afterAll, describe, expect, it } from 'vitest';
import { createNetns, createVethPair, deleteNetns, inNetns } from '../src/kernel/netns-admin.js';
import { ip, ipTry, requireRoot, uniqueName } from './helpers/netns.js';

requireRoot();
const a = uniqueName('nsadm');
const b = uniqueName('nsadm');

afterAll(() => {
  for (const n of [a, b]) ipTry('netns', 'del', n);
});

describe('netns-admin', () => {
  it('creates two namespaces joined by a veth with addresses, then removes them', async () => {
    const hostLinks = ip('-j', 'link', 'show');
    const hostNs = ip('netns', 'identify', String(process.pid));
    createNetns(a);
    createNetns(b);
    expect(ip('netns', 'list')).toContain(a);
    // The main thread is back home: same namespace as before.
    expect(ip('netns', 'identify', String(process.pid))).toBe(hostNs);
    await createVethPair(
      { netns: a, ifname: 'v-srv', addresses: ['192.0.2.1/24', '2001:db8::1/64'] },
      { netns: b, ifname: 'v-cli', addresses: ['192.0.2.2/24', '198.51.100.1/24'] },
    );
    const addrA = JSON.parse(ip('-n', a, '-j', 'addr', 'show', 'dev', 'v-srv')) as { addr_info: { local: string }[]; flags: string[] }[];
    expect(addrA[0]!.addr_info.map((x) => x.local)).toEqual(expect.arrayContaining(['192.0.2.1', '2001:db8::1']));
    expect(addrA[0]!.flags).toContain('UP');
    const addrB = JSON.parse(ip('-n', b, '-j', 'addr', 'show', 'dev', 'v-cli')) as { addr_info: { local: string }[] }[];
    expect(addrB[0]!.addr_info.map((x) => x.local)).toEqual(expect.arrayContaining(['192.0.2.2', '198.51.100.1']));
    // Nothing appeared in the host namespace.
    expect(ip('-j', 'link', 'show')).toBe(hostLinks);
    expect(inNetns(a, () => 42)).toBe(42);
    expect(() => createNetns(a)).toThrow(/EEXIST/);
    deleteNetns(a);
    deleteNetns(b);
    expect(ip('netns', 'list')).not.toContain(a);
    expect(ip('netns', 'list')).not.toContain(b);
  });
  it('refuses names that are paths or globs', () => {
    expect(() => createNetns('../etc')).toThrow(/\//);
    expect(() => createNetns('x*')).toThrow(/plain name/);
  });
});
