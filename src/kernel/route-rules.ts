// Routes in the tool's tables and policy (FIB) rules over rtnetlink: dumps, and
// the writes of a source-routing plan. Every write carries RTPROT_RECONCILER,
// and a delete names that protocol too: the kernel then matches only a route or
// rule with it (IPv4 and IPv6 route deletes and rule deletes all compare the
// protocol when one is given), so a delete can never take someone else's.
import { canonicalAddress } from '../core/address.js';
import type { Family } from '../core/model.js';
import { RTPROT_RECONCILER } from '../core/source-routing.js';
import type { LiveRoute, LiveRule, RouteSpec, RoutingOp, RuleSpec } from '../core/source-routing.js';
import type { KernelError, KernelWriteResult } from './api.js';
import { AF_INET, AF_INET6, formatIPv4, formatIPv6, parseIPv4, parseIPv6 } from './mptcp-codec.js';
import { forEachAttr, NETLINK_ROUTE, nextSeq, NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST, NlSocket, NlWriter } from './nlsock.js';
import { withNetns } from './netns.js';
import { dumpDefaultRoutes, type DefaultRoute } from './routes.js';
import type { NlRequest } from './nlsock.js';

const RTM_NEWROUTE = 24;
const RTM_DELROUTE = 25;
const RTM_GETROUTE = 26;
const RTM_NEWRULE = 32;
const RTM_DELRULE = 33;
const RTM_GETRULE = 34;
const NLM_F_EXCL = 0x200;
const NLM_F_CREATE = 0x400;
const NLMSG_HDRLEN = 16;

// struct rtmsg: family, dst_len, src_len, tos, table, protocol, scope, type, flags(u32).
const RTMSG_LEN = 12;
const RTA_DST = 1;
const RTA_SRC = 2;
const RTA_OIF = 4;
const RTA_GATEWAY = 5;
const RTA_PRIORITY = 6;
const RTA_MULTIPATH = 9;
const RTA_TABLE = 15;
const RTN_UNICAST = 1;
const RT_SCOPE_UNIVERSE = 0;
const RT_SCOPE_LINK = 253;
const RT_SCOPE_NOWHERE = 255;
const RT_TABLE_UNSPEC = 0;
const RT_TABLE_LOCAL = 255;
const RTM_F_CLONED = 0x200;

// struct fib_rule_hdr: family, dst_len, src_len, tos, table, res1, res2, action, flags(u32).
const FIB_RULE_HDR_LEN = 12;
const FRA_SRC = 2;
const FRA_PRIORITY = 6;
const FRA_FWMARK = 10;
const FRA_SUPPRESS_IFGROUP = 13;
const FRA_SUPPRESS_PREFIXLEN = 14;
const FRA_TABLE = 15;
const FRA_FWMASK = 16;
const FRA_PAD = 18;
const FRA_PROTOCOL = 21;
const FR_ACT_TO_TBL = 1;
/** Attributes the kernel reports on every rule, or that select nothing at their reported value. */
const NEUTRAL_RULE_ATTRS = new Set([FRA_SRC, FRA_PRIORITY, FRA_TABLE, FRA_PROTOCOL, FRA_PAD, FRA_FWMASK, FRA_FWMARK, FRA_SUPPRESS_IFGROUP, FRA_SUPPRESS_PREFIXLEN]);

const AF_UNSPEC = 0;
const afOf = (f: Family) => (f === 4 ? AF_INET : AF_INET6);
const addrBytes = (f: Family, a: string) => (f === 4 ? parseIPv4(a) : parseIPv6(a));
const addrText = (buf: Buffer, off: number, len: number): string | undefined =>
  len === 4 ? formatIPv4(buf, off) : len === 16 ? canonicalAddress(formatIPv6(buf, off)) : undefined;

/** Parses one RTM_NEWROUTE message (buf[off, off+len), nlmsghdr included). */
export function parseRoute(buf: Buffer, off: number, len: number): LiveRoute | undefined {
  if (len < NLMSG_HDRLEN + RTMSG_LEN) return undefined;
  const p = off + NLMSG_HDRLEN;
  const af = buf[p]!;
  if (af !== AF_INET && af !== AF_INET6) return undefined;
  const family: Family = af === AF_INET ? 4 : 6;
  const dstLen = buf[p + 1]!;
  const srcLen = buf[p + 2]!;
  const tos = buf[p + 3]!;
  const scopeRaw = buf[p + 6]!;
  const type = buf[p + 7]!;
  const flags = buf.readUInt32LE(p + 8);
  const route: LiveRoute = {
    family,
    table: buf[p + 4]!,
    dst: family === 4 ? '0.0.0.0' : '::',
    dstLen,
    ifindex: 0,
    scope: scopeRaw === RT_SCOPE_LINK ? 'link' : scopeRaw === RT_SCOPE_UNIVERSE ? 'universe' : scopeRaw,
    protocol: buf[p + 5]!,
    other: srcLen !== 0 || tos !== 0 || type !== RTN_UNICAST || (flags & RTM_F_CLONED) !== 0,
  };
  forEachAttr(buf, p + RTMSG_LEN, off + len, (t, o, l) => {
    if (t === RTA_DST) route.dst = addrText(buf, o, l) ?? route.dst;
    else if (t === RTA_OIF && l >= 4) route.ifindex = buf.readInt32LE(o);
    else if (t === RTA_GATEWAY) {
      const g = addrText(buf, o, l);
      if (g) route.gateway = g;
    } else if (t === RTA_PRIORITY && l >= 4) route.metric = buf.readUInt32LE(o);
    else if (t === RTA_TABLE && l >= 4) route.table = buf.readUInt32LE(o);
    else if (t === RTA_MULTIPATH || t === RTA_SRC) route.other = true;
  });
  return route;
}

/** Parses one RTM_NEWRULE message. */
export function parseRule(buf: Buffer, off: number, len: number): LiveRule | undefined {
  if (len < NLMSG_HDRLEN + FIB_RULE_HDR_LEN) return undefined;
  const p = off + NLMSG_HDRLEN;
  const af = buf[p]!;
  if (af !== AF_INET && af !== AF_INET6) return undefined;
  const family: Family = af === AF_INET ? 4 : 6;
  const rule: LiveRule = {
    family,
    priority: 0,
    src: family === 4 ? '0.0.0.0' : '::',
    srcLen: buf[p + 2]!,
    table: buf[p + 4]!,
    protocol: 0,
    // dst_len, tos, an action other than "lookup", or flags (not, ...) select or do something the tool never writes.
    other: buf[p + 1]! !== 0 || buf[p + 3]! !== 0 || buf[p + 7]! !== FR_ACT_TO_TBL || buf.readUInt32LE(p + 8) !== 0,
  };
  forEachAttr(buf, p + FIB_RULE_HDR_LEN, off + len, (t, o, l) => {
    if (t === FRA_SRC) rule.src = addrText(buf, o, l) ?? rule.src;
    else if (t === FRA_PRIORITY && l >= 4) rule.priority = buf.readUInt32LE(o);
    else if (t === FRA_TABLE && l >= 4) rule.table = buf.readUInt32LE(o);
    else if (t === FRA_PROTOCOL && l >= 1) rule.protocol = buf[o]!;
    else if (t === FRA_FWMARK && l >= 4 && buf.readUInt32LE(o) !== 0) rule.other = true;
    else if ((t === FRA_SUPPRESS_PREFIXLEN || t === FRA_SUPPRESS_IFGROUP) && l >= 4 && buf.readInt32LE(o) !== -1) rule.other = true;
    else if (!NEUTRAL_RULE_ATTRS.has(t)) rule.other = true;
  });
  return rule;
}

function queueDump(w: NlWriter, type: number, hdrLen: number, family: number, op: string, onMessage: NlRequest['onMessage']): NlRequest {
  const seq = nextSeq();
  w.beginMsg(type, NLM_F_REQUEST | NLM_F_DUMP, seq)
    .header(hdrLen, (b, o) => {
      b[o] = family;
    })
    .endMsg();
  return { seq, op, dump: true, onMessage };
}

function runOne(sock: NlSocket, w: NlWriter, req: NlRequest): void {
  sock.send(w, req.op);
  sock.collect([req]);
  if (req.error) throw req.error;
}

/**
 * Routes of the namespace that the tool may need to see: those in `tables`
 * (whatever their protocol: a foreign route there is reported, never touched)
 * and every route carrying RTPROT_RECONCILER. One AF_UNSPEC dump: the kernel
 * walks IPv4 then IPv6 (other families' routes are not parsed).
 */
export function dumpRoutes(sock: NlSocket, tables: ReadonlySet<number>): LiveRoute[] {
  const out: LiveRoute[] = [];
  const w = new NlWriter(64);
  const req = queueDump(w, RTM_GETROUTE, RTMSG_LEN, AF_UNSPEC, 'RTM_GETROUTE dump', (buf, off, len, type) => {
    if (type !== RTM_NEWROUTE) return;
    const r = parseRoute(buf, off, len);
    if (r && r.table !== RT_TABLE_LOCAL && (tables.has(r.table) || r.protocol === RTPROT_RECONCILER)) out.push(r);
  });
  runOne(sock, w, req);
  return out;
}

/**
 * Every IPv4 and IPv6 policy rule of the namespace: one AF_UNSPEC dump (the
 * kernel walks every family's rules), one round trip instead of two.
 */
export function dumpRules(sock: NlSocket): LiveRule[] {
  const out: LiveRule[] = [];
  const w = new NlWriter(64);
  const req = queueDump(w, RTM_GETRULE, FIB_RULE_HDR_LEN, AF_UNSPEC, 'RTM_GETRULE dump', (buf, off, len, type) => {
    if (type !== RTM_NEWRULE) return;
    const r = parseRule(buf, off, len);
    if (r) out.push(r);
  });
  runOne(sock, w, req);
  return out;
}

/**
 * What doctor needs of a namespace's routing, on one socket of its own (doctor
 * holds no cached handle): the default routes of every table and every rule.
 */
export function readRoutingFacts(netns: string): { defaultRoutes: DefaultRoute[]; rules: LiveRule[] } {
  return withNetns(netns, () => {
    const sock = new NlSocket(NETLINK_ROUTE, netns);
    try {
      return { defaultRoutes: dumpDefaultRoutes(sock), rules: dumpRules(sock) };
    } finally {
      sock.close();
    }
  });
}

function routeText(r: RouteSpec | LiveRoute): string {
  const dst = r.dstLen === 0 ? 'default' : `${r.dst}/${r.dstLen}`;
  return `${dst}${r.gateway ? ` via ${r.gateway}` : ''}${r.ifindex ? ` oif ${r.ifindex}` : ''} table ${r.table}`;
}

/** Writes RTM_NEWROUTE (create, never replace) or RTM_DELROUTE for one route. */
export function queueRoute(w: NlWriter, kind: 'add' | 'delete', r: RouteSpec | LiveRoute): NlRequest {
  const seq = nextSeq();
  const add = kind === 'add';
  const flags = NLM_F_REQUEST | NLM_F_ACK | (add ? NLM_F_CREATE | NLM_F_EXCL : 0);
  w.beginMsg(add ? RTM_NEWROUTE : RTM_DELROUTE, flags, seq).header(RTMSG_LEN, (b, o) => {
    b[o] = afOf(r.family);
    b[o + 1] = r.dstLen;
    b[o + 4] = r.table < 256 ? r.table : RT_TABLE_UNSPEC;
    b[o + 5] = RTPROT_RECONCILER;
    // A delete names no scope, so the route is found whatever scope it has.
    b[o + 6] = add ? (r.scope === 'link' ? RT_SCOPE_LINK : RT_SCOPE_UNIVERSE) : RT_SCOPE_NOWHERE;
    b[o + 7] = RTN_UNICAST;
  });
  w.u32(RTA_TABLE, r.table);
  if (r.dstLen > 0) w.bytes(RTA_DST, addrBytes(r.family, r.dst));
  if (r.ifindex) w.u32(RTA_OIF, r.ifindex);
  if (r.gateway) w.bytes(RTA_GATEWAY, addrBytes(r.family, r.gateway));
  if (!add && 'metric' in r && r.metric !== undefined) w.u32(RTA_PRIORITY, r.metric);
  w.endMsg();
  return { seq, op: `${add ? 'RTM_NEWROUTE' : 'RTM_DELROUTE'} ${routeText(r)}`, dump: false };
}

/** Writes RTM_NEWRULE (create, fails on an identical rule) or RTM_DELRULE for one `from SRC lookup TABLE` rule. */
export function queueRule(w: NlWriter, kind: 'add' | 'delete', r: RuleSpec): NlRequest {
  const seq = nextSeq();
  const add = kind === 'add';
  const flags = NLM_F_REQUEST | NLM_F_ACK | (add ? NLM_F_CREATE | NLM_F_EXCL : 0);
  w.beginMsg(add ? RTM_NEWRULE : RTM_DELRULE, flags, seq).header(FIB_RULE_HDR_LEN, (b, o) => {
    b[o] = afOf(r.family);
    b[o + 2] = r.srcLen;
    b[o + 4] = r.table < 256 ? r.table : RT_TABLE_UNSPEC;
    b[o + 7] = FR_ACT_TO_TBL;
  });
  if (r.srcLen > 0) w.bytes(FRA_SRC, addrBytes(r.family, r.src));
  w.u32(FRA_PRIORITY, r.priority);
  w.u32(FRA_TABLE, r.table);
  w.u8(FRA_PROTOCOL, RTPROT_RECONCILER);
  w.endMsg();
  return { seq, op: `${add ? 'RTM_NEWRULE' : 'RTM_DELRULE'} from ${r.src}/${r.srcLen} table ${r.table} pref ${r.priority}`, dump: false };
}

export function queueRoutingOp(w: NlWriter, op: RoutingOp): NlRequest {
  switch (op.op) {
    case 'add-route':
      return queueRoute(w, 'add', op.route);
    case 'delete-route':
      return queueRoute(w, 'delete', op.route);
    case 'add-rule':
      return queueRule(w, 'add', op.rule);
    case 'delete-rule':
      return queueRule(w, 'delete', op.rule);
  }
}

/**
 * Runs the operations in order, one request at a time (each later one may need
 * an earlier one: a default route needs its connected prefix). Results align
 * with `ops`; a failure does not stop the rest. A delete that finds nothing
 * (ESRCH, ENOENT) succeeded: the route or rule is gone either way.
 */
export function runRoutingOps(sock: NlSocket, ops: readonly RoutingOp[]): KernelWriteResult[] {
  const w = new NlWriter(256);
  return ops.map((op) => {
    const req = queueRoutingOp(w.reset(), op);
    sock.send(w, req.op);
    sock.collect([req]);
    const err: KernelError | undefined = req.error;
    if (!err) return { ok: true };
    if (op.op.startsWith('delete') && (err.code === 'ESRCH' || err.code === 'ENOENT')) return { ok: true };
    return { ok: false, error: err };
  });
}
