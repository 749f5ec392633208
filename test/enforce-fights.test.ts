// Fight records follow the namespace, not its name: a namespace deleted and made
// again under the same name (same name, new st_dev/st_ino) starts without the
// old namespace's fight. The gate here reads an empty /proc and /etc of the
// test's own, so the only conflict it can find is the fight.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConflictChecker } from '../src/apply/conflict-gate.js';
import type { DesiredNamespace, LiveNamespace, Operation } from '../src/core/model.js';
import { tempDir } from './helpers/daemon.js';

const t = tempDir('y15-fights');
afterAll(() => t.cleanup());
for (const d of ['proc', 'etc', 'run', 'usr/lib']) mkdirSync(join(t.dir, d), { recursive: true });
const roots = { procRoot: join(t.dir, 'proc'), etcRoot: join(t.dir, 'etc'), runRoot: join(t.dir, 'run'), usrLibRoot: join(t.dir, 'usr/lib') };

const desired: DesiredNamespace = { netns: 'y15a', mptcp: {}, limits: { subflows: 2 }, endpoints: [], rpFilter: {}, prune: true, conflicts: 'warn' };
const live: LiveNamespace = { netns: 'y15a', endpoints: [], limits: { subflows: 1, addAddrAccepted: 0 }, mptcp: { pathManager: 'kernel' }, rpFilter: {}, links: [], addresses: [] };
const op: Operation = { op: 'set-limits', subflows: 2, from: { subflows: 1, addAddrAccepted: 0 }, disruptive: false };
const plan = { netns: 'y15a', operations: [op], pending: [], errors: [] };

describe('fight state and namespace identity', () => {
  it('a namespace re-created under the same name is enforced at once, without the old fight', async () => {
    const c = new ConflictChecker({ ...roots, detectFights: true });
    const first = { dev: 4, ino: 4026532001 };
    await c.check({ netns: 'y15a', desired, live, plan }, first);
    // Our first write, then three repairs of the same key: a fight, backing off.
    for (let i = 0; i < 4; i++) c.record('y15a', true, [{ ...op, result: 'ok' }]);
    const fighting = await c.check({ netns: 'y15a', desired, live, plan }, first);
    expect(fighting.conflicts.map((x) => x.kind)).toEqual(['fight']);
    expect([...(fighting.suspend ?? [])]).toEqual(['limit subflows']);

    // Deleted and created again: same name, another namespace.
    const again = await c.check({ netns: 'y15a', desired, live, plan }, { dev: 4, ino: 4026532999 });
    expect(again.conflicts).toEqual([]);
    expect(again.suspend).toBeUndefined();
  });
});

describe('SIGHUP and fights', () => {
  it('clearFights ends every backoff, so the next pass writes again', async () => {
    const c = new ConflictChecker({ ...roots, detectFights: true });
    for (let i = 0; i < 4; i++) c.record('y15b', true, [{ ...op, result: 'ok' }]);
    expect(c.fights!.suspendedKeys('y15b').size).toBe(1);
    expect(c.clearFights()).toBe(true);
    expect(c.fights!.suspendedKeys('y15b').size).toBe(0);
    expect(c.clearFights()).toBe(false);
  });
});
