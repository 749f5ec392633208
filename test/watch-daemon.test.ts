// The watch daemon on the real kernel, real files and real HTTP: every namespace
// here is the test's own; the config never names `host`.
import { spawn } from 'node:child_process';
import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ip, ipEndpoints, ipLimits, requireRoot, sh, uniqueName, veth } from './helpers/netns.js';
import { ConflictChecker } from '../src/apply/conflict-gate.js';
import { daemonTestScope, eventually, metrics, metricValue, tempDir, type Sample } from './helpers/daemon.js';

const scope = daemonTestScope('wd');
const { netns, configFile, start } = scope;

const addresses = (ns: string) => ipEndpoints(ns).map((e) => e.address).sort();

beforeAll(() => requireRoot());
afterEach(() => scope.stopDaemons());
afterAll(() => scope.cleanup());

describe('watch daemon', () => {
  it('converges at start, repairs drift made by hand within one resync, and reports it', async () => {
    const ns = netns();
    const file = configFile(`version: 1
namespaces:
  - netns: ${ns}
    limits: { subflows: 3, addAddrAccepted: 2 }
    endpoints:
      - { address: 192.0.2.1, flags: [signal] }
      - { address: 198.51.100.1, flags: [subflow, backup] }
`);
    const d = await start(file, { resyncMs: 300 });
    expect(addresses(ns)).toEqual(['192.0.2.1', '198.51.100.1']);
    expect(ipLimits(ns)).toEqual({ subflows: 3, addAddrAccepted: 2 });
    expect((await fetch(`${d.url}/readyz`)).status).toBe(200);
    expect((await fetch(`${d.url}/healthz`)).status).toBe(200);

    // Drift the kernel sends no event for: only the resync finds it.
    const id = ipEndpoints(ns).find((e) => e.address === '192.0.2.1')!.id;
    ip('-n', ns, 'mptcp', 'endpoint', 'delete', 'id', String(id));
    ip('-n', ns, 'mptcp', 'endpoint', 'add', '203.0.113.9', 'subflow');
    ip('-n', ns, 'mptcp', 'limits', 'set', 'subflows', '1');
    await eventually('drift repaired', () => addresses(ns).join() === '192.0.2.1,198.51.100.1' && ipLimits(ns).subflows === 3, 3000);

    const m: Sample[] = await eventually('drift counted', async () => {
      const s = await metrics(d.url);
      return (metricValue(s, 'mptcp_reconciler_drift_total', { netns: ns }) ?? 0) >= 2 ? s : undefined;
    });
    expect(metricValue(m, 'mptcp_reconciler_converged', { netns: ns })).toBe(1);
    expect(metricValue(m, 'mptcp_reconciler_config_valid')).toBe(1);
    expect(metricValue(m, 'mptcp_reconciler_passes_total', { result: 'changed' })).toBeGreaterThanOrEqual(2);
    expect(metricValue(m, 'mptcp_reconciler_operations_total', { op: 'add' })).toBeGreaterThanOrEqual(3);
    expect(metricValue(m, 'mptcp_reconciler_operations_total', { op: 'delete' })).toBeGreaterThanOrEqual(1);
    expect(metricValue(m, 'mptcp_reconciler_operations_total', { op: 'set-limits' })).toBeGreaterThanOrEqual(2);
    expect(metricValue(m, 'mptcp_reconciler_pass_duration_seconds_count')).toBeGreaterThanOrEqual(2);
    expect(metricValue(m, 'process_resident_memory_bytes')).toBeGreaterThan(0);
    const hash = m.find((s) => s.name === 'mptcp_reconciler_config_info')!.labels.hash;
    expect(hash).toMatch(/^[0-9a-f]{12}$/);

    const st = (await (await fetch(`${d.url}/status`)).json()) as {
      config: { hash: string; generation: number; valid: boolean };
      namespaces: Record<string, { converged: boolean; lastPass: string; pendingOperations: unknown[]; errors: unknown[]; conflicts: unknown[] }>;
    };
    expect(st.config).toMatchObject({ hash, generation: 1, valid: true });
    expect(st.namespaces[ns]).toMatchObject({ converged: true, pendingOperations: [], errors: [], conflicts: [] });
    expect(Date.parse(st.namespaces[ns]!.lastPass)).not.toBeNaN();

    // Every log line of a pass carries its pass id and namespace, once each (d.lines()
    // parses every line strictly: a key twice fails); a pass that changed something says so.
    const passLines = d.lines().filter((l) => l.msg === 'pass' && l.netns === ns);
    expect(passLines.some((l) => l.result === 'changed')).toBe(true);
    const changeLines = d.lines().filter((l) => l.msg === 'change applied');
    expect(changeLines.length).toBeGreaterThanOrEqual(3);
    for (const l of [...passLines, ...changeLines]) {
      expect(l.passId).toMatch(/^[0-9a-f]{8}$/);
      expect(l.netns).toBe(ns);
    }

    // Read-only: nothing but GET/HEAD.
    expect((await fetch(`${d.url}/status`, { method: 'POST' })).status).toBe(405);
  });

  it('turns an address added to or removed from an interface into an endpoint at once (no resync involved)', async () => {
    const ns = netns();
    veth(ns, 'wan0', undefined, 'wan0p');
    ip('-n', ns, 'link', 'set', 'wan0', 'up');
    ip('-n', ns, 'link', 'set', 'wan0p', 'up'); // carrier: watch withdraws endpoints of a link without it
    const file = configFile(`version: 1
namespaces:
  - netns: ${ns}
    endpoints:
      - { dev: wan0, family: ipv4, flags: [subflow] }
`);
    // The resync never fires during this test: only the address events can act.
    await start(file, { resyncMs: 3_600_000 });
    expect(ipEndpoints(ns)).toEqual([]);
    ip('-n', ns, 'addr', 'add', '192.0.2.33/24', 'dev', 'wan0');
    await eventually('endpoint for the new address', () => addresses(ns).join() === '192.0.2.33', 1000);
    expect(ipEndpoints(ns)[0]).toMatchObject({ subflow: true, dev: 'wan0' });
    ip('-n', ns, 'addr', 'del', '192.0.2.33/24', 'dev', 'wan0');
    await eventually('endpoint gone with the address', () => ipEndpoints(ns).length === 0, 1000);
  });

  it('survives a namespace deleted under it, configures namespaces created later, and an interface that comes back', async () => {
    const prefix = uniqueName('wl');
    const later = `${prefix}-a`;
    const file = configFile(`version: 1
namespaces:
  - netns: "${prefix}-*"
    limits: { subflows: 5 }
    endpoints:
      - { dev: lan0, family: ipv4, flags: [signal] }
`);
    const d = await start(file, { resyncMs: 3_600_000 });
    expect(Object.keys(d.daemon.status().namespaces)).toEqual([]);

    ip('netns', 'add', later);
    scope.track(later);
    await eventually('new namespace configured', () => ipLimits(later).subflows === 5);

    veth(later, 'lan0', undefined, 'lan0p');
    ip('-n', later, 'link', 'set', 'lan0', 'up');
    ip('-n', later, 'link', 'set', 'lan0p', 'up'); // carrier: watch withdraws endpoints of a link without it
    ip('-n', later, 'addr', 'add', '198.51.100.5/24', 'dev', 'lan0');
    await eventually('endpoint on lan0', () => addresses(later).join() === '198.51.100.5');

    // The interface goes away and comes back.
    ip('-n', later, 'link', 'del', 'lan0');
    await eventually('endpoint gone with its interface', () => ipEndpoints(later).length === 0);
    veth(later, 'lan0', undefined, 'lan0p');
    ip('-n', later, 'link', 'set', 'lan0', 'up');
    ip('-n', later, 'link', 'set', 'lan0p', 'up'); // carrier: watch withdraws endpoints of a link without it
    ip('-n', later, 'addr', 'add', '198.51.100.6/24', 'dev', 'lan0');
    await eventually('endpoint on the new lan0', () => addresses(later).join() === '198.51.100.6');

    // The namespace is deleted under the daemon: dropped quietly, daemon healthy.
    ip('netns', 'del', later);
    await eventually('namespace dropped', () => !(later in d.daemon.status().namespaces));
    expect((await fetch(`${d.url}/healthz`)).status).toBe(200);
    const m = await metrics(d.url);
    expect(metricValue(m, 'mptcp_reconciler_converged', { netns: later })).toBeUndefined();

    // ... and re-created under the same name: a fresh namespace, configured again.
    ip('netns', 'add', later);
    await eventually('re-created namespace configured', () => ipLimits(later).subflows === 5);
    expect(d.daemon.status().namespaces[later]?.converged).toBe(true);
  });

  it('observe mode writes nothing and reports what it would do', async () => {
    const ns = netns();
    ip('-n', ns, 'mptcp', 'endpoint', 'add', '203.0.113.50', 'signal');
    const before = ipEndpoints(ns);
    const file = configFile(`version: 1
namespaces:
  - netns: ${ns}
    limits: { subflows: 7 }
    endpoints:
      - { address: 192.0.2.77, flags: [subflow] }
`);
    const d = await start(file, { mode: 'observe', resyncMs: 200 });
    // Several resyncs pass; nothing changes.
    await eventually('a few passes', async () => (metricValue(await metrics(d.url), 'mptcp_reconciler_passes_total', { result: 'observed' }) ?? 0) >= 3);
    expect(ipEndpoints(ns)).toEqual(before);
    expect(ipLimits(ns).subflows).toBe(2);
    const st = d.daemon.status().namespaces[ns]!;
    expect(st.converged).toBe(false);
    expect(st.pendingOperations.map((o) => o.op).sort()).toEqual(['add', 'delete', 'set-limits']);
    const m = await metrics(d.url);
    expect(metricValue(m, 'mptcp_reconciler_converged', { netns: ns })).toBe(0);
    expect(metricValue(m, 'mptcp_reconciler_operations_total', { op: 'add' }) ?? 0).toBe(0);
    // One difference, seen on every pass and never repaired: one drift, not one per pass.
    expect(metricValue(m, 'mptcp_reconciler_drift_total', { netns: ns })).toBe(1);
    expect(d.lines().some((l) => l.msg === 'would apply (observe mode)' && l.op === 'add')).toBe(true);
  });

  it('leaves a namespace alone where another manager runs (conflicts: fail) and exports who', async () => {
    const ns = netns();
    const t = tempDir('conflict');
    scope.onCleanup(t.cleanup);
    // A process whose name is mptcpd, living in the test namespace only.
    const fake = join(t.dir, 'mptcpd');
    copyFileSync('/bin/sleep', fake);
    const child = spawn('ip', ['netns', 'exec', ns, fake, '60'], { stdio: 'ignore' });
    try {
      const file = configFile(`version: 1
namespaces:
  - netns: ${ns}
    endpoints:
      - { address: 192.0.2.88, flags: [signal] }
`);
      await eventually('fake mptcpd running', () => sh('pgrep', ['-x', 'mptcpd']).trim() !== '');
      // An empty /etc: only the running process counts as evidence.
      const d = await start(file, { conflicts: new ConflictChecker({ procRoot: '/proc', etcRoot: t.dir, evidenceMaxAgeMs: 30_000, detectFights: true, tolerateConfigErrors: true }) });
      const m = await metrics(d.url);
      expect(metricValue(m, 'mptcp_reconciler_conflict', { netns: ns, manager: 'mptcpd' })).toBe(1);
      expect(metricValue(m, 'mptcp_reconciler_passes_total', { result: 'conflict' })).toBeGreaterThanOrEqual(1);
      expect(ipEndpoints(ns)).toEqual([]);
      const st = d.daemon.status().namespaces[ns]!;
      expect(st.conflicts.map((c) => c.manager)).toContain('mptcpd');
      expect(st.converged).toBe(false);
    } finally {
      child.kill('SIGKILL');
    }
  });
});
