// The daemon's conflict gate reuses a namespace's decision while nothing it
// depends on changed, and decides again when something did: the live path
// manager, a fight, the desired state, a new /proc scan.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConflictChecker } from '../src/apply/conflict-gate.js';
import type { DesiredNamespace, LiveNamespace, Operation } from '../src/core/model.js';
import { tempDir } from './helpers/daemon.js';

const t = tempDir('decisions');
afterAll(() => t.cleanup());
for (const d of ['proc', 'etc', 'run', 'usr/lib']) mkdirSync(join(t.dir, d), { recursive: true });
const roots = { procRoot: join(t.dir, 'proc'), etcRoot: join(t.dir, 'etc'), runRoot: join(t.dir, 'run'), usrLibRoot: join(t.dir, 'usr/lib') };

const desired: DesiredNamespace = { netns: 'ns1', mptcp: {}, limits: { subflows: 2 }, endpoints: [], rpFilter: {}, prune: true, conflicts: 'fail' };
const live = (pm: 'kernel' | 'userspace'): LiveNamespace => ({ netns: 'ns1', endpoints: [], limits: { subflows: 2, addAddrAccepted: 0 }, mptcp: { pathManager: pm }, rpFilter: {}, links: [], addresses: [] });
const plan = { netns: 'ns1', operations: [], pending: [], errors: [] };
const op: Operation = { op: 'set-limits', subflows: 2, from: { subflows: 1, addAddrAccepted: 0 }, disruptive: false };

describe('ConflictChecker.gate', () => {
  it('reuses a decision while its inputs are the same, and decides again when one changes', async () => {
    const c = new ConflictChecker({ ...roots, evidenceMaxAgeMs: 60_000, detectFights: true });
    const gate = c.gate({ dev: 1, ino: 2 });
    const v1 = await gate({ netns: 'ns1', desired, live: live('kernel'), plan });
    expect(v1).toMatchObject({ block: false, conflicts: [] });
    expect(await gate({ netns: 'ns1', desired, live: live('kernel'), plan })).toBe(v1);

    // Someone switched the namespace to the userspace path manager: a conflict that blocks under fail.
    const v2 = await gate({ netns: 'ns1', desired, live: live('userspace'), plan });
    expect(v2).toMatchObject({ block: true });
    expect(v2.conflicts.map((x) => x.kind)).toEqual(['path-manager']);

    // Another desired object (a config reload) is decided again, with its own policy.
    const warn = { ...desired, conflicts: 'warn' as const };
    expect(await gate({ netns: 'ns1', desired: warn, live: live('userspace'), plan })).toMatchObject({ block: false, report: true });

    // A fight (the same correction again and again) is never served from the memo.
    const back = await gate({ netns: 'ns1', desired, live: live('kernel'), plan });
    expect(back).toMatchObject({ block: false, conflicts: [] });
    for (let i = 0; i < 4; i++) c.record('ns1', true, [{ ...op, result: 'ok' }]);
    const fight = await gate({ netns: 'ns1', desired, live: live('kernel'), plan });
    expect(fight).not.toBe(back);
    expect(fight.conflicts.map((x) => x.kind)).toEqual(['fight']);
    c.forget('ns1');
    expect(await gate({ netns: 'ns1', desired, live: live('kernel'), plan })).toMatchObject({ block: false, conflicts: [] });
  });

  it('decides again after a new /proc scan', async () => {
    const c = new ConflictChecker({ ...roots, evidenceMaxAgeMs: 0, detectFights: true });
    const gate = c.gate({ dev: 1, ino: 2 });
    const v1 = await gate({ netns: 'ns1', desired, live: live('kernel'), plan });
    expect(await gate({ netns: 'ns1', desired, live: live('kernel'), plan })).not.toBe(v1);
  });
});
