// The real mptcpd and the live daemon: a manager exec'd in the middle of a pass
// stops that pass before its next write (the exec event moves the watch's
// generation, and the executor asks between operations); and a steady conflict
// (mptcpd running, under `warn` and under `fail`) is logged when it starts, not
// on every resync.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConflictChecker } from '../src/apply/conflict-gate.js';
import { openLiveManagers, type LiveManagerSource } from '../src/conflicts/index.js';
import type { Operation } from '../src/core/model.js';
import { realDeps } from '../src/daemon/deps.js';
import { netnsIdentity } from '../src/kernel/netns.js';
import { main } from '../src/cli/main.js';
import { metrics, type Sample, type TestDaemon } from './helpers/daemon.js';
import { captureIO } from './helpers/io.js';
import { ip, ipEndpoints, ipLimits, veth } from './helpers/netns.js';
import { managerTestScope, startMptcpd, waitFor, type RealManager } from './helpers/real-managers.js';

const { scope, emptyEtc, sources } = managerTestScope('cfC');
const MPTCPD_ARGS = ['--path-manager=addr_adv', '--addr-flags=subflow', '--notify-flags=existing,skip_link_local,skip_loopback'];

/** A namespace where mptcpd has something to manage: an address on a veth with carrier. */
function managedNamespace(address: string): string {
  const ns = scope.netns();
  veth(ns, 'cfCm0', undefined, 'cfCm1');
  ip('-n', ns, 'addr', 'add', `${address}/24`, 'dev', 'cfCm0');
  ip('-n', ns, 'link', 'set', 'cfCm0', 'up');
  ip('-n', ns, 'link', 'set', 'cfCm1', 'up'); // carrier: mptcpd skips links that are not running
  return ns;
}

function checker(live: LiveManagerSource): ConflictChecker {
  return new ConflictChecker({ etcRoot: emptyEtc, liveManagers: live, evidenceMaxAgeMs: 30_000, detectFights: true, tolerateConfigErrors: true });
}

const sum = (m: Sample[], name: string) => m.filter((s) => s.name === name).reduce((a, s) => a + s.value, 0);
const ours = ['203.0.113.1', '203.0.113.2', '203.0.113.3'];

describe('a manager started in the middle of a pass', () => {
  it('under conflicts: fail, the pass stops before its next write: none of its changes reach the kernel', async () => {
    const ns = managedNamespace('192.0.2.20');
    const file = scope.configFile(`version: 1
namespaces:
  - netns: ${ns}
    conflicts: fail
    limits: { subflows: 3, addAddrAccepted: 6 }
    endpoints:
${ours.map((a) => `      - { address: ${a}, flags: [signal] }`).join('\n')}
`);
    const live = openLiveManagers();
    sources.push(live);
    expect(live.via).toBe('events');
    let md: RealManager | undefined;
    let startedAt = 0;
    const real = realDeps();
    // The seam: mptcpd is exec'd right before the pass's second operation, and the
    // exec event has arrived before that operation is queued.
    const deps = realDeps({
      reconcile: (k, d, o) =>
        real.reconcile(k, d, {
          ...o,
          beforeOperation: async (_op: Operation, i: number) => {
            if (i !== 1 || md) return;
            md = await startMptcpd(ns, MPTCPD_ARGS);
            startedAt = Date.now();
            const id = netnsIdentity(ns)!;
            await waitFor('the exec event', () => live.managersIn(id).some((p) => p.pid === md!.pid));
          },
        } as typeof o),
    });
    const d = await scope.start(file, { resyncMs: 60_000, conflicts: checker(live), deps });
    expect(md).toBeDefined();
    const st = (await (await fetch(`${d.url}/status`)).json()) as { namespaces: Record<string, { errors: { message: string }[]; pendingOperations: Operation[] }> };
    expect(st.namespaces[ns]!.errors.map((e) => e.message).join('\n')).toMatch(new RegExp(`stopped before the next write: mptcpd \\(pid ${md!.pid}\\) started during the pass`));
    // Not one of the pass's writes went out: what is there is mptcpd's alone.
    expect(sum(await metrics(d.url), 'mptcp_reconciler_operations_total')).toBe(0);
    expect(ipEndpoints(ns).filter((e) => ours.includes(e.address))).toEqual([]);
    await waitFor('mptcpd to add its endpoint', () => ipEndpoints(ns).some((e) => e.address === '192.0.2.20'));
    expect(ipLimits(ns)).not.toEqual({ subflows: 3, addAddrAccepted: 6 });
    // The retry is a pass that sees mptcpd and blocks the namespace, naming it.
    const blocked = await waitFor('blocked by mptcpd', async () => {
      const s = (await (await fetch(`${d.url}/status`)).json()) as { blocked: string[] };
      return s.blocked.find((b) => b.startsWith(ns) && /mptcpd/.test(b));
    });
    expect(blocked).toBe(`${ns} (mptcpd)`);
    expect(sum(await metrics(d.url), 'mptcp_reconciler_operations_total')).toBe(0);
    console.log(`manager exec -> namespace reported blocked: ${Date.now() - startedAt} ms or less, 0 writes`);
  }, 60_000);
});

describe('a steady conflict is logged once', () => {
  async function steady(d: TestDaemon, seconds: number): Promise<{ lines: Record<string, unknown>[]; passes: number; minutes: number }> {
    const before = d.lines().length;
    const p0 = sum(await metrics(d.url), 'mptcp_reconciler_passes_total');
    const t0 = Date.now();
    await new Promise((r) => setTimeout(r, seconds * 1000));
    return {
      lines: d.lines().slice(before).filter((l) => Number(l.level) >= 30),
      passes: sum(await metrics(d.url), 'mptcp_reconciler_passes_total') - p0,
      minutes: (Date.now() - t0) / 60_000,
    };
  }

  it('mptcpd running under warn in one namespace and under fail in another: a line when each conflict starts, none per resync', async () => {
    const warned = managedNamespace('192.0.2.21');
    const failed = managedNamespace('192.0.2.22');
    const entry = (ns: string, policy: string) => `  - netns: ${ns}
    conflicts: ${policy}
    limits: { subflows: 2, addAddrAccepted: 2 }
    endpoints:
      - { address: 203.0.113.9, flags: [signal] }
`;
    const file = scope.configFile(`version: 1\nnamespaces:\n${entry(warned, 'warn')}${entry(failed, 'fail')}`);
    const live = openLiveManagers();
    sources.push(live);
    const d = await scope.start(file, { resyncMs: 300, conflicts: checker(live) });
    await startMptcpd(warned, MPTCPD_ARGS);
    const blocker = await startMptcpd(failed, MPTCPD_ARGS);
    const said = (ns: string, lines: Record<string, unknown>[]) => lines.filter((l) => l.netns === ns && /mptcpd/.test(String(l.msg)));
    await waitFor('both conflicts reported', () => said(warned, d.lines()).length > 0 && said(failed, d.lines()).length > 0, 15_000, 200);
    // mptcpd's own setup and our answer to it settle first.
    await new Promise((r) => setTimeout(r, 2000));

    const s = await steady(d, 20);
    const perMin = (ns: string) => (s.lines.filter((l) => l.netns === ns).length / s.minutes).toFixed(1);
    console.log(`steady conflict, mptcpd running, resync 300 ms, ${s.passes} passes in ${(s.minutes * 60).toFixed(0)} s: warn ${perMin(warned)} lines/min, fail ${perMin(failed)} lines/min`);
    expect(s.passes).toBeGreaterThan(40);
    expect(said(warned, s.lines)).toEqual([]);
    expect(said(failed, s.lines)).toEqual([]);
    expect(s.lines.filter((l) => l.netns === failed)).toEqual([]);

    // mptcpd stops: the end is said once, and the namespace is managed again.
    await blocker.stop();
    await waitFor('the conflict end logged', () => d.lines().some((l) => l.netns === failed && /conflicts ended/.test(String(l.msg))), 15_000, 200);
    await waitFor('the blocked namespace enforced', () => ipEndpoints(failed).some((e) => e.address === '203.0.113.9') && ipLimits(failed).subflows === 2, 15_000, 200);
  }, 90_000);
});

describe('doctor next to one running mptcpd', () => {
  async function cli(...argv: string[]) {
    const t = captureIO({ env: { NODE_NAME: 'test-node' } });
    const code = await main(argv, t.io);
    return { code, out: t.out() };
  }
  type Findings = { namespaces: { netns: string; findings: { severity: string; code: string; message: string; evidence: string[] }[] }[] };
  const findings = (out: string, ns: string) => (JSON.parse(out) as Findings).namespaces.find((n) => n.netns === ns)?.findings ?? [];

  it('says so without -f; with -f its severity is what apply does (fail: error and exit 1, warn: warning and exit 0)', async () => {
    const ns = managedNamespace('192.0.2.23');
    const md = await startMptcpd(ns, MPTCPD_ARGS);
    const alone = await cli('doctor', '-o', 'json', '--netns', ns, '--etc-root', emptyEtc);
    const said = findings(alone.out, ns).filter((f) => f.code === 'MPTCP026');
    expect(said).toMatchObject([{ severity: 'info' }]);
    expect(said[0]!.evidence.join('\n')).toContain(`pid ${md.pid}`);
    expect(alone.code).toBe(0);

    for (const [policy, severity, exit] of [['fail', 'error', 1], ['warn', 'warning', 0]] as const) {
      const file = scope.configFile(`version: 1\nnamespaces:\n  - netns: ${ns}\n    conflicts: ${policy}\n    endpoints:\n      - { address: 203.0.113.7, flags: [signal] }\n`);
      const doc = await cli('doctor', '-o', 'json', '-f', file, '--netns', ns, '--etc-root', emptyEtc);
      expect(findings(doc.out, ns).filter((f) => f.code === 'MPTCP010').map((f) => f.severity)).toEqual([severity]);
      const apply = await cli('apply', '-f', file, '--netns', ns, '--etc-root', emptyEtc);
      expect([policy, doc.code, apply.code]).toEqual([policy, exit, exit]);
    }
  }, 60_000);
});
