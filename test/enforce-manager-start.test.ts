// A manager started while `watch` runs: the real mptcpd exec'd in a namespace the
// daemon keeps converged under `conflicts: fail`. The daemon learns of it from
// the kernel's exec event and asks right before each write, so not one write
// reaches the namespace after mptcpd's exec: what mptcpd set up is left exactly
// as mptcpd left it, and the namespace is reported blocked, naming mptcpd.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConflictChecker } from '../src/apply/conflict-gate.js';
import { openLiveManagers } from '../src/conflicts/index.js';
import { eventually, metrics, metricValue, type Sample } from './helpers/daemon.js';
import { ip, ipEndpoints, ipLimits, veth } from './helpers/netns.js';
import { managerTestScope, startMptcpd, waitFor } from './helpers/real-managers.js';

const { scope, emptyEtc, sources } = managerTestScope('y15');

const writes = (m: Sample[]) => m.filter((s) => s.name === 'mptcp_reconciler_operations_total').reduce((a, s) => a + s.value, 0);

describe('watch, and the real mptcpd started in a namespace it manages', () => {
  it('under conflicts: fail makes zero writes after mptcpd exec and reports the namespace blocked by mptcpd', async () => {
    const ns = scope.netns();
    veth(ns, 'y15m0', undefined, 'y15m1');
    ip('-n', ns, 'addr', 'add', '192.0.2.20/24', 'dev', 'y15m0');
    ip('-n', ns, 'link', 'set', 'y15m0', 'up');
    ip('-n', ns, 'link', 'set', 'y15m1', 'up'); // carrier: mptcpd skips links that are not running
    const file = scope.configFile(`version: 1
namespaces:
  - netns: ${ns}
    conflicts: fail
    limits: { subflows: 1, addAddrAccepted: 1 }
    endpoints:
      - { address: 198.51.100.5, flags: [signal] }
`);
    const live = openLiveManagers();
    sources.push(live);
    expect(live.via).toBe('events');
    const conflicts = new ConflictChecker({ etcRoot: emptyEtc, liveManagers: live, evidenceMaxAgeMs: 30_000, detectFights: true, tolerateConfigErrors: true });
    // A resync every 200 ms: with evidence from an earlier pass, the daemon would undo mptcpd within one.
    const d = await scope.start(file, { resyncMs: 200, conflicts });
    await eventually('converged before mptcpd starts', () => ipEndpoints(ns).length === 1 && ipLimits(ns).subflows === 1);
    const writesBefore = writes(await metrics(d.url));
    expect(writesBefore).toBeGreaterThan(0);

    const md = await startMptcpd(ns, ['--path-manager=addr_adv', '--addr-flags=subflow', '--notify-flags=existing,skip_link_local,skip_loopback']);
    // mptcpd really writes: its endpoint for the veth address, and raised limits.
    await waitFor('mptcpd to add its endpoint', () => ipEndpoints(ns).some((e) => e.address === '192.0.2.20' && e.subflow));
    await waitFor('mptcpd to raise the limits', () => ipLimits(ns).subflows > 1);
    const st = await eventually('the namespace reported blocked by mptcpd', async () => {
      const s = (await (await fetch(`${d.url}/status`)).json()) as { namespaces: Record<string, { conflicts: { manager: string; pid?: number }[]; errors: { message: string }[] }> };
      const n = s.namespaces[ns];
      return n?.conflicts.some((c) => c.manager === 'mptcpd' && c.pid === md.pid) && n.errors.some((e) => /conflicts: fail/.test(e.message)) ? n : undefined;
    });
    expect(st.errors.map((e) => e.message).join('\n')).toMatch(/mptcpd/);
    const passes = (m: Sample[]) => m.filter((s) => s.name === 'mptcp_reconciler_passes_total').reduce((a, s) => a + s.value, 0);
    const morePasses = async (n: number) => {
      const p0 = passes(await metrics(d.url));
      await eventually(`${n} more passes`, async () => passes(await metrics(d.url)) >= p0 + n, 10_000);
    };
    // mptcpd may still be finishing its own setup when the block is first reported.
    await morePasses(3);
    const asMptcpdLeftIt = { endpoints: ipEndpoints(ns), limits: ipLimits(ns) };
    const drift = async () => metricValue(await metrics(d.url), 'mptcp_reconciler_drift_total', { netns: ns }) ?? 0;
    const driftBlocked = await drift();

    // Many resyncs later (each a full pass that finds drift), still nothing written.
    await morePasses(10);
    expect({ endpoints: ipEndpoints(ns), limits: ipLimits(ns) }).toEqual(asMptcpdLeftIt);
    expect(writes(await metrics(d.url))).toBe(writesBefore);
    // Blocked passes see the same difference every time: one drift, not one per pass.
    expect(await drift()).toBe(driftBlocked);
  }, 60_000);
});
