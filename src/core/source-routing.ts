// Source routing as operations: from the declared `sourceRouting`, the live
// interfaces and addresses, the endpoints the namespace should hold and the
// live routes and rules, the smallest ordered set of route and rule writes.
// Pure: the kernel layer (kernel/route-rules.ts) reads and writes.
//
// Per declared interface the table holds the interface's connected prefixes and
// a default route via its gateway; every endpoint address on the interface gets
// `from ADDR lookup TABLE`. Only routes and rules carrying the tool's own
// protocol number are ever changed or removed; anything else in a table is left
// alone, and a foreign route in the way of one the tool needs is an error, not
// something to replace.
import type { SourceRouteConfig } from './schema-routing.js';
import { DEFAULT_RULE_PRIORITY } from './schema-routing.js';
import { addressFamily, canonicalAddress } from './address.js';
import { resolveEndpoints, type ResolvedEndpoint } from './derive.js';
import type { DesiredNamespace, Family, LiveAddress, LiveLink, LiveNamespace, Pending } from './model.js';

/**
 * The routing protocol number (rtm_protocol, FRA_PROTOCOL) on every route and
 * rule the tool creates; `ip route`/`ip rule` show it as `proto 213` unless
 * named in rt_protos.d. The kernel's own RTPROT_* values stop at 192 (EIGRP) and
 * FRR's extend them to about 200; bird, NetworkManager, systemd-networkd, DHCP
 * clients and keepalived use 2..18, 42 and 99. 213 belongs to none of them.
 */
export const RTPROT_RECONCILER = 213;

export type RouteScope = 'universe' | 'link';

/** A route as the tool writes it. */
export interface RouteSpec {
  family: Family;
  table: number;
  /** Network address (host bits zero); 0.0.0.0 or :: for the default route. */
  dst: string;
  dstLen: number;
  ifindex: number;
  /** Interface name, for messages. */
  dev?: string;
  gateway?: string;
  /** link for a connected prefix (IPv4); universe otherwise (IPv6 always). */
  scope: RouteScope;
}

/** A route as read back from the kernel. */
export interface LiveRoute {
  family: Family;
  table: number;
  dst: string;
  dstLen: number;
  /** 0 when the route has no single outgoing interface (multipath, blackhole). */
  ifindex: number;
  gateway?: string;
  scope: RouteScope | number;
  protocol: number;
  metric?: number;
  /** Selectors or a type the tool never writes (source prefix, TOS, multipath, not unicast). */
  other: boolean;
  /** Interface name, filled in by the planner for messages. */
  dev?: string;
}

/** `from SRC/LEN lookup TABLE` at PRIORITY. */
export interface RuleSpec {
  family: Family;
  priority: number;
  src: string;
  srcLen: number;
  table: number;
}

export interface LiveRule extends RuleSpec {
  protocol: number;
  /** Selectors or an action the tool never writes (to, iif, oif, fwmark, not, goto ...). */
  other: boolean;
}

export type RoutingOp =
  | { op: 'add-route'; route: RouteSpec; reason: string }
  | { op: 'delete-route'; route: LiveRoute; reason: string }
  | { op: 'add-rule'; rule: RuleSpec; reason: string }
  | { op: 'delete-rule'; rule: LiveRule; reason: string };

export interface RoutingPlan {
  /**
   * Run before the endpoint writes: a new endpoint's join must leave by its own
   * interface from the first SYN, so its table and rule come first.
   */
  before: RoutingOp[];
  /** Run after the endpoint writes: a withdrawn endpoint loses its rule only once it is gone. */
  after: RoutingOp[];
  pending: Pending[];
  errors: string[];
}

export interface RoutingInput {
  /** Interface name -> declared route (the merged `sourceRouting`). */
  declared: Record<string, SourceRouteConfig>;
  links: readonly LiveLink[];
  addresses: readonly LiveAddress[];
  /** The endpoints the namespace should hold (resolveEndpoints(...).endpoints): explicit and derived from `dev`. */
  endpoints: readonly Pick<ResolvedEndpoint, 'address' | 'ifindex' | 'dev'>[];
  /** Live routes of the declared tables and every live route with RTPROT_RECONCILER. */
  routes: readonly LiveRoute[];
  /** Live rules (IPv4 and IPv6). */
  rules: readonly LiveRule[];
}

const AF_BITS: Record<Family, number> = { 4: 32, 6: 128 };

/** The network of `address/len`, canonical text. */
export function networkOf(address: string, len: number): string {
  const fam = addressFamily(address);
  if (fam === 4) {
    const n = address.split('.').reduce((acc, o) => acc * 256 + Number(o), 0);
    const mask = len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
    const v = (n & mask) >>> 0;
    return [v >>> 24, (v >>> 16) & 255, (v >>> 8) & 255, v & 255].join('.');
  }
  const full = canonicalAddress(address);
  const [head = '', tail = ''] = full.includes('::') ? full.split('::') : [full, ''];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t].map((g) => parseInt(g, 16));
  const out = groups.map((g, i) => {
    const keep = Math.max(0, Math.min(16, len - i * 16));
    return keep === 0 ? 0 : g & ((0xffff << (16 - keep)) & 0xffff);
  });
  return canonicalAddress(out.map((g) => g.toString(16)).join(':'));
}

const routeKey = (r: { family: Family; table: number; dst: string; dstLen: number }) => `${r.family}|${r.table}|${r.dst}/${r.dstLen}`;
const ruleKey = (r: RuleSpec) => `${r.family}|${r.priority}|${r.src}/${r.srcLen}|${r.table}`;

function sameRoute(want: RouteSpec, have: LiveRoute): boolean {
  if (have.other || have.ifindex !== want.ifindex) return false;
  if ((have.gateway ?? '') !== (want.gateway ?? '')) return false;
  // The kernel reports every IPv6 route with universe scope.
  return want.family === 6 || have.scope === want.scope;
}

export function describeRoute(r: RouteSpec | LiveRoute, dev?: string): string {
  const dst = r.dstLen === 0 ? 'default' : `${r.dst}/${r.dstLen}`;
  const via = r.gateway ? ` via ${r.gateway}` : '';
  const name = 'dev' in r && r.dev ? r.dev : dev ?? `ifindex ${r.ifindex}`;
  return `${r.family === 6 ? '-6 ' : ''}${dst}${via} dev ${name} table ${r.table}`;
}

export function describeRule(r: RuleSpec): string {
  return `${r.family === 6 ? '-6 ' : ''}from ${r.src}${r.srcLen === AF_BITS[r.family] ? '' : `/${r.srcLen}`} lookup ${r.table} pref ${r.priority}`;
}

function isUsablePrefixSource(a: LiveAddress): boolean {
  const global = a.scope === 'global' || a.scope === 0;
  return global && !a.dadfailed && a.prefixlen < AF_BITS[a.family];
}

/** What the declared source routing needs, and the writes that get there from the live state. */
export function planSourceRouting(input: RoutingInput): RoutingPlan {
  const plan: RoutingPlan = { before: [], after: [], pending: [], errors: [] };
  const byName = new Map(input.links.map((l) => [l.name, l]));
  const byIndex = new Map(input.links.map((l) => [l.ifindex, l]));
  const wantRoutes = new Map<string, RouteSpec>();
  const wantRules = new Map<string, RuleSpec & { why: string }>();
  const tableOf = new Map<number, { iface: string; cfg: SourceRouteConfig }>();
  const heldTables = new Set<number>();

  for (const iface of Object.keys(input.declared).sort()) {
    const cfg = input.declared[iface]!;
    const link = byName.get(iface);
    if (!link) {
      plan.pending.push({ what: `sourceRouting.${iface}`, reason: `interface ${iface} does not exist (yet); its table is filled when it appears` });
      continue;
    }
    tableOf.set(link.ifindex, { iface, cfg });
    if (!link.up) {
      // The kernel flushes a down interface's routes and refuses new ones
      // (ENETDOWN); its rules stay, and the table is filled again when it is up.
      heldTables.add(cfg.table);
      plan.pending.push({ what: `sourceRouting.${iface}`, reason: `interface ${iface} is down; its table is filled when it comes up` });
      continue;
    }
    const own = input.addresses.filter((a) => a.ifindex === link.ifindex && isUsablePrefixSource(a));
    for (const a of own) {
      const r: RouteSpec = {
        family: a.family,
        table: cfg.table,
        dst: networkOf(a.address, a.prefixlen),
        dstLen: a.prefixlen,
        ifindex: link.ifindex,
        dev: iface,
        scope: a.family === 4 ? 'link' : 'universe',
      };
      wantRoutes.set(routeKey(r), r);
    }
    for (const [family, gateway] of [
      [4, cfg.gateway],
      [6, cfg.gateway6],
    ] as const) {
      if (gateway === undefined) continue;
      const r: RouteSpec = {
        family,
        table: cfg.table,
        dst: family === 4 ? '0.0.0.0' : '::',
        dstLen: 0,
        ifindex: link.ifindex,
        dev: iface,
        gateway: canonicalAddress(gateway),
        scope: 'universe',
      };
      wantRoutes.set(routeKey(r), r);
    }
  }

  // Explicit endpoints without `dev` are placed by the interface that holds their address.
  const addrIndex = new Map(input.addresses.map((a) => [canonicalAddress(a.address), a.ifindex]));
  for (const ep of input.endpoints) {
    const address = canonicalAddress(ep.address);
    const ifindex = ep.ifindex ?? addrIndex.get(address);
    if (ifindex === undefined) continue;
    const t = tableOf.get(ifindex);
    if (!t) continue;
    if (addrIndex.get(address) !== ifindex) {
      plan.pending.push({ what: `rule from ${address}`, reason: `${address} is not (yet) an address of ${t.iface}` });
      continue;
    }
    const family = addressFamily(address);
    const rule: RuleSpec = { family, priority: t.cfg.priority ?? DEFAULT_RULE_PRIORITY, src: address, srcLen: AF_BITS[family], table: t.cfg.table };
    wantRules.set(ruleKey(rule), { ...rule, why: `endpoint ${address} on ${t.iface}` });
  }

  // Routes: keep what matches, replace our own that differ, never touch others.
  const liveByKey = new Map<string, LiveRoute[]>();
  for (const r of input.routes) {
    const k = routeKey(r);
    liveByKey.set(k, [...(liveByKey.get(k) ?? []), r]);
  }
  const keepRoutes = new Set<LiveRoute>();
  for (const [k, want] of wantRoutes) {
    const live = liveByKey.get(k) ?? [];
    const match = live.find((h) => sameRoute(want, h));
    if (match) {
      keepRoutes.add(match);
      continue;
    }
    const foreign = live.find((h) => h.protocol !== RTPROT_RECONCILER);
    if (foreign) {
      plan.errors.push(
        `table ${want.table} already has ${describeRoute(foreign, byIndex.get(foreign.ifindex)?.name)} (proto ${foreign.protocol}), which the tool did not create; remove it or give ${want.dev} another table`,
      );
      continue;
    }
    plan.before.push({ op: 'add-route', route: want, reason: want.dstLen === 0 ? `default route of ${want.dev}` : `connected prefix of ${want.dev}` });
  }
  for (const r of input.routes) {
    if (r.protocol !== RTPROT_RECONCILER || keepRoutes.has(r) || heldTables.has(r.table)) continue;
    const replaced = wantRoutes.has(routeKey(r));
    const dev = byIndex.get(r.ifindex)?.name;
    const op: RoutingOp = { op: 'delete-route', route: dev ? { ...r, dev } : r, reason: replaced ? 'replaced' : 'no longer declared' };
    // A replaced route goes first, or the add would find it in the way.
    if (replaced) plan.before.unshift(op);
    else plan.after.push(op);
  }

  // Rules: the same, keyed by (priority, source, table).
  const liveRules = new Map<string, LiveRule[]>();
  for (const r of input.rules) {
    if (r.other) continue;
    const k = ruleKey(r);
    liveRules.set(k, [...(liveRules.get(k) ?? []), r]);
  }
  const keepRules = new Set<LiveRule>();
  for (const [k, want] of wantRules) {
    const live = liveRules.get(k) ?? [];
    // Someone else's identical rule does the same job: leave it and add none.
    const match = live.find((h) => h.protocol === RTPROT_RECONCILER) ?? live[0];
    if (match) {
      keepRules.add(match);
      continue;
    }
    const { why, ...rule } = want;
    plan.before.push({ op: 'add-rule', rule, reason: why });
  }
  const declaredTables = new Set(Object.values(input.declared).map((d) => d.table));
  const oddRules: RoutingOp[] = [];
  for (const r of input.rules) {
    if (r.protocol !== RTPROT_RECONCILER || keepRules.has(r)) continue;
    if (r.other) {
      // Removed before the adds: a delete matches by the fields it names, so once
      // the plain rule exists too the kernel could take either.
      oddRules.push({ op: 'delete-rule', rule: r, reason: 'has selectors the tool never writes' });
      continue;
    }
    plan.after.push({ op: 'delete-rule', rule: r, reason: declaredTables.has(r.table) ? 'no endpoint address needs it' : `table ${r.table} is no longer declared` });
  }
  plan.before.unshift(...oddRules);
  return plan;
}

/** One line per operation, iproute2 style: how plan output and golden files show them. */
export function describeRoutingOp(op: RoutingOp): string {
  switch (op.op) {
    case 'add-route':
      return `route add ${describeRoute(op.route)}  # ${op.reason}`;
    case 'delete-route':
      return `route del ${describeRoute(op.route)}  # ${op.reason}`;
    case 'add-rule':
      return `rule add ${describeRule(op.rule)}  # ${op.reason}`;
    case 'delete-rule':
      return `rule del ${describeRule(op.rule)}  # ${op.reason}`;
  }
}

/**
 * The endpoint addresses that get rules: those the namespace should hold
 * (explicit and derived from `dev`) when endpoints are managed, else the live
 * ones (the kernel's own implicit endpoints never).
 */
export function routedEndpoints(desired: DesiredNamespace, live: LiveNamespace): Pick<ResolvedEndpoint, 'address' | 'ifindex' | 'dev'>[] {
  if (desired.endpoints !== undefined) return resolveEndpoints(desired.endpoints, live).endpoints;
  return live.endpoints.filter((e) => !e.flags.includes('implicit')).map((e) => (e.ifindex === undefined ? { address: e.address } : { address: e.address, ifindex: e.ifindex }));
}

/** The routing plan of a pass, or undefined when routes and rules were not read (nothing to do). */
export function planRouting(desired: DesiredNamespace, live: LiveNamespace): RoutingPlan | undefined {
  if (live.rules === undefined || live.routes === undefined) return undefined;
  return planSourceRouting({
    declared: desired.sourceRouting ?? {},
    links: live.links,
    addresses: live.addresses,
    endpoints: routedEndpoints(desired, live),
    routes: live.routes,
    rules: live.rules,
  });
}
