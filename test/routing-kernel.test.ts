// Routes and policy rules over rtnetlink against the real kernel: the request
// bytes, what `ip route`/`ip rule` show after a planned write, convergence, and
// that nothing without the tool's protocol number is ever changed or removed.
import { describe, expect, it } from 'vitest';
import type { LiveAddress, LiveLink } from '../src/core/model.js';
import { planSourceRouting, RTPROT_RECONCILER } from '../src/core/source-routing.js';
import type { RoutingInput, RoutingOp } from '../src/core/source-routing.js';
import { withNetns } from '../src/kernel/netns.js';
import { NETLINK_ROUTE, NlSocket, NlWriter } from '../src/kernel/nlsock.js';
import { run as runReqs } from '../src/kernel/mptcp-pm.js';
import { dumpRoutes, dumpRules, queueRoute, queueRule, runRoutingOps } from '../src/kernel/route-rules.js';
import { queueDumpAddresses, queueDumpLinks } from '../src/kernel/rtnl.js';
import { ip, namespacesFor, veth } from './helpers/netns.js';

const ns = namespacesFor('x19');

describe('request bytes (golden)', () => {
  const cases: [string, (w: NlWriter) => unknown, string][] = [
    [
      'rule add from 198.51.100.10 lookup 101 pref 10000',
      (w) => queueRule(w, 'add', { family: 4, priority: 10000, src: '198.51.100.10', srcLen: 32, table: 101 }),
      // nlmsghdr (RTM_NEWRULE, REQUEST|ACK|EXCL|CREATE) | fib_rule_hdr inet src_len 32 table 101 action 1 | FRA_SRC | FRA_PRIORITY | FRA_TABLE | FRA_PROTOCOL 213
      '3c000000 2000 0506 SEQ 00000000 02002000 65000001 00000000 08000200 c633640a 08000600 10270000 08000f00 65000000 05001500 d5000000',
    ],
    [
      'route del default via 198.51.100.1 oif 3 table 70000',
      (w) => queueRoute(w, 'delete', { family: 4, table: 70000, dst: '0.0.0.0', dstLen: 0, ifindex: 3, gateway: '198.51.100.1', scope: 'universe', protocol: RTPROT_RECONCILER, other: false }),
      // rtmsg: table 0 (RTA_TABLE carries 70000), proto 213, scope nowhere (any), unicast
      '34000000 1900 0500 SEQ 00000000 02000000 00d5ff01 00000000 08000f00 70110100 08000400 03000000 08000500 c6336401',
    ],
  ];
  it.each(cases)('%s', (_name, write, hex) => {
    const w = new NlWriter(64);
    const req = write(w) as { seq: number };
    const seq = Buffer.alloc(4);
    seq.writeUInt32LE(req.seq);
    expect(w.bytesWritten().toString('hex')).toBe(hex.replace('SEQ', seq.toString('hex')).replace(/ /g, ''));
  });
});

interface IpRoute {
  dst: string;
  gateway?: string;
  dev?: string;
  protocol?: string;
  scope?: string;
}
interface IpRule {
  priority: number;
  src: string;
  srclen?: number;
  table: string;
  protocol?: string;
}
const ipRoutes = (n: string, fam: '-4' | '-6', table: number): IpRoute[] => {
  const out = ip('-n', n, fam, '-j', 'route', 'show', 'table', String(table)).trim();
  return out ? (JSON.parse(out) as IpRoute[]) : [];
};
const ipRules = (n: string, fam: '-4' | '-6'): IpRule[] => JSON.parse(ip('-n', n, fam, '-j', 'rule', 'show')) as IpRule[];
const pick = (r: IpRoute) => ({ dst: r.dst, gateway: r.gateway, dev: r.dev, protocol: r.protocol, scope: r.scope });

/** One namespace with a veth `c1` (peer `p1`) up, 198.51.100.10/24 and 2001:db8:1::10/64 on c1. */
function uplink(): string {
  const n = ns();
  veth(n, 'c1', undefined, 'p1');
  ip('-n', n, 'link', 'set', 'c1', 'up');
  ip('-n', n, 'link', 'set', 'p1', 'up');
  ip('-n', n, 'addr', 'add', '198.51.100.10/24', 'dev', 'c1');
  ip('-n', n, 'addr', 'add', '2001:db8:1::10/64', 'dev', 'c1', 'nodad');
  return n;
}

function withSock<T>(n: string, fn: (s: NlSocket) => T): T {
  return withNetns(n, () => {
    const s = new NlSocket(NETLINK_ROUTE, n);
    try {
      return fn(s);
    } finally {
      s.close();
    }
  });
}

/** Reads what the planner needs, plans, and returns the plan (nothing written). */
function planIn(n: string, declared: RoutingInput['declared'], endpointAddrs: string[]) {
  return withSock(n, (s) => {
    const links: LiveLink[] = [];
    const addresses: LiveAddress[] = [];
    const w = new NlWriter();
    runReqs(s, w.reset(), [queueDumpLinks(w, links)]);
    runReqs(s, w.reset(), [queueDumpAddresses(w, addresses)]);
    const tables = new Set(Object.values(declared).map((d) => d.table));
    return planSourceRouting({ declared, links, addresses, endpoints: endpointAddrs.map((address) => ({ address })), routes: dumpRoutes(s, tables), rules: dumpRules(s) });
  });
}

function run(n: string, ops: RoutingOp[]) {
  return withSock(n, (s) => runRoutingOps(s, ops));
}

describe('routes and rules in a real namespace', () => {
  it('fills the table and adds the rules a plan asks for; iproute2 shows them with proto 213; a second plan is empty', () => {
    const n = uplink();
    const declared = { c1: { table: 1000000, gateway: '198.51.100.1', gateway6: '2001:db8:1::1' } };
    const eps = ['198.51.100.10', '2001:db8:1::10'];
    const p = planIn(n, declared, eps);
    expect(p.errors).toEqual([]);
    expect(run(n, [...p.before, ...p.after]).every((r) => r.ok)).toBe(true);

    expect(ipRoutes(n, '-4', 1000000).map(pick)).toEqual([
      { dst: 'default', gateway: '198.51.100.1', dev: 'c1', protocol: '213', scope: undefined },
      { dst: '198.51.100.0/24', gateway: undefined, dev: 'c1', protocol: '213', scope: 'link' },
    ]);
    expect(ipRoutes(n, '-6', 1000000).map(pick)).toEqual([
      { dst: '2001:db8:1::/64', gateway: undefined, dev: 'c1', protocol: '213', scope: undefined },
      { dst: 'default', gateway: '2001:db8:1::1', dev: 'c1', protocol: '213', scope: undefined },
    ]);
    expect(ipRules(n, '-4')).toContainEqual({ priority: 10000, src: '198.51.100.10', table: '1000000', protocol: '213' });
    expect(ipRules(n, '-6')).toContainEqual({ priority: 10000, src: '2001:db8:1::10', table: '1000000', protocol: '213' });

    const again = planIn(n, declared, eps);
    expect([...again.before, ...again.after]).toEqual([]);
  });

  it('removing the key removes only its own routes and rules; foreign ones in the same table stay', () => {
    const n = uplink();
    const declared = { c1: { table: 101, gateway: '198.51.100.1', priority: 500 } };
    const p = planIn(n, declared, ['198.51.100.10']);
    run(n, [...p.before, ...p.after]);
    ip('-n', n, 'route', 'add', '203.0.113.0/24', 'via', '198.51.100.7', 'dev', 'c1', 'table', '101', 'proto', 'static');
    ip('-n', n, 'rule', 'add', 'from', '198.51.100.99', 'lookup', '101', 'pref', '500', 'proto', 'static');

    const gone = planIn(n, {}, ['198.51.100.10']);
    expect(gone.before).toEqual([]);
    // IPv4 and IPv6 connected prefix, the default route, the rule.
    expect(gone.after.map((o) => o.op).sort()).toEqual(['delete-route', 'delete-route', 'delete-route', 'delete-rule']);
    expect(run(n, gone.after).every((r) => r.ok)).toBe(true);
    expect(ipRoutes(n, '-4', 101).map(pick)).toEqual([{ dst: '203.0.113.0/24', gateway: '198.51.100.7', dev: 'c1', protocol: 'static', scope: undefined }]);
    const rules = ipRules(n, '-4').filter((r) => r.priority === 500);
    expect(rules).toEqual([{ priority: 500, src: '198.51.100.99', table: '101', protocol: 'static' }]);
  });

  it('a delete aimed at a foreign route or rule leaves it: the kernel matches the protocol', () => {
    const n = uplink();
    ip('-n', n, 'route', 'add', 'default', 'via', '198.51.100.1', 'dev', 'c1', 'table', '102', 'proto', 'static');
    ip('-n', n, 'rule', 'add', 'from', '198.51.100.10', 'lookup', '102', 'pref', '600', 'proto', 'boot');
    const [route] = withSock(n, (s) => dumpRoutes(s, new Set([102])));
    const [rule] = withSock(n, (s) => dumpRules(s)).filter((r) => r.priority === 600);
    expect(route).toMatchObject({ table: 102, protocol: 4, gateway: '198.51.100.1', other: false });
    expect(rule).toMatchObject({ src: '198.51.100.10', srcLen: 32, table: 102, protocol: 3, other: false });
    run(n, [
      { op: 'delete-route', route: route!, reason: 'test' },
      { op: 'delete-rule', rule: rule!, reason: 'test' },
    ]);
    expect(ipRoutes(n, '-4', 102)).toHaveLength(1);
    expect(ipRules(n, '-4').filter((r) => r.priority === 600)).toHaveLength(1);
  });

  it('a foreign default route where the tool needs its own is an error naming both, and nothing is written for it', () => {
    const n = uplink();
    ip('-n', n, 'route', 'add', 'default', 'via', '198.51.100.2', 'dev', 'c1', 'table', '103', 'proto', 'static');
    const p = planIn(n, { c1: { table: 103, gateway: '198.51.100.1' } }, ['198.51.100.10']);
    expect(p.errors).toEqual([
      'table 103 already has default via 198.51.100.2 dev c1 table 103 (proto 4), which the tool did not create; remove it or give c1 another table',
    ]);
    expect(p.before.map((o) => (o.op === 'add-route' ? `${o.op} ${o.route.dst}` : o.op))).toEqual(['add-route 198.51.100.0', 'add-route 2001:db8:1::', 'add-rule']);
  });

  it('a kernel refusal carries the operation, the namespace and the errno name; it never replaces', () => {
    const n = uplink();
    const ifindex = Number(JSON.parse(ip('-n', n, '-j', 'link', 'show', 'c1'))[0].ifindex);
    const add: RoutingOp = { op: 'add-route', route: { family: 4, table: 104, dst: '0.0.0.0', dstLen: 0, ifindex, gateway: '198.51.100.1', scope: 'universe' }, reason: 'test' };
    const [first, second] = run(n, [add, add]);
    expect(first).toEqual({ ok: true });
    expect(second!.ok).toBe(false);
    if (second!.ok) return;
    expect(second!.error).toMatchObject({ netns: n, code: 'EEXIST', retryable: false });
    expect(second!.error.op).toBe(`RTM_NEWROUTE default via 198.51.100.1 oif ${ifindex} table 104`);
  });
});
