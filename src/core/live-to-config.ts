// Live state in the config format, for `show`: what the kernel
// holds, written so that `show -o yaml` is valid input for `apply`. What the
// format cannot express (implicit endpoints, an ifindex that no longer exists,
// unknown flag bits, out-of-range values) is kept as notes for comments, never
// silently dropped. Also the `show -o json` snapshot format and its parser.
import { z } from 'zod';
import {
  CONFIG_FLAG_NAMES,
  configInterfaceNameProblem,
  endpointSchema,
  type ConfigFlagName,
  type EndpointConfig,
  type MptcpConfig,
  type MptcpKey,
  type NamespaceEntry,
  type RpFilterValue,
  RP_FILTER_NAMES,
  mptcpSchema,
} from './schema.js';
import { ENDPOINT_FLAGS } from './flags.js';
import type { LiveEndpoint, LiveNamespace } from './model.js';
import { DEFAULT_RULE_PRIORITY, orderedSourceRouting, RESERVED_TABLES, type SourceRouteConfig } from './schema-routing.js';
import { RTPROT_RECONCILER } from './source-routing.js';

export interface ShownEndpoint {
  config: EndpointConfig;
  /** Created by the kernel (flag implicit): never part of the desired state. */
  implicit: boolean;
  /** What the config cannot say about this endpoint, for a comment. */
  notes: string[];
  /**
   * Why the config would refuse this endpoint (e.g. a loopback address the kernel
   * took): shown as a comment, like an implicit one, so the output stays valid input.
   */
  refused?: string;
}

export interface ShownNamespace {
  /** Valid config for this namespace: explicit endpoints only. */
  entry: NamespaceEntry;
  endpoints: ShownEndpoint[];
  /** Values the config cannot hold (e.g. rp_filter 3, a negative timeout), as comment lines. */
  notes: string[];
}

const CONFIG_FLAGS = new Set<string>(CONFIG_FLAG_NAMES);

export function endpointToConfig(ep: LiveEndpoint, linkNames: Map<number, string>, dead: ReadonlySet<number> = new Set()): ShownEndpoint {
  const notes: string[] = [];
  const config: EndpointConfig = { address: ep.address };
  if (ep.port !== undefined) config.port = ep.port;
  config.id = ep.id;
  if (ep.ifindex !== undefined) {
    const dev = linkNames.get(ep.ifindex);
    // A name a config may not hold stays a comment, so the output is still valid input.
    const problem = dev === undefined ? undefined : configInterfaceNameProblem(dev);
    if (dev === undefined) notes.push(`bound to ifindex ${ep.ifindex}, which no longer exists`);
    else if (problem) notes.push(`bound to interface ${JSON.stringify(dev)}, a name a config cannot declare (${problem})`);
    else config.dev = dev;
    // Something a person reading the live state wants to know, and watch acts on.
    if (dev !== undefined && dead.has(ep.ifindex)) notes.push(`interface ${dev} has no carrier (or is down): under linkDown: withdraw, watch withdraws this endpoint after linkDownHold`);
  }
  config.flags = ep.flags.filter((f): f is ConfigFlagName => CONFIG_FLAGS.has(f));
  if (ep.rawFlags) notes.push(`unknown flag bits 0x${ep.rawFlags.toString(16)} (rawflags)`);
  const implicit = ep.flags.includes('implicit');
  // The config's own rules decide: what `validate` refuses (unspecified, loopback,
  // multicast, broadcast, link-local IPv6 without dev ...) must not be printed as config.
  const check = implicit ? undefined : endpointSchema.safeParse(config);
  const refused = check && !check.success ? check.error.issues.map((i) => i.message).join('; ') : undefined;
  return { config, implicit, notes, ...(refused !== undefined && { refused }) };
}

export function rpFilterName(raw: number): RpFilterValue | undefined {
  return RP_FILTER_NAMES[raw];
}

export function liveToConfig(live: LiveNamespace): ShownNamespace {
  const notes: string[] = [];
  const linkNames = new Map(live.links.map((l) => [l.ifindex, l.name]));
  const dead = new Set(live.links.filter((l) => !(l.up && l.lowerUp)).map((l) => l.ifindex));
  const endpoints = live.endpoints.map((ep) => endpointToConfig(ep, linkNames, dead));

  const mptcp: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(live.mptcp) as [MptcpKey, unknown][]) {
    if (mptcpSchema.shape[key].safeParse(value).success) mptcp[key] = value;
    else notes.push(`mptcp.${key} is ${JSON.stringify(value)}, which the config format cannot hold`);
  }

  const rpFilter: Record<string, RpFilterValue> = {};
  for (const [iface, raw] of Object.entries(live.rpFilter)) {
    const name = rpFilterName(raw);
    const problem = iface === 'all' || iface === 'default' ? undefined : configInterfaceNameProblem(iface);
    if (problem) notes.push(`rpFilter of interface ${JSON.stringify(iface)} is ${raw}; a config cannot name it (${problem})`);
    else if (name !== undefined) rpFilter[iface] = name;
    else notes.push(`rpFilter.${iface} is ${raw}, outside 0..2 (the kernel treats it like strict)`);
  }

  const routing = routingToConfig(live, notes);
  const refused = endpoints.filter((e) => e.refused !== undefined);
  const entry: NamespaceEntry = {
    netns: live.netns,
    mptcp: mptcp as MptcpConfig,
    limits: { subflows: live.limits.subflows, addAddrAccepted: live.limits.addAddrAccepted },
    endpoints: endpoints.filter((e) => !e.implicit && e.refused === undefined).map((e) => e.config),
    rpFilter,
    ...(Object.keys(routing).length > 0 && { sourceRouting: routing }),
    // Applying the output must not delete what it could only show as a comment.
    ...(refused.length > 0 && { prune: false }),
  };
  if (refused.length > 0) notes.push('prune: false keeps the live endpoints shown as comments, which a config cannot declare');
  return { entry, endpoints, notes };
}

/**
 * The tool's own routes and rules (protocol RTPROT_RECONCILER) as `sourceRouting`:
 * a table belongs to the interface its routes go out of, its default routes
 * give `gateway`/`gateway6`, its rules' priority `priority`. Anything else in
 * those tables is someone else's and not shown; what cannot be said as config
 * (a table without routes, a table of two interfaces) becomes a note.
 */
export function routingToConfig(live: LiveNamespace, notes: string[]): Record<string, SourceRouteConfig> {
  const out: Record<string, SourceRouteConfig> = {};
  if (!live.routes || !live.rules) return out;
  const names = new Map(live.links.map((l) => [l.ifindex, l.name]));
  const ifaceOf = new Map<number, string>();
  for (const r of live.routes) {
    if (r.protocol !== RTPROT_RECONCILER || r.other || RESERVED_TABLES.has(r.table)) continue;
    const iface = names.get(r.ifindex);
    if (iface === undefined || configInterfaceNameProblem(iface)) continue;
    const owner = ifaceOf.get(r.table);
    if (owner !== undefined && owner !== iface) {
      notes.push(`routing table ${r.table} holds routes of ${owner} and ${iface}; only ${owner} is shown`);
      continue;
    }
    ifaceOf.set(r.table, iface);
    const e = (out[iface] ??= { table: r.table });
    if (r.dstLen === 0 && r.gateway) e[r.family === 4 ? 'gateway' : 'gateway6'] = r.gateway;
  }
  for (const rule of live.rules) {
    if (rule.protocol !== RTPROT_RECONCILER) continue;
    const iface = ifaceOf.get(rule.table);
    if (iface === undefined) {
      notes.push(`rule from ${rule.src} lookup ${rule.table} (proto ${RTPROT_RECONCILER}) points at a table without the tool's routes`);
      continue;
    }
    if (rule.priority !== DEFAULT_RULE_PRIORITY) out[iface]!.priority = rule.priority;
  }
  return orderedSourceRouting(out);
}

// ---- the `show -o json` snapshot (what `plan --live` reads) ---------------

const flagName = z.enum(ENDPOINT_FLAGS.map((f) => f.name) as [string, ...string[]]);

const liveEndpointSchema = z.object({
  id: z.number().int().min(0).max(255),
  family: z.union([z.literal(4), z.literal(6)]),
  address: z.string(),
  port: z.number().int().min(1).max(65535).optional(),
  flags: z.array(flagName),
  rawFlags: z.number().int().min(0).optional(),
  ifindex: z.number().int().optional(),
  /** Present in `show -o json` for humans; not part of LiveEndpoint. */
  implicit: z.boolean().optional(),
  dev: z.string().optional(),
});

const familySchema = z.union([z.literal(4), z.literal(6)]);
const liveRouteSchema = z.object({
  family: familySchema,
  table: z.number().int().min(0),
  dst: z.string(),
  dstLen: z.number().int().min(0).max(128),
  ifindex: z.number().int(),
  gateway: z.string().optional(),
  scope: z.union([z.enum(['universe', 'link']), z.number().int()]),
  protocol: z.number().int().min(0).max(255),
  metric: z.number().int().optional(),
  other: z.boolean(),
});
const liveRuleSchema = z.object({
  family: familySchema,
  priority: z.number().int().min(0),
  src: z.string(),
  srcLen: z.number().int().min(0).max(128),
  table: z.number().int().min(0),
  protocol: z.number().int().min(0).max(255),
  other: z.boolean(),
});

export const liveNamespaceSchema = z.object({
  netns: z.string().min(1),
  endpoints: z.array(liveEndpointSchema),
  limits: z.object({ subflows: z.number().int().min(0), addAddrAccepted: z.number().int().min(0) }),
  mptcp: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])),
  rpFilter: z.record(z.string(), z.number().int()),
  links: z.array(z.object({ ifindex: z.number().int(), name: z.string(), up: z.boolean(), lowerUp: z.boolean() })),
  addresses: z.array(
    z.object({
      ifindex: z.number().int(),
      family: z.union([z.literal(4), z.literal(6)]),
      address: z.string(),
      prefixlen: z.number().int().min(0).max(128),
      scope: z.union([z.enum(['global', 'site', 'link', 'host', 'nowhere']), z.number().int()]),
      tentative: z.boolean(),
      dadfailed: z.boolean(),
      deprecated: z.boolean(),
      temporary: z.boolean(),
    }),
  ),
  /** Source routing: every rule and the tool's own routes; absent in older snapshots (then no routing is planned). */
  routes: z.array(liveRouteSchema).optional(),
  rules: z.array(liveRuleSchema).optional(),
});

export const liveSnapshotSchema = z.object({
  node: z.string(),
  namespaces: z.array(liveNamespaceSchema),
});

export interface LiveSnapshot {
  node: string;
  namespaces: LiveNamespace[];
}

/** The JSON document of `show -o json` for these namespaces. */
export function toLiveSnapshot(node: string, namespaces: LiveNamespace[]): unknown {
  return {
    node,
    namespaces: namespaces.map((ns) => {
      const names = new Map(ns.links.map((l) => [l.ifindex, l.name]));
      return {
        ...ns,
        endpoints: ns.endpoints.map((ep) => {
          const dev = ep.ifindex !== undefined ? names.get(ep.ifindex) : undefined;
          return { ...ep, ...(dev !== undefined ? { dev } : {}), ...(ep.flags.includes('implicit') ? { implicit: true } : {}) };
        }),
      };
    }),
  };
}

/**
 * Parses and checks a saved `show -o json`; throws an Error whose message says
 * where the document is wrong. The human-only endpoint fields are dropped.
 */
export function parseLiveSnapshot(json: string): LiveSnapshot {
  let doc: unknown;
  try {
    doc = JSON.parse(json);
  } catch (e) {
    throw new Error(`live snapshot is not JSON: ${(e as Error).message}`);
  }
  const r = liveSnapshotSchema.safeParse(doc);
  if (!r.success) {
    const i = r.error.issues[0]!;
    throw new Error(`live snapshot: ${i.path.join('.') || '(top)'}: ${i.message} (expected the output of \`show -o json\`)`);
  }
  return {
    node: r.data.node,
    namespaces: r.data.namespaces.map((ns) => ({
      ...ns,
      mptcp: ns.mptcp as MptcpConfig,
      endpoints: ns.endpoints.map(({ implicit: _i, dev: _d, ...ep }) => ep as LiveEndpoint),
    })),
  };
}
