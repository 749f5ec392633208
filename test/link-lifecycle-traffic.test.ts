// The link-lifecycle decisions on real traffic, driven by this test in place of
// the daemon: link state read through the kernel layer, withdraw and restore
// done with the kernel layer's endpoint writes, `ss` and `ip mptcp` as oracles.
// A 1 s flap of the peer's side changes nothing (the established subflow
// survives it); a longer one withdraws the endpoint after the hold; bringing the
// link back restores it with the same id, and the kernel then opens a subflow
// from it on the long-running connection and on one opened during the outage.
import { afterAll, describe, expect, it } from 'vitest';
import { LinkLifecycle, type LinkDecision } from '../src/core/link-lifecycle.js';
import { closeAllNamespaces, openNamespace } from '../src/kernel/namespace.js';
import { killPeers, mptcpClient, mptcpServer, waitFor, type Peer } from './helpers/mptcp-peer.js';
import { deleteNetns, ip, ipEndpoints, requireRoot, sh } from './helpers/netns.js';
import { installSourceRouting, PORT, SERVICE, subflows, twoUplinks } from './helpers/two-uplinks.js';

requireRoot();
const made: string[] = [];
const peers: Peer[] = [];
afterAll(() => {
  killPeers(peers);
  closeAllNamespaces();
  for (const n of made) deleteNetns(n);
});

const C2 = '203.0.113.2';
const ID = 7;

describe('link lifecycle on real traffic', () => {
  it('a short flap changes nothing; a long one withdraws after the hold; carrier back restores the same id and heals both connections', async () => {
    const { cli, srv } = twoUplinks('x19', made);
    installSourceRouting(cli);
    const k = openNamespace(cli);
    const c2 = (await k.readLive({ links: true })).links.find((l) => l.name === 'c2')!;
    await k.addEndpoint({ address: C2, id: ID, flags: ['subflow'], dev: 'c2', ifindex: c2.ifindex });
    peers.push(await mptcpServer(srv, SERVICE, PORT, 2));

    const known = new Set(subflows(cli).map((s) => s.token));
    peers.push(await mptcpClient(cli, SERVICE, PORT));
    const tokenA = await waitFor('connection A', () => subflows(cli).find((s) => !known.has(s.token))?.token);
    const joined = (token: string) => subflows(cli).find((s) => s.token === token && s.src === C2 && s.state === 'ESTAB');
    const firstJoin = await waitFor('A\'s subflow from c2', () => joined(tokenA));

    const life = new LinkLifecycle({ policy: 'withdraw', holdMs: 3000, settleMs: 1000 });
    const decisions: LinkDecision[] = [];
    // What the daemon does on each link event or timer: observe, decide, act.
    const step = async (): Promise<void> => {
      const now = performance.now();
      life.observeAll((await k.readLive({ links: true })).links, now);
      for (const d of life.decide(now).decisions) {
        decisions.push(d);
        if (d.action === 'withdraw') {
          const eps = (await k.dumpEndpoints()).filter((e) => e.address === C2);
          life.rememberIds(eps);
          for (const e of eps) await k.deleteEndpoint(e.id);
        } else {
          const id = life.idFor(C2);
          await k.addEndpoint({ address: C2, ...(id !== undefined && { id }), flags: ['subflow'], dev: 'c2', ifindex: c2.ifindex });
          life.forgetId(C2);
        }
      }
    };
    const runFor = async (ms: number) => {
      const end = performance.now() + ms;
      while (performance.now() < end) {
        await step();
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    await step();

    // 1 s flap of the server's side: c2 loses carrier, then gets it back.
    ip('-n', srv, 'link', 'set', 's2', 'down');
    await runFor(1000);
    ip('-n', srv, 'link', 'set', 's2', 'up');
    await runFor(2500);
    expect(decisions).toEqual([]);
    expect(ipEndpoints(cli).map((e) => [e.address, e.id])).toEqual([[C2, ID]]);
    expect(joined(tokenA)).toEqual(firstJoin);

    // A long outage: withdrawn after the hold.
    ip('-n', srv, 'link', 'set', 's2', 'down');
    const lost = performance.now();
    for (let i = 0; i < 100 && decisions.length === 0; i++) await runFor(100);
    expect(decisions.map((d) => d.action)).toEqual(['withdraw']);
    expect(decisions[0]!.after).toBeGreaterThanOrEqual(3000);
    const withdrawnAfter = performance.now() - lost;
    expect(ipEndpoints(cli)).toEqual([]);
    // A connection opened during the outage has nothing to join from c2.
    const known2 = new Set(subflows(cli).map((s) => s.token));
    peers.push(await mptcpClient(cli, SERVICE, PORT));
    const tokenB = await waitFor('connection B', () => subflows(cli).find((s) => !known2.has(s.token))?.token);
    expect(joined(tokenB)).toBeUndefined();

    // Carrier back: restored once stable, same id; both connections get their subflow.
    ip('-n', srv, 'link', 'set', 's2', 'up');
    const back = performance.now();
    for (let i = 0; i < 100 && decisions.length < 2; i++) await runFor(100);
    expect(decisions.map((d) => d.action)).toEqual(['withdraw', 'restore']);
    expect(ipEndpoints(cli).map((e) => [e.address, e.id])).toEqual([[C2, ID]]);
    const restoredAfter = performance.now() - back;
    await waitFor('subflows from c2 on A and B', () => (joined(tokenA) && joined(tokenB) ? true : undefined), 15_000).catch((e: Error) => {
      throw new Error(`${e.message} (A ${tokenA}, B ${tokenB}):\n${sh('ip', ['netns', 'exec', cli, 'ss', '-Htna', 'dst', SERVICE])}`);
    });
    const healedAfter = performance.now() - back;
    console.log(`figures: withdrawn ${Math.round(withdrawnAfter)} ms after carrier loss (hold 3000), restored ${Math.round(restoredAfter)} ms and both subflows up ${Math.round(healedAfter)} ms after carrier back (settle 1000)`);

    for (const p of peers.splice(0)) expect(await p.stop()).toBe(0);
  }, 90_000);
});
