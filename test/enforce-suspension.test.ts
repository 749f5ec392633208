// A fight suspends only the key fought over, on the real kernel with the real
// daemon: a fighter (a shell loop of `ip mptcp endpoint flush` every 0.2 s)
// undoes our endpoint; that endpoint is left alone with a backoff, while a limit
// and an rp_filter set by hand are still repaired at once, and under
// `conflicts: fail` the namespace is never blocked (the fighter is no manager
// process). When the fighter stops, the endpoint is enforced again once its
// backoff ends; SIGHUP ends the suspension at once. The environment moving a
// key (an address going and coming back) and hand deletions made now and then
// are followed every time and never called a fight. iproute2 is the oracle.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ConflictChecker } from '../src/apply/conflict-gate.js';
import { openLiveManagers, type FightOptions, type LiveManagerSource } from '../src/conflicts/index.js';
import { atomicWrite, daemonTestScope, metrics, metricValue, type Sample, type TestDaemon } from './helpers/daemon.js';
import { ip, ipEndpoints, ipLimits, nsSysctl, requireRoot, setNsSysctl, veth } from './helpers/netns.js';
import { waitFor } from './helpers/wait.js';

const scope = daemonTestScope('cfC');
// No manager configuration on the machine counts here: the fighter is the only other writer.
const emptyEtc = mkdtempSync(join(tmpdir(), 'cfC-etc-'));
const sources: LiveManagerSource[] = [];
const fighters: ChildProcess[] = [];

beforeAll(() => requireRoot());
afterEach(async () => {
  for (const f of fighters.splice(0)) stopFighter(f);
  await scope.stopDaemons();
  for (const s of sources.splice(0)) s.close();
});
afterAll(() => {
  scope.cleanup();
  rmSync(emptyEtc, { recursive: true, force: true });
});

const EP = '198.51.100.5';
const KEY = `endpoint ${EP}`;

/** Someone else undoing our endpoint every 0.2 s (its own process group, stopped by its pid). */
function startFighter(ns: string): ChildProcess {
  const f = spawn('bash', ['-c', `while :; do ip -n ${ns} mptcp endpoint flush; sleep 0.2; done`], { detached: true, stdio: 'ignore' });
  fighters.push(f);
  return f;
}

function stopFighter(f: ChildProcess): void {
  if (f.exitCode !== null || f.pid === undefined) return;
  try {
    process.kill(-f.pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

/** A namespace with two interfaces up (cfCa0 for addresses, cfCb0 for rp_filter). */
function testNamespace(): string {
  const ns = scope.netns();
  veth(ns, 'cfCa0', undefined, 'cfCa1');
  veth(ns, 'cfCb0', undefined, 'cfCb1');
  for (const l of ['cfCa0', 'cfCa1', 'cfCb0', 'cfCb1']) ip('-n', ns, 'link', 'set', l, 'up');
  return ns;
}

async function daemonFor(file: string, fightOptions: FightOptions): Promise<{ d: TestDaemon; conflicts: ConflictChecker }> {
  const live = openLiveManagers();
  sources.push(live);
  const conflicts = new ConflictChecker({ etcRoot: emptyEtc, liveManagers: live, evidenceMaxAgeMs: 30_000, detectFights: true, tolerateConfigErrors: true, fightOptions });
  // Endpoint changes send no notification: a short resync is how the daemon sees the fighter.
  const d = await scope.start(file, { resyncMs: 300, conflicts });
  return { d, conflicts };
}

interface NsStatus {
  suspended: { key: string; until: string; backoffSeconds: number }[];
  errors: { message: string; op?: string }[];
  conflicts: { kind?: string }[];
}
async function status(d: TestDaemon, ns: string): Promise<{ ns: NsStatus; blocked: string[] }> {
  const s = (await (await fetch(`${d.url}/status`)).json()) as { blocked: string[]; namespaces: Record<string, NsStatus> };
  return { ns: s.namespaces[ns]!, blocked: s.blocked };
}

const hasEndpoint = (ns: string, address = EP) => ipEndpoints(ns).some((e) => e.address === address);
const sum = (m: Sample[], name: string) => m.filter((s) => s.name === name).reduce((a, s) => a + s.value, 0);
/** Log lines at info or above (what a default `watch` prints). */
const printed = (d: TestDaemon) => d.lines().filter((l) => Number(l.level) >= 30);

describe('a fight suspends only the contested key', () => {
  it('fighter every 0.2 s: its endpoint is suspended, a limit and a hand-set strict rp_filter are still repaired, never blocked under fail; after it stops the endpoint comes back', async () => {
    const ns = testNamespace();
    const file = scope.configFile(`version: 1
namespaces:
  - netns: ${ns}
    conflicts: fail
    limits: { subflows: 2, addAddrAccepted: 2 }
    endpoints:
      - { address: ${EP}, flags: [signal] }
    rpFilter: { cfCb0: loose }
`);
    const { d } = await daemonFor(file, { backoffBaseMs: 3000, backoffMaxMs: 12_000 });
    await waitFor('converged', () => hasEndpoint(ns) && ipLimits(ns).subflows === 2 && nsSysctl(ns, 'net.ipv4.conf.cfCb0.rp_filter') === '2', 15_000, 200);

    startFighter(ns);
    const suspended = await waitFor('the endpoint suspended', async () => (await status(d, ns)).ns.suspended.find((k) => k.key === KEY), 15_000, 200);
    expect(suspended?.backoffSeconds).toBeGreaterThanOrEqual(3);
    expect(metricValue(await metrics(d.url), 'mptcp_reconciler_suspended_keys', { netns: ns })).toBe(1);

    // During the fight, other keys changed by hand are repaired as usual.
    setNsSysctl(ns, 'net.ipv4.conf.cfCb0.rp_filter', '1');
    ip('-n', ns, 'mptcp', 'limits', 'set', 'subflows', '0', 'add_addr_accepted', '0');
    await waitFor('strict rp_filter repaired during the fight', () => nsSysctl(ns, 'net.ipv4.conf.cfCb0.rp_filter') === '2', 10_000, 200);
    await waitFor('limits repaired during the fight', () => ipLimits(ns).subflows === 2 && ipLimits(ns).addAddrAccepted === 2, 10_000, 200);

    // A steady fight: never blocked, and the log says little.
    const linesBefore = printed(d).length;
    const started = Date.now();
    const passesBefore = sum(await metrics(d.url), 'mptcp_reconciler_passes_total');
    while (Date.now() - started < 15_000) {
      const s = await status(d, ns);
      expect(s.blocked).toEqual([]);
      expect(s.ns.errors.filter((e) => e.op === 'conflict')).toEqual([]);
      await new Promise((r) => setTimeout(r, 1000));
    }
    const minutes = (Date.now() - started) / 60_000;
    const lines = printed(d).length - linesBefore;
    const passes = sum(await metrics(d.url), 'mptcp_reconciler_passes_total') - passesBefore;
    console.log(`steady fight (fighter every 0.2 s, resync 300 ms): ${(lines / minutes).toFixed(1)} log lines/min over ${passes} passes in ${(minutes * 60).toFixed(0)} s`);
    // Far fewer lines than passes: the suspension is said when it starts and when the key is tried again, not every pass.
    expect(lines).toBeLessThan(passes / 4);

    // The fighter stops: the endpoint is back once its backoff ends.
    stopFighter(fighters.pop()!);
    const stopped = Date.now();
    await waitFor('the endpoint enforced again', () => hasEndpoint(ns), 30_000, 100);
    console.log(`recovery after the fighter stopped: ${Date.now() - stopped} ms (backoff base 3 s, cap 12 s)`);
    await waitFor('no key suspended', async () => metricValue(await metrics(d.url), 'mptcp_reconciler_suspended_keys', { netns: ns }) === 0, 15_000, 300);
    expect(ipLimits(ns)).toEqual({ subflows: 2, addAddrAccepted: 2 });
  }, 120_000);

  it('SIGHUP on the live daemon ends the suspension at once', async () => {
    const ns = testNamespace();
    const file = scope.configFile(`version: 1
namespaces:
  - netns: ${ns}
    conflicts: warn
    endpoints:
      - { address: ${EP}, flags: [signal] }
`);
    // A backoff far longer than the test: only SIGHUP can bring the endpoint back in time.
    const { d } = await daemonFor(file, { backoffBaseMs: 10 * 60_000, backoffMaxMs: 10 * 60_000 });
    await waitFor('converged', () => hasEndpoint(ns), 15_000, 200);
    const fighter = startFighter(ns);
    await waitFor('the endpoint suspended', async () => (await status(d, ns)).ns.suspended.some((k) => k.key === KEY), 15_000, 200);
    // The pass that started the suspension had just repaired the endpoint: the fighter's next flush is the last word.
    await waitFor("the fighter's deletion after the suspension", () => !hasEndpoint(ns), 5000, 50);
    stopFighter(fighter);
    // Suspended means left alone: several resyncs later it is still missing.
    const p0 = sum(await metrics(d.url), 'mptcp_reconciler_passes_total');
    await waitFor('5 more passes', async () => sum(await metrics(d.url), 'mptcp_reconciler_passes_total') >= p0 + 5, 10_000, 200);
    expect(hasEndpoint(ns)).toBe(false);

    const hup = Date.now();
    await d.daemon.reload('SIGHUP');
    await waitFor('the endpoint back after SIGHUP', () => hasEndpoint(ns), 5000, 50);
    console.log(`SIGHUP -> endpoint enforced again: ${Date.now() - hup} ms`);
    await waitFor('no key suspended', async () => (await status(d, ns)).ns.suspended.length === 0, 5000, 200);
  }, 60_000);

  it('a config change ends the suspension too', async () => {
    const ns = testNamespace();
    const text = (subflows: number) => `version: 1
namespaces:
  - netns: ${ns}
    conflicts: fail
    limits: { subflows: ${subflows} }
    endpoints:
      - { address: ${EP}, flags: [signal] }
`;
    const file = scope.configFile(text(1));
    const { d } = await daemonFor(file, { backoffBaseMs: 10 * 60_000, backoffMaxMs: 10 * 60_000 });
    await waitFor('converged', () => hasEndpoint(ns), 15_000, 200);
    const fighter = startFighter(ns);
    await waitFor('the endpoint suspended', async () => (await status(d, ns)).ns.suspended.some((k) => k.key === KEY), 15_000, 200);
    // The pass that started the suspension had just repaired the endpoint: the fighter's next flush is the last word.
    await waitFor("the fighter's deletion after the suspension", () => !hasEndpoint(ns), 5000, 50);
    stopFighter(fighter);
    expect(hasEndpoint(ns)).toBe(false);
    atomicWrite(file, text(2));
    await waitFor('the new config applied, the endpoint with it', () => ipLimits(ns).subflows === 2 && hasEndpoint(ns), 10_000, 100);
    expect((await status(d, ns)).ns.suspended).toEqual([]);
  }, 60_000);
});

describe('not a fight: the environment, or a person now and then', () => {
  it('a dev address flapping 4 times is followed every time: the endpoint is derived again, never suspended', async () => {
    const ns = testNamespace();
    ip('-n', ns, 'addr', 'add', '192.0.2.30/24', 'dev', 'cfCa0', 'nodad');
    const file = scope.configFile(`version: 1
namespaces:
  - netns: ${ns}
    conflicts: fail
    endpoints:
      - { dev: cfCa0, flags: [subflow] }
`);
    // The defaults' threshold (3 repairs in 5 minutes): without telling the environment apart, the third flap would be a fight.
    const { d } = await daemonFor(file, {});
    await waitFor('the derived endpoint', () => hasEndpoint(ns, '192.0.2.30'), 15_000, 200);
    for (let flap = 1; flap <= 4; flap++) {
      ip('-n', ns, 'addr', 'del', '192.0.2.30/24', 'dev', 'cfCa0');
      await waitFor(`flap ${flap}: the endpoint of the removed address goes`, () => !hasEndpoint(ns, '192.0.2.30'), 10_000, 100);
      ip('-n', ns, 'addr', 'add', '192.0.2.30/24', 'dev', 'cfCa0', 'nodad');
      await waitFor(`flap ${flap}: the endpoint is derived again`, () => hasEndpoint(ns, '192.0.2.30'), 10_000, 100);
    }
    const s = await status(d, ns);
    expect(s.ns.suspended).toEqual([]);
    expect(s.ns.conflicts.filter((c) => c.kind === 'fight')).toEqual([]);
    expect(metricValue(await metrics(d.url), 'mptcp_reconciler_suspended_keys', { netns: ns })).toBe(0);
  }, 90_000);

  it('three hand deletions of our endpoint, spaced apart, are each repaired', async () => {
    const ns = testNamespace();
    const file = scope.configFile(`version: 1
namespaces:
  - netns: ${ns}
    conflicts: fail
    endpoints:
      - { address: ${EP}, flags: [signal] }
`);
    const { d } = await daemonFor(file, {});
    await waitFor('converged', () => hasEndpoint(ns), 15_000, 200);
    for (let deletion = 1; deletion <= 3; deletion++) {
      await new Promise((r) => setTimeout(r, 1000));
      ip('-n', ns, 'mptcp', 'endpoint', 'flush');
      expect(hasEndpoint(ns)).toBe(false);
      await waitFor(`hand deletion ${deletion} repaired`, () => hasEndpoint(ns), 10_000, 100);
    }
    expect((await status(d, ns)).blocked).toEqual([]);
  }, 60_000);
});
