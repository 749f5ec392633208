// Fight detection with an injected clock, and the fail | warn | ignore policy.
import { describe, expect, it } from 'vitest';
import {
  FightDetector,
  conflictMetricLabels,
  decide,
  declaredScope,
  formatConflict,
  operationKey,
  operationSubjects,
  withoutSuspended,
  pathManagerEvidence,
  type ManagerEvidence,
} from '../src/conflicts/index.js';
import type { DesiredNamespace, LiveNamespace, Operation } from '../src/core/model.js';

const MIN = 60_000;

function clock(start = 1_000_000) {
  let t = start;
  return { now: () => t, advance: (ms: number) => (t += ms), at: () => t };
}

const ADD: Operation = { op: 'add', disruptive: false, endpoint: { address: '192.0.2.1', flags: ['signal'] } };
const EP = 'endpoint 192.0.2.1';
const LIMIT: Operation = { op: 'set-limits', disruptive: false, subflows: 4, from: { subflows: 2, addAddrAccepted: 0 } };
const RP: Operation = { op: 'set-rp-filter', disruptive: false, iface: 'eth1', value: 2, from: 1 };

function liveWith(addresses: string[]): LiveNamespace {
  return {
    netns: 'ns',
    endpoints: [],
    limits: { subflows: 0, addAddrAccepted: 0 },
    mptcp: {},
    rpFilter: {},
    links: [{ ifindex: 2, name: 'wwan0', up: true, lowerUp: true }],
    addresses: addresses.map((address) => ({ ifindex: 2, family: 4 as const, address, prefixlen: 24, scope: 'global' as const, tentative: false, dadfailed: false, deprecated: false, temporary: false })),
  };
}

describe('fight detector', () => {
  it('3 repairs of one key within 5 minutes are a fight: that key alone is suspended, for the base backoff', () => {
    const c = clock();
    const f = new FightDetector({ now: c.now });
    expect(f.recordPass('ns1', [ADD, LIMIT]).fighting).toBe(false); // our own first writes
    expect(f.recordPass('ns1', [ADD]).fighting).toBe(false);
    c.advance(MIN);
    expect(f.recordPass('ns1', [ADD]).fighting).toBe(false);
    c.advance(MIN);
    const s = f.recordPass('ns1', [ADD]);
    expect(s).toMatchObject({ fighting: true, since: c.at(), backoffMs: 10_000, nextAllowedAt: c.at() + 10_000, manager: 'unknown' });
    expect(s.suspended).toEqual([{ key: EP, change: 'add 192.0.2.1', repairs: 3, since: c.at(), until: c.at() + 10_000, backoffMs: 10_000 }]);
    expect([...f.suspendedKeys('ns1')]).toEqual([EP]);
    expect(f.suspendedKeys('other').size).toBe(0);
    c.advance(10_000);
    // The backoff is over: the key is tried again (still a fight until a write of it holds).
    expect(f.suspendedKeys('ns1').size).toBe(0);
    expect(f.state('ns1').fighting).toBe(true);
  });

  it('our own first write never counts: the third hand deletion of an endpoint is still repaired', () => {
    const c = clock();
    const f = new FightDetector({ now: c.now });
    f.recordPass('ns', [ADD]); // the daemon's first pass adds the endpoint
    for (let deletion = 1; deletion <= 3; deletion++) {
      c.advance(10_000); // someone deletes it by hand; the next pass may repair it
      expect(f.suspendedKeys('ns').has(EP)).toBe(false);
      f.recordPass('ns', [ADD]);
    }
    // Three repairs of the same key within the window: now it is a fight.
    expect(f.state('ns').fighting).toBe(true);
  });

  it('an address that goes and comes back moves the environment: the endpoint follows it and it is never a fight', () => {
    const c = clock();
    const f = new FightDetector({ now: c.now });
    const del: Operation = { op: 'delete', disruptive: true, id: 1, endpoint: { address: '192.0.2.1', flags: [] } };
    f.observe('ns', liveWith(['192.0.2.1']));
    f.recordPass('ns', [ADD]);
    for (let flap = 0; flap < 5; flap++) {
      c.advance(1000);
      f.observe('ns', liveWith([]));
      f.recordPass('ns', [del]);
      c.advance(1000);
      f.observe('ns', liveWith(['192.0.2.1']));
      expect(f.recordPass('ns', [ADD]).fighting).toBe(false);
    }
    // The same undoing with the addresses standing still is a fight.
    for (let i = 0; i < 3; i++) {
      f.observe('ns', liveWith(['192.0.2.1']));
      f.recordPass('ns', [ADD]);
    }
    expect(f.state('ns').suspended.map((k) => k.key)).toEqual([EP]);
  });

  it('slower repeats, or different keys, are no fight; limits do not follow addresses', () => {
    const c = clock();
    const f = new FightDetector({ now: c.now });
    for (let i = 0; i < 6; i++) {
      expect(f.recordPass('ns1', [ADD]).fighting).toBe(false);
      c.advance(3 * MIN); // at most 2 in any 5-minute window
    }
    const g = new FightDetector({ now: c.now });
    g.recordPass('ns2', [{ ...ADD, endpoint: { address: '192.0.2.1', flags: [] } }]);
    g.recordPass('ns2', [{ ...ADD, endpoint: { address: '192.0.2.2', flags: [] } }]);
    expect(g.recordPass('ns2', [LIMIT]).fighting).toBe(false);
    const h = new FightDetector({ now: c.now });
    for (let i = 0; i < 4; i++) {
      h.observe('ns3', liveWith([`192.0.2.${i + 1}`]));
      h.recordPass('ns3', [LIMIT]);
    }
    expect(h.state('ns3').suspended.map((k) => k.key)).toEqual(['limit subflows']);
  });

  it('backoff doubles with every further repair of the key while it is fought over, up to the maximum', () => {
    const c = clock();
    const f = new FightDetector({ now: c.now, backoffBaseMs: 10_000, backoffMaxMs: 60_000 });
    for (let i = 0; i < 3; i++) f.recordPass('ns', [RP]);
    const seen: number[] = [];
    for (let i = 0; i < 5; i++) {
      const s = f.recordPass('ns', [RP]);
      seen.push(s.backoffMs);
      expect(s.nextAllowedAt).toBe(c.at() + s.backoffMs);
      c.advance(s.backoffMs);
    }
    expect(seen).toEqual([10_000, 20_000, 40_000, 60_000, 60_000]);
  });

  it('a fight ends once our write of the key held for a whole window', () => {
    const c = clock();
    const f = new FightDetector({ now: c.now });
    for (let i = 0; i < 4; i++) f.recordPass('ns', [ADD]);
    expect(f.state('ns').fighting).toBe(true);
    c.advance(10 * MIN); // held back meanwhile (still contested): no peace yet
    f.recordPass('ns', [], [ADD]);
    expect(f.state('ns').fighting).toBe(true);
    f.recordPass('ns', [ADD]); // tried again after the backoff
    c.advance(MIN);
    f.recordPass('ns', []); // ... and it held
    expect(f.state('ns').fighting).toBe(true);
    c.advance(4 * MIN);
    const s = f.recordPass('ns', []);
    expect(s).toMatchObject({ fighting: false, backoffMs: 0, nextAllowedAt: 0, suspended: [] });
  });

  it('holds back only the operations of suspended keys (and what depends on them)', () => {
    const both: Operation = { op: 'set-limits', disruptive: false, subflows: 4, addAddrAccepted: 2, from: { subflows: 2, addAddrAccepted: 0 } };
    const del: Operation = { op: 'delete', disruptive: true, id: 1, endpoint: { address: '192.0.2.1', flags: [] } };
    const pinned: Operation = { op: 'add', disruptive: false, endpoint: { address: '192.0.2.9', id: 1, flags: [] } };
    const ops = [del, pinned, both, RP];
    const { run, held } = withoutSuspended(ops, new Set([EP, 'limit subflows']), (i) => (i === 1 ? 0 : -1));
    expect(run).toEqual([{ op: 'set-limits', disruptive: false, addAddrAccepted: 2, from: both.from }, RP]);
    expect(held).toEqual([del, pinned, { op: 'set-limits', disruptive: false, subflows: 4, from: both.from }]);
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
    // What a fight suspends: the key, whatever value either side wants.
    expect(ops.map(operationSubjects)).toEqual([
      ['endpoint 192.0.2.1'],
      ['endpoint 2001:db8::1 port 8080'],
      ['limit subflows'],
      ['sysctl net.mptcp.path_manager'],
      ['rp_filter eth0'],
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

  it('a fight never blocks a namespace, in any mode, and is attributed to a detected manager', () => {
    const c = clock();
    const f = new FightDetector({ now: c.now });
    for (let i = 0; i < 4; i++) f.recordPass('ns', [LIMIT]);
    const state = f.state('ns');

    const unknown = decide('warn', [], state, { netns: 'ns', now: c.at() });
    expect(unknown.block).toBe(false);
    expect(unknown.conflicts[0]).toMatchObject({ manager: 'unknown', kind: 'fight', blocking: false, managesLimits: true, managesEndpoints: false });
    expect(unknown.message).toMatch(/limit subflows \(repaired 3x; left alone for 10s, until /);

    const alone = decide('fail', [], state, { netns: 'ns', now: c.at() });
    expect(alone.block).toBe(false);
    expect(alone.message).toMatch(/^netns ns: keys in a fight left alone: unknown keeps undoing our changes/);

    const failing = decide('fail', [nmProcess], state, { netns: 'ns', now: c.at() });
    expect(failing.block).toBe(true);
    expect(failing.conflicts.find((x) => x.kind === 'fight')).toMatchObject({ manager: 'NetworkManager', pid: 812 });
  });
});
