// `linkDown` through the product: the real `watch` daemon manages the client's
// endpoint on its second uplink while real MPTCP connections run over it; `ss`
// and `ip mptcp` are the oracles. A 1 s flap of the peer's side changes nothing
// (the established subflow survives it); a longer one withdraws the endpoint
// after the hold; carrier back restores it with the same id, and the kernel then
// opens a subflow from it on the long-running connection and on one opened
// during the outage. `keep` leaves the endpoint in place.
import type { ChildProcess } from 'node:child_process';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { main } from '../src/cli/main.js';
import { closeAllNamespaces } from '../src/kernel/namespace.js';
import { captureIO } from './helpers/io.js';
import { daemonTestScope, eventually, metrics, metricValue } from './helpers/daemon.js';
import { killPeers, mptcpClient, mptcpServer, waitFor, type Peer } from './helpers/mptcp-peer.js';
import { deleteNetns, ip, ipEndpoints, requireRoot, sh, veth } from './helpers/netns.js';
import { PORT, SERVICE, subflows, twoUplinks } from './helpers/two-uplinks.js';

requireRoot();
const scope = daemonTestScope('lkB');
const made: string[] = [];
const peers: (Peer | ChildProcess)[] = [];
afterEach(async () => {
  killPeers(peers.splice(0));
  await scope.stopDaemons();
});
afterAll(() => {
  try {
    closeAllNamespaces();
  } finally {
    for (const n of made.splice(0)) deleteNetns(n);
    scope.cleanup();
  }
});

const C2 = '203.0.113.2';
/** Not the id file order would give (1): a restore that lets the kernel pick shows. */
const ID = 7;

function config(cli: string, extra = ''): string {
  return `version: 1
namespaces:
  - netns: ${cli}
    limits: { subflows: 2, addAddrAccepted: 0 }
    endpoints:
      - { address: ${C2}, dev: c2, flags: [subflow] }
${extra}`;
}

/** The second uplink's own table and rule, kept by the daemon (a join from c2 needs them). */
const ROUTED = '    sourceRouting: { c2: { table: 102, gateway: 203.0.113.1 } }\n';

/** Two uplinks and the endpoint made by hand with id 7 (the daemon keeps it). */
function setUp(): { cli: string; srv: string } {
  const ns = twoUplinks('lkB', made);
  ip('-n', ns.cli, 'mptcp', 'endpoint', 'add', C2, 'dev', 'c2', 'id', String(ID), 'subflow');
  return ns;
}

const endpointIds = (ns: string) => ipEndpoints(ns).map((e) => [e.address, e.id]);

describe('linkDown under watch, on real traffic', () => {
  it('withdraw: a 1 s flap changes nothing; a long outage withdraws after the hold; carrier back restores id 7 and heals both connections', async () => {
    const { cli, srv } = setUp();
    const d = await scope.start(scope.configFile(config(cli, ROUTED)));
    expect(endpointIds(cli)).toEqual([[C2, ID]]);
    // The first pass wrote c2's table and rule: drift from before the outage, not of it.
    const drift0 = metricValue(await metrics(d.url), 'mptcp_reconciler_drift_total', { netns: cli }) ?? 0;
    peers.push(await mptcpServer(srv, SERVICE, PORT, 2));

    const known = new Set(subflows(cli).map((s) => s.token));
    peers.push(await mptcpClient(cli, SERVICE, PORT));
    const tokenA = await waitFor('connection A', () => subflows(cli).find((s) => !known.has(s.token))?.token);
    const joined = (token: string) => subflows(cli).find((s) => s.token === token && s.src === C2 && s.state === 'ESTAB');
    const firstJoin = await waitFor("A's subflow from c2", () => joined(tokenA));
    const withdrawLines = () => d.lines().filter((l) => String(l.msg).includes('withdrawing its endpoints'));

    // 1 s flap of the server's side: c2 loses carrier, then gets it back.
    ip('-n', srv, 'link', 'set', 's2', 'down');
    await eventually('the daemon saw c2 without carrier', () => /NO-CARRIER/.test(ip('-n', cli, 'link', 'show', 'c2')));
    await new Promise((r) => setTimeout(r, 1000));
    ip('-n', srv, 'link', 'set', 's2', 'up');
    // Past the end of the hold the flap started: nothing happened.
    await new Promise((r) => setTimeout(r, 3000));
    expect(withdrawLines()).toEqual([]);
    expect(endpointIds(cli)).toEqual([[C2, ID]]);
    expect(joined(tokenA)).toEqual(firstJoin);

    // A long outage: withdrawn after the hold, with the link's reason, and not counted as drift.
    ip('-n', srv, 'link', 'set', 's2', 'down');
    const lost = performance.now();
    await waitFor('the endpoint withdrawn', () => ipEndpoints(cli).length === 0 || undefined, 10_000);
    const withdrawnAfter = performance.now() - lost;
    const deleted = d.lines().find((l) => l.msg === 'change applied' && l.op === 'delete');
    expect(deleted?.reason).toBe('link c2 without carrier for 3s');
    const status = (await (await fetch(`${d.url}/status`)).json()) as { namespaces: Record<string, { converged: boolean; withdrawn: { endpoint: string; iface: string; id?: number; reason: string }[] }> };
    expect(status.namespaces[cli]!.converged).toBe(true);
    expect(status.namespaces[cli]!.withdrawn).toMatchObject([{ endpoint: C2, iface: 'c2', id: ID, reason: expect.stringMatching(/^link c2 without carrier since 20\d\d-/) }]);
    let m = await metrics(d.url);
    expect(metricValue(m, 'mptcp_reconciler_withdrawn_endpoints', { netns: cli })).toBe(1);
    expect(metricValue(m, 'mptcp_reconciler_drift_total', { netns: cli }) ?? 0).toBe(drift0);

    // A connection opened during the outage has nothing to join from c2.
    const known2 = new Set(subflows(cli).map((s) => s.token));
    peers.push(await mptcpClient(cli, SERVICE, PORT));
    const tokenB = await waitFor('connection B', () => subflows(cli).find((s) => !known2.has(s.token))?.token);
    expect(joined(tokenB)).toBeUndefined();

    // Carrier back: restored once stable, same id; both connections get their subflow.
    ip('-n', srv, 'link', 'set', 's2', 'up');
    const back = performance.now();
    await waitFor('the endpoint restored', () => ipEndpoints(cli).length > 0 || undefined, 10_000);
    const restoredAfter = performance.now() - back;
    expect(endpointIds(cli)).toEqual([[C2, ID]]);
    await waitFor('subflows from c2 on A and B', () => (joined(tokenA) && joined(tokenB) ? true : undefined), 15_000).catch((e: Error) => {
      throw new Error(`${e.message} (A ${tokenA}, B ${tokenB}):\n${sh('ip', ['netns', 'exec', cli, 'ss', '-Htna', 'dst', SERVICE])}`);
    });
    const healedAfter = performance.now() - back;
    m = await metrics(d.url);
    expect(metricValue(m, 'mptcp_reconciler_withdrawn_endpoints', { netns: cli })).toBe(0);
    expect(metricValue(m, 'mptcp_reconciler_drift_total', { netns: cli }) ?? 0).toBe(drift0);
    expect(withdrawLines()).toHaveLength(1);
    console.log(
      `figures: endpoint withdrawn ${Math.round(withdrawnAfter)} ms after carrier loss (hold 3000), ` +
        `restored ${Math.round(restoredAfter)} ms and both subflows up ${Math.round(healedAfter)} ms after carrier back (settle 1000)`,
    );
  }, 90_000);

  it('keep: an outage longer than the hold leaves the endpoint in place', async () => {
    const { cli, srv } = setUp();
    const d = await scope.start(scope.configFile(config(cli, `${ROUTED}    linkDown: keep\n    linkDownHold: 1s\n`)));
    ip('-n', srv, 'link', 'set', 's2', 'down');
    await eventually('c2 without carrier', () => /NO-CARRIER/.test(ip('-n', cli, 'link', 'show', 'c2')));
    await new Promise((r) => setTimeout(r, 2500));
    expect(endpointIds(cli)).toEqual([[C2, ID]]);
    const status = (await (await fetch(`${d.url}/status`)).json()) as { namespaces: Record<string, { converged: boolean; withdrawn: unknown[] }> };
    expect(status.namespaces[cli]).toMatchObject({ converged: true, withdrawn: [] });
    expect(metricValue(await metrics(d.url), 'mptcp_reconciler_withdrawn_endpoints', { netns: cli })).toBe(0);
  }, 30_000);
});

describe('linkDown when the interface itself goes away', () => {
  it('withdraws the endpoint declared on a vanished interface after the hold and restores it, same id, when the interface is back', async () => {
    const ns = scope.netns();
    const link = () => {
      veth(ns, 'w0', undefined, 'w0p');
      ip('-n', ns, 'addr', 'add', '192.0.2.7/24', 'dev', 'w0');
      for (const l of ['w0', 'w0p']) ip('-n', ns, 'link', 'set', l, 'up');
    };
    link();
    ip('-n', ns, 'mptcp', 'endpoint', 'add', '192.0.2.7', 'dev', 'w0', 'id', '5', 'subflow');
    const d = await scope.start(
      scope.configFile(`version: 1
namespaces:
  - netns: ${ns}
    linkDownHold: 1s
    endpoints:
      - { address: 192.0.2.7, dev: w0, flags: [subflow] }
`),
    );
    expect(endpointIds(ns)).toEqual([['192.0.2.7', 5]]);
    ip('-n', ns, 'link', 'del', 'w0');
    await waitFor('the endpoint withdrawn', () => ipEndpoints(ns).length === 0 || undefined, 10_000);
    expect(d.lines().find((l) => l.msg === 'change applied' && l.op === 'delete')?.reason).toBe('link w0 is gone for 1s');
    link();
    await waitFor('the endpoint restored', () => ipEndpoints(ns).length > 0 || undefined, 10_000);
    expect(endpointIds(ns)).toEqual([['192.0.2.7', 5]]);
    expect(ipEndpoints(ns)[0]).toMatchObject({ dev: 'w0', subflow: true });
  }, 30_000);
});

describe('linkDown under apply and plan', () => {
  it('a one-shot run cannot tell how long a link has been without carrier: apply adds the endpoint, plan and show say so; watch started then withdraws it until carrier', async () => {
    const ns = scope.netns();
    veth(ns, 'c2', undefined, 'p2');
    ip('-n', ns, 'addr', 'add', `${C2}/24`, 'dev', 'c2');
    // The peer stays down: c2 is up without carrier.
    ip('-n', ns, 'link', 'set', 'c2', 'up');
    const file = scope.configFile(config(ns));
    const run = async (...argv: string[]) => {
      const t = captureIO({ env: { NODE_NAME: 'test-node' } });
      return { code: await main(argv, t.io), out: t.out() };
    };
    const note = 'note: endpoints[203.0.113.2]: link c2 without carrier now; kept anyway (a one-shot run cannot tell for how long; watch withdraws it after 3s)';
    const plan = await run('plan', '-f', file);
    expect(plan.out).toContain(note);
    const applied = await run('apply', '-f', file);
    expect(applied.code).toBe(0);
    expect(applied.out).toContain(note);
    expect(ipEndpoints(ns).map((e) => [e.address, e.dev])).toEqual([[C2, 'c2']]);
    // show says it too, next to the endpoint.
    expect((await run('show', '--netns', ns)).out).toContain('# interface c2 has no carrier (or is down): under linkDown: withdraw, watch withdraws this endpoint after linkDownHold');
    const j = JSON.parse((await run('plan', '-f', file, '-o', 'json')).out) as { namespaces: { netns: string; linkDown?: unknown[] }[] };
    expect(j.namespaces.find((n) => n.netns === ns)?.linkDown).toEqual([
      { endpoint: C2, iface: 'c2', state: 'no-carrier', reason: note.replace('note: endpoints[203.0.113.2]: ', '') },
    ]);

    // watch, started now, cannot tell for how long either, but it can add the endpoint
    // back the moment the link is usable: it withdraws at once, and restores the same id.
    const id = ipEndpoints(ns)[0]!.id;
    const d = await scope.start(file);
    await waitFor('the endpoint withdrawn', () => ipEndpoints(ns).length === 0 || undefined, 10_000);
    expect(d.lines().find((l) => l.msg === 'change applied' && l.op === 'delete')?.reason).toBe('link c2 without carrier when first seen (for how long is unknown)');
    ip('-n', ns, 'link', 'set', 'p2', 'up');
    await waitFor('the endpoint restored', () => ipEndpoints(ns).length > 0 || undefined, 10_000);
    expect(endpointIds(ns)).toEqual([[C2, id]]);
  });
});
