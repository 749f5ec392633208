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
import type { LiveAddress, LiveLink } from '../src/core/model.js';
import { planSourceRouting } from '../src/core/source-routing.js';
import { run as runReqs } from '../src/kernel/mptcp-pm.js';
import { withNetns } from '../src/kernel/netns.js';
import { NETLINK_ROUTE, NlSocket, NlWriter } from '../src/kernel/nlsock.js';
import { dumpRoutes, dumpRules, runRoutingOps } from '../src/kernel/route-rules.js';
import { queueDumpAddresses, queueDumpLinks } from '../src/kernel/rtnl.js';
import { killPeers, mptcpClient, mptcpServer, waitFor, type Peer } from './helpers/mptcp-peer.js';
import { createNetns, deleteNetns, ip, requireRoot, setNsSysctl, sh, veth } from './helpers/netns.js';

requireRoot();
const made: string[] = [];
const peers: Peer[] = [];
afterAll(() => {
  killPeers(peers);
  for (const n of made) deleteNetns(n);
});

const SERVICE = '192.0.2.1';
const PORT = 8080;

interface Subflow {
  state: string;
  src: string;
  /** The client's token of the MPTCP connection the subflow belongs to. */
  token: string;
}

/** TCP subflows to the service, as `ss -ti` in the client namespace shows them. */
function subflows(cli: string): Subflow[] {
  const out = sh('ip', ['netns', 'exec', cli, 'ss', '-Htnai', 'dst', SERVICE]);
  const list: Subflow[] = [];
  // One line per socket, then its indented info line.
  for (const m of out.matchAll(/^(\S+)\s+\d+\s+\d+\s+(\S+?)(?:%\S+)?:\d+\s+\S+\s*\n\s+(.*)$/gm)) {
    const token = /token:\w+\(id:\d+\)\/(\w+)\(id:\d+\)/.exec(m[3]!);
    if (token) list.push({ state: m[1]!, src: m[2]!, token: token[1]! });
  }
  return list;
}

function topology(): { cli: string; srv: string } {
  const cli = createNetns('x19');
  made.push(cli);
  const srv = createNetns('x19');
  made.push(srv);
  veth(cli, 'c1', srv, 's1');
  veth(cli, 'c2', srv, 's2');
  ip('-n', cli, 'addr', 'add', '198.51.100.2/24', 'dev', 'c1');
  ip('-n', cli, 'addr', 'add', '203.0.113.2/24', 'dev', 'c2');
  ip('-n', srv, 'addr', 'add', '198.51.100.1/24', 'dev', 's1');
  ip('-n', srv, 'addr', 'add', '203.0.113.1/24', 'dev', 's2');
  ip('-n', srv, 'addr', 'add', `${SERVICE}/32`, 'dev', 'lo');
  for (const [n, l] of [[cli, 'c1'], [cli, 'c2'], [srv, 's1'], [srv, 's2']] as const) ip('-n', n, 'link', 'set', l, 'up');
  ip('-n', cli, 'route', 'add', 'default', 'via', '198.51.100.1', 'dev', 'c1');
  // The gateway: strict reverse-path filter, and ARP answered only for addresses of the asking link.
  for (const k of ['all', 's1', 's2']) {
    setNsSysctl(srv, `net.ipv4.conf.${k}.rp_filter`, '1');
    setNsSysctl(srv, `net.ipv4.conf.${k}.arp_ignore`, '1');
  }
  for (const k of ['all', 'c1', 'c2']) setNsSysctl(cli, `net.ipv4.conf.${k}.rp_filter`, '2');
  ip('-n', cli, 'mptcp', 'limits', 'set', 'subflows', '2', 'add_addr_accepted', '0');
  ip('-n', srv, 'mptcp', 'limits', 'set', 'subflows', '2', 'add_addr_accepted', '0');
  return { cli, srv };
}

function installSourceRouting(cli: string): void {
  withNetns(cli, () => {
    const s = new NlSocket(NETLINK_ROUTE, cli);
    try {
      const links: LiveLink[] = [];
      const addresses: LiveAddress[] = [];
      const w = new NlWriter();
      runReqs(s, w.reset(), [queueDumpLinks(w, links)]);
      runReqs(s, w.reset(), [queueDumpAddresses(w, addresses)]);
      const c2 = links.find((l) => l.name === 'c2')!;
      const plan = planSourceRouting({
        declared: { c2: { table: 102, gateway: '203.0.113.1' } },
        links,
        addresses,
        endpoints: [{ address: '203.0.113.2', dev: 'c2', ifindex: c2.ifindex }],
        routes: dumpRoutes(s, new Set([102])),
        rules: dumpRules(s),
      });
      expect(plan.errors).toEqual([]);
      const results = runRoutingOps(s, [...plan.before, ...plan.after]);
      expect(results.filter((r) => !r.ok)).toEqual([]);
    } finally {
      s.close();
    }
  });
}

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
    const { cli, srv } = topology();
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
