// Source routing on real traffic, without the daemon. A client with two uplinks
// (c1 198.51.100.2 via 198.51.100.1, the default; c2 203.0.113.2 via
// 203.0.113.1) talks to a service address 192.0.2.1 behind a gateway that
// filters strictly (rp_filter 1) and answers no ARP for the service address.
// Without source routing the join from c2 never establishes, with or without
// `dev` on the endpoint (without it the SYN leaves by c1 with c2's source and is
// dropped; with it there is no route out of c2). After the planner's routes and
// rules are installed by route-rules, a new connection gets its subflow from c2.
// The oracle is `ss` in the client namespace, never the tool.
import { afterAll, describe, expect, it } from 'vitest';
import { killPeers, mptcpClient, mptcpServer, waitFor, type Peer } from './helpers/mptcp-peer.js';
import { deleteNetns, ip, requireRoot, sh } from './helpers/netns.js';
import { installSourceRouting, PORT, SERVICE, subflows, twoUplinks } from './helpers/two-uplinks.js';

requireRoot();
const made: string[] = [];
const peers: Peer[] = [];
afterAll(() => {
  killPeers(peers);
  for (const n of made) deleteNetns(n);
});

function endpoint(cli: string, withDev: boolean): void {
  ip('-n', cli, 'mptcp', 'endpoint', 'flush');
  ip('-n', cli, 'mptcp', 'endpoint', 'add', '203.0.113.2', ...(withDev ? ['dev', 'c2'] : []), 'subflow');
}

/**
 * Opens a new connection; true when a subflow from c2 of that same connection
 * got established within `ms` (older connections' joins may still be retrying
 * and must not count), else what ss showed.
 */
async function joinsFromC2(cli: string, ms: number): Promise<true | string> {
  const known = new Set(subflows(cli).map((s) => s.token));
  peers.push(await mptcpClient(cli, SERVICE, PORT));
  const token = await waitFor('the new connection', () => subflows(cli).find((s) => s.src === '198.51.100.2' && s.state === 'ESTAB' && !known.has(s.token))?.token);
  try {
    await waitFor('its subflow from 203.0.113.2', () => (subflows(cli).some((s) => s.token === token && s.src === '203.0.113.2' && s.state === 'ESTAB') ? true : undefined), ms);
    return true;
  } catch {
    // What ss saw, so a failure explains itself.
    return `no established subflow from 203.0.113.2 for token ${token}:\n${sh('ip', ['netns', 'exec', cli, 'ss', '-Htna', 'dst', SERVICE])}`;
  }
}

describe('source routing on real traffic', () => {
  it('without it the join from the second uplink fails (with or without dev); with it a new connection gets its subflow', async () => {
    const { cli, srv } = twoUplinks('x19', made);
    peers.push(await mptcpServer(srv, SERVICE, PORT, 4));

    // A working join takes milliseconds here; three seconds covers the first SYN retransmission.
    endpoint(cli, true);
    expect(await joinsFromC2(cli, 3000)).not.toBe(true);
    endpoint(cli, false);
    expect(await joinsFromC2(cli, 3000)).not.toBe(true);

    installSourceRouting(cli);
    expect(ip('-n', cli, 'rule', 'show')).toMatch(/from 203\.0\.113\.2 lookup 102 proto 213/);

    expect(await joinsFromC2(cli, 15_000)).toBe(true);
    endpoint(cli, true);
    expect(await joinsFromC2(cli, 15_000)).toBe(true);

    for (const p of peers.splice(0)) expect(await p.stop()).toBe(0);
  }, 60_000);
});
