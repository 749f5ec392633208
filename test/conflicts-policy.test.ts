// Fight detection with an injected clock, and the fail | warn | ignore policy.
import { describe, expect, it } from 'vitest';
import {
  FightDetector,
  conflictMetricLabels,
  decide,
  declaredScope,
  formatConflict,
  operationKey,
  pathManagerEvidence,
  type ManagerEvidence,
} from '../src/conflicts/index.js';
import type { DesiredNamespace, Operation } from '../src/core/model.js';

const MIN = 60_000;

function clock(start = 1_000_000) {
  let t = start;
  return { now: () => t, advance: (ms: number) => (t += ms), at: () => t };
}

const ADD = 'add 192.0.2.1';

describe('fight detector', () => {
  it('3 times the same correction within 5 minutes is a fight, and the namespace backs off', () => {
    const c = clock();
    const f = new FightDetector({ now: c.now });
    expect(f.recordCorrections('ns1', [ADD]).fighting).toBe(false); // our own first write
    expect(f.recordCorrections('ns1', [ADD]).fighting).toBe(false);
    c.advance(MIN);
    expect(f.recordCorrections('ns1', [ADD]).fighting).toBe(false);
    c.advance(MIN);
    const s = f.recordCorrections('ns1', [ADD]);
    expect(s).toMatchObject({ fighting: true, since: c.at(), backoffMs: 30_000, nextAllowedAt: c.at() + 30_000, manager: 'unknown' });
    expect(s.contested).toEqual([{ key: ADD, count: 3, firstAt: c.at() - 2 * MIN, lastAt: c.at() }]);
    expect(f.mayApply('ns1')).toBe(false);
    expect(f.mayApply('other')).toBe(true);
    c.advance(30_000);
    expect(f.mayApply('ns1')).toBe(true);
  });

  it('our own first write never counts: the third hand deletion of an endpoint is still repaired', () => {
    const c = clock();
    const f = new FightDetector({ now: c.now });
    f.recordCorrections('ns', [ADD]); // the daemon's first pass adds the endpoint
    for (let deletion = 1; deletion <= 3; deletion++) {
      c.advance(10_000); // someone deletes it by hand; the next pass may repair it
      expect(f.mayApply('ns')).toBe(true);
      f.recordCorrections('ns', [ADD]);
    }
    // Three repairs of the same key within the window: now it is a fight.
    expect(f.state('ns').fighting).toBe(true);
  });

  it('slower repeats, or different changes, are no fight', () => {
    const c = clock();
    const f = new FightDetector({ now: c.now });
    for (let i = 0; i < 6; i++) {
      expect(f.recordCorrections('ns1', [ADD]).fighting).toBe(false);
      c.advance(3 * MIN); // at most 2 in any 5-minute window
    }
    const g = new FightDetector({ now: c.now });
    g.recordCorrections('ns2', ['add 192.0.2.1']);
    g.recordCorrections('ns2', ['add 192.0.2.2']);
    expect(g.recordCorrections('ns2', ['set-limits subflows=4']).fighting).toBe(false);
  });

  it('backoff doubles with every further correction while fighting, up to the maximum', () => {
    const c = clock();
    const f = new FightDetector({ now: c.now, backoffBaseMs: 10_000, backoffMaxMs: 60_000 });
    f.recordCorrections('ns', [ADD]);
    f.recordCorrections('ns', [ADD]);
    f.recordCorrections('ns', [ADD]);
    const seen: number[] = [];
    for (let i = 0; i < 5; i++) {
      const s = f.recordCorrections('ns', [ADD]);
      seen.push(s.backoffMs);
      expect(s.nextAllowedAt).toBe(c.at() + s.backoffMs);
      c.advance(s.backoffMs);
    }
    expect(seen).toEqual([10_000, 20_000, 40_000, 60_000, 60_000]);
  });

  it('stays a fight while backing off, and clears once a correction held for a whole window', () => {
    const c = clock();
    const f = new FightDetector({ now: c.now });
    for (let i = 0; i < 4; i++) f.recordCorrections('ns', [ADD]);
    expect(f.state('ns').fighting).toBe(true);
    c.advance(10 * MIN); // nothing applied (backing off / still contested): no peace yet
    expect(f.state('ns').fighting).toBe(true);
    f.recordCorrections('ns', [ADD]); // applied again after the backoff
    c.advance(MIN);
    f.recordConverged('ns'); // ... and it held
    expect(f.state('ns').fighting).toBe(true);
    c.advance(4 * MIN);
    const s = f.recordConverged('ns');
    expect(s).toMatchObject({ fighting: false, backoffMs: 0, nextAllowedAt: 0, contested: [] });
    expect(f.mayApply('ns')).toBe(true);
  });

  it('keys operations by what they set, value included', () => {
    const ops: Operation[] = [
      { op: 'add', disruptive: false, endpoint: { address: '::ffff:192.0.2.1', flags: ['signal'] } },
      { op: 'delete', disruptive: true, id: 3, endpoint: { address: '2001:DB8::1', port: 8080, flags: [] } },
      { op: 'set-limits', disruptive: false, subflows: 4, from: { subflows: 2, addAddrAccepted: 0 } },
      { op: 'set-sysctl', disruptive: false, key: 'pathManager', sysctl: 'net.mptcp.path_manager', value: 'kernel' },
      { op: 'set-rp-filter', disruptive: false, iface: 'eth0', value: 2, from: 1 },
    ];
    expect(ops.map(operationKey)).toEqual([
      'add 192.0.2.1',
      'delete 2001:db8::1 port 8080',
      'set-limits subflows=4',
      'set-sysctl net.mptcp.path_manager=kernel',
      'set-rp-filter eth0=2',
    ]);
  });
});

const nmProcess: ManagerEvidence = {
  manager: 'NetworkManager',
  kind: 'process',
  active: true,
  pid: 812,
  detail: 'NetworkManager (pid 812) runs in this namespace',
  managesEndpoints: true,
  managesRpFilter: true,
  fix: 'set connection.mptcp-flags=1; or use `conflicts: warn`',
};
const nmConfig: ManagerEvidence = {
  ...nmProcess,
  kind: 'config',
  file: '/etc/NetworkManager/conf.d/50-mptcp.conf',
  line: 3,
  detail: 'global default connection.mptcp-flags=34',
};

describe('decide', () => {
  it('fail: not changed, and the message names manager, pid, file:line and the fix', () => {
    const d = decide('fail', [nmProcess, nmConfig], undefined, { netns: 'host' });
    expect(d.block).toBe(true);
    expect(d.report).toBe(true);
    expect(d.conflicts).toHaveLength(2);
    expect(d.conflicts[0]).toMatchObject({ netns: 'host', manager: 'NetworkManager', blocking: true });
    expect(d.message).toContain('netns host: not changed (conflicts: fail): NetworkManager (pid 812) also manages MPTCP state here');
    expect(d.message).toContain('/etc/NetworkManager/conf.d/50-mptcp.conf:3');
    expect(d.message).toContain('or use `conflicts: warn`');
    expect(JSON.parse(JSON.stringify(d.conflicts))).toEqual(d.conflicts);
    expect(conflictMetricLabels(d.conflicts[0]!)).toEqual({ netns: 'host', manager: 'NetworkManager', kind: 'process' });
  });

  it('warn changes and reports; ignore changes quietly', () => {
    const w = decide('warn', [nmProcess], undefined, { netns: 'host' });
    expect(w).toMatchObject({ block: false, report: true });
    expect(w.message).toMatch(/changing despite NetworkManager \(pid 812\) \(conflicts: warn\)/);
    // Already warn: the fix keeps its real advice and drops "or use conflicts: warn".
    expect(w.message).not.toContain('or use');
    expect(w.conflicts[0]!.fix).toBe('set connection.mptcp-flags=1');
    const i = decide('ignore', [nmProcess], undefined, { netns: 'host' });
    expect(i).toMatchObject({ block: false, report: false, message: '' });
    expect(i.conflicts).toHaveLength(1);
  });

  it('inactive evidence (config of a stopped manager) is reported but never blocks', () => {
    const d = decide('fail', [{ ...nmConfig, active: false }], undefined, { netns: 'host' });
    expect(d.block).toBe(false);
    expect(d.conflicts[0]!.blocking).toBe(false);
    expect(d.message).toMatch(/inactive managers that would conflict if started: NetworkManager/);
    expect(formatConflict(d.conflicts[0]!)).toMatch(/^NetworkManager \(pid 812\) \[inactive, config\] at \/etc\/NetworkManager\/conf.d\/50-mptcp.conf:3: /);
  });

  it('a manager of endpoints does not conflict with an entry that only sets limits and sysctls', () => {
    const desired: DesiredNamespace = {
      netns: 'host', mptcp: { enabled: true }, limits: { subflows: 4 }, endpoints: undefined, rpFilter: {}, prune: true, conflicts: 'fail',
    };
    const d = decide('fail', [nmProcess], undefined, { netns: 'host', scope: declaredScope(desired) });
    expect(d).toMatchObject({ block: false, conflicts: [], message: '' });
    const withEndpoints = decide('fail', [nmProcess], undefined, { netns: 'host', scope: declaredScope({ ...desired, endpoints: [] }) });
    expect(withEndpoints.block).toBe(true);
  });

  it('userspace path manager set by someone else blocks under fail', () => {
    expect(pathManagerEvidence('kernel', undefined)).toBeUndefined();
    expect(pathManagerEvidence('userspace', 'userspace')).toBeUndefined();
    const e = pathManagerEvidence('userspace', undefined)!;
    expect(e).toMatchObject({ manager: 'unknown', kind: 'path-manager', active: true });
    const d = decide('fail', [e], undefined, { netns: 'cni-1', scope: { endpoints: false, limits: true, rpFilter: false } });
    expect(d.block).toBe(true);
    expect(d.message).toMatch(/declare `mptcp: \{ pathManager: userspace \}`/);
  });

  it('a fight defers writes in every mode without blocking the namespace, and is attributed to a detected manager', () => {
    const c = clock();
    const f = new FightDetector({ now: c.now });
    for (let i = 0; i < 4; i++) f.recordCorrections('ns', ['set-limits subflows=4']);
    const state = f.state('ns');

    const unknown = decide('warn', [], state, { netns: 'ns', now: c.at() });
    expect(unknown.block).toBe(false);
    expect(unknown.deferUntil).toBe(c.at() + 30_000);
    expect(unknown.conflicts[0]).toMatchObject({ manager: 'unknown', kind: 'fight', managesLimits: true, managesEndpoints: false });
    expect(unknown.message).toMatch(/set-limits subflows=4 \(x3\)/);

    const alone = decide('fail', [], state, { netns: 'ns', now: c.at() });
    expect(alone).toMatchObject({ block: false, deferUntil: c.at() + 30_000 });
    expect(alone.message).toMatch(/^netns ns: writes backing off: unknown keeps undoing our changes/);

    const failing = decide('fail', [nmProcess], state, { netns: 'ns', now: c.at() });
    expect(failing.block).toBe(true);
    expect(failing.deferUntil).toBeUndefined();
    expect(failing.conflicts.find((x) => x.kind === 'fight')).toMatchObject({ manager: 'NetworkManager', pid: 812 });
  });
});
