// Two namespaces for traffic tests: a client with two uplinks (c1
// 198.51.100.2 via 198.51.100.1, the default route; c2 203.0.113.2 via
// 203.0.113.1) and a server that is also their gateway, serving 192.0.2.1 on
// lo, with a strict reverse-path filter and ARP answered only for addresses of
// the asking link. Source routing is the product's (`sourceRouting` in the
// test's config); `ss` is the oracle.
import { createNetns, ip, setNsSysctl, sh, veth } from './netns.js';

export const SERVICE = '192.0.2.1';
export const PORT = 8080;

export interface Subflow {
  state: string;
  src: string;
  /** The client's token of the MPTCP connection the subflow belongs to. */
  token: string;
}

/** TCP subflows to the service, as `ss -ti` in the client namespace shows them. */
export function subflows(cli: string): Subflow[] {
  const out = sh('ip', ['netns', 'exec', cli, 'ss', '-Htnai', 'dst', SERVICE]);
  const list: Subflow[] = [];
  // One line per socket, then its indented info line, which is blank for a
  // TIME-WAIT socket: [ \t], never \s, so a match cannot run into the next socket.
  for (const m of out.matchAll(/^(\S+)[ \t]+\d+[ \t]+\d+[ \t]+(\S+?)(?:%\S+)?:\d+[ \t]+\S+[ \t]*\n[ \t]+(.*)$/gm)) {
    const token = /token:\w+\(id:\d+\)\/(\w+)\(id:\d+\)/.exec(m[3]!);
    if (token) list.push({ state: m[1]!, src: m[2]!, token: token[1]! });
  }
  return list;
}

/** Builds both namespaces; their names are pushed to `made` at once, for the caller's cleanup. */
export function twoUplinks(prefix: string, made: string[]): { cli: string; srv: string } {
  const cli = createNetns(prefix);
  made.push(cli);
  const srv = createNetns(prefix);
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
