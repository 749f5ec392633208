// From the file to what one concrete namespace on one node should be. Pure.
// Every entry whose `nodes` and `netns` match applies, in file order (files in
// lexical order): mptcp/limits/rpFilter merge key by key, endpoints by identity
// (a later one replaces an earlier one and takes its place in the order), and
// the later prune/conflicts win. The result is canonical (keys and flags in a
// fixed order) so that equal desired states compare and render equal.
import { globMatch, isGlob } from '../core/glob.js';
import type { DesiredNamespace } from '../core/model.js';
import { sortFlags } from '../core/flags.js';
import type { Diagnostic } from './diagnostics.js';
import { formatPath } from './diagnostics.js';
import { describeEndpoint, endpointIdentity } from './parse.js';
import { MAX_ENDPOINTS } from '../core/vocabulary.js';
import type { EntrySource, Position } from './parse.js';
import { limitsSchema, mptcpSchema, RP_FILTER_NAMES } from '../core/schema.js';
import type { Config, EndpointConfig, LimitsConfig, MptcpConfig, NamespaceEntry, RpFilterName, RpFilterValue } from '../core/schema.js';
import { DEFAULT_LINK_DOWN_HOLD_MS, normalizeSourceRoute, orderedSourceRouting } from '../core/schema-routing.js';
import type { DesiredRouting, LinkDownPolicy, SourceRouteConfig } from '../core/schema-routing.js';
import { parseDuration } from '../core/duration.js';

/** The reconciler's own namespace; only the literal pattern `host` selects it. */
export const HOST_NETNS = 'host';

export function entryMatchesNode(entry: NamespaceEntry, node: string): boolean {
  return entry.nodes === undefined || entry.nodes.some((p) => (isGlob(p) ? globMatch(p, node) : p === node));
}

/** `host` matches only the reconciler's namespace; other patterns are globs over /run/netns names. */
export function entryMatchesNetns(entry: NamespaceEntry, netns: string): boolean {
  if (entry.netns === HOST_NETNS || netns === HOST_NETNS) return entry.netns === netns;
  return isGlob(entry.netns) ? globMatch(entry.netns, netns) : entry.netns === netns;
}

export function rpFilterName(v: RpFilterValue): RpFilterName {
  return typeof v === 'number' ? RP_FILTER_NAMES[v] : v;
}

const MPTCP_ORDER = Object.keys(mptcpSchema.shape) as (keyof MptcpConfig)[];
const LIMITS_ORDER = Object.keys(limitsSchema.shape) as (keyof LimitsConfig)[];

function ordered<T extends object>(obj: T, order: readonly (keyof T)[]): T {
  const out = {} as T;
  for (const k of order) if (obj[k] !== undefined) out[k] = obj[k];
  return out;
}

/** `all`, `default`, then interfaces by name. */
export function orderedRpFilter(rp: Record<string, RpFilterName>): Record<string, RpFilterName> {
  const rank = (k: string) => (k === 'all' ? 0 : k === 'default' ? 1 : 2);
  const out: Record<string, RpFilterName> = {};
  for (const k of Object.keys(rp).sort((a, b) => rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0))) out[k] = rp[k]!;
  return out;
}

/** Canonical endpoint: fixed key order, flags in table order, always a flags list. */
export function normalizeEndpoint(ep: EndpointConfig): EndpointConfig {
  const out: EndpointConfig = {};
  if (ep.address !== undefined) out.address = ep.address;
  if (ep.dev !== undefined) out.dev = ep.dev;
  if (ep.family !== undefined) out.family = ep.family;
  if (ep.port !== undefined) out.port = ep.port;
  if (ep.id !== undefined) out.id = ep.id;
  out.flags = sortFlags(ep.flags ?? []) as EndpointConfig['flags'];
  return out;
}

interface Origin {
  entry: number;
  endpoint: number;
}

interface Merged {
  desired: DesiredNamespace;
  /** Aligned with desired.endpoints. */
  origins: Origin[];
  entries: number[];
}

// Literal names are looked up, globs are tried: resolving thousands of
// namespaces against thousands of entries stays linear in practice.
interface EntryIndex {
  literal: Map<string, number[]>;
  globs: number[];
  /** Entries indexed; a config that grew since is indexed again. */
  count: number;
}
const indexes = new WeakMap<Config, EntryIndex>();

function entryIndex(config: Config): EntryIndex {
  let idx = indexes.get(config);
  if (idx && config.namespaces.length === idx.count) return idx;
  idx = { literal: new Map(), globs: [], count: config.namespaces.length };
  config.namespaces.forEach((e, i) => {
    if (e.netns !== HOST_NETNS && isGlob(e.netns)) idx!.globs.push(i);
    else {
      const l = idx!.literal.get(e.netns);
      if (l) l.push(i);
      else idx!.literal.set(e.netns, [i]);
    }
  });
  indexes.set(config, idx);
  return idx;
}

/** Indices of the entries that apply to this namespace on this node, in file order. */
function matchingEntries(config: Config, node: string, netns: string): number[] {
  const idx = entryIndex(config);
  const lit = idx.literal.get(netns) ?? [];
  const globs = netns === HOST_NETNS ? [] : idx.globs.filter((i) => entryMatchesNetns(config.namespaces[i]!, netns));
  const all = globs.length === 0 ? lit : lit.length === 0 ? globs : [...lit, ...globs].sort((a, b) => a - b);
  return all.filter((i) => entryMatchesNode(config.namespaces[i]!, node));
}

function merge(config: Config, node: string, netns: string): Merged | undefined {
  const entries: number[] = [];
  const mptcp: MptcpConfig = {};
  const limits: LimitsConfig = {};
  const rpFilter: Record<string, RpFilterName> = {};
  let endpoints: Map<string, { ep: EndpointConfig; origin: Origin }> | undefined;
  let prune = true;
  let conflicts: DesiredNamespace['conflicts'] = 'fail';
  const linkDown: NonNullable<DesiredNamespace['linkDown']> = { policy: 'withdraw', holdMs: DEFAULT_LINK_DOWN_HOLD_MS };
  let routes: Record<string, SourceRouteConfig> | undefined;
  for (const i of matchingEntries(config, node, netns)) {
    const entry = config.namespaces[i]!;
    entries.push(i);
    Object.assign(mptcp, entry.mptcp);
    Object.assign(limits, entry.limits);
    for (const [k, v] of Object.entries(entry.rpFilter ?? {})) rpFilter[k] = rpFilterName(v);
    if (entry.endpoints !== undefined) {
      endpoints ??= new Map();
      entry.endpoints.forEach((ep, j) => {
        const key = endpointIdentity(ep);
        // Delete first: the replacement takes the later position.
        endpoints!.delete(key);
        endpoints!.set(key, { ep: normalizeEndpoint(ep), origin: { entry: i, endpoint: j } });
      });
    }
    if (entry.prune !== undefined) prune = entry.prune;
    if (entry.conflicts !== undefined) conflicts = entry.conflicts;
    if (entry.linkDown !== undefined) linkDown.policy = entry.linkDown;
    if (entry.linkDownHold !== undefined) linkDown.holdMs = parseDuration(entry.linkDownHold) ?? linkDown.holdMs;
    // Per interface: a later entry's interface replaces the earlier one whole.
    for (const [iface, r] of Object.entries(entry.sourceRouting ?? {})) (routes ??= {})[iface] = r;
    if (entry.sourceRouting !== undefined) routes ??= {};
  }
  if (entries.length === 0) return undefined;
  const list = endpoints ? [...endpoints.values()] : undefined;
  return {
    desired: {
      netns,
      mptcp: ordered(mptcp, MPTCP_ORDER),
      limits: ordered(limits, LIMITS_ORDER),
      endpoints: list?.map((x) => x.ep),
      rpFilter: orderedRpFilter(rpFilter),
      prune,
      conflicts,
      linkDown,
      ...(routes && { sourceRouting: orderedSourceRouting(routes) }),
    },
    origins: list?.map((x) => x.origin) ?? [],
    entries,
  };
}

/** The effective desired state of one concrete namespace, or undefined when no entry applies (never touch it). */
export function resolveNamespace(config: Config, node: string, netnsName: string): DesiredNamespace | undefined {
  return merge(config, node, netnsName)?.desired;
}

/**
 * The routing part of one namespace's desired state, or undefined when no entry
 * applies. `sourceRouting` merges per interface (a later entry's interface
 * replaces the earlier one whole); `linkDown` and `linkDownHold`: the later wins.
 */
export function resolveRouting(config: Config, node: string, netnsName: string): DesiredRouting | undefined {
  return mergeRouting(config, matchingEntries(config, node, netnsName)).routing;
}

function mergeRouting(config: Config, indices: number[]): { routing?: DesiredRouting; tableOrigin: Map<number, { iface: string; entry: number }[]> } {
  const sourceRouting: Record<string, SourceRouteConfig & { entry?: number }> = {};
  let linkDown: LinkDownPolicy = 'withdraw';
  let linkDownHoldMs = DEFAULT_LINK_DOWN_HOLD_MS;
  for (const i of indices) {
    const e = config.namespaces[i]!;
    for (const [iface, r] of Object.entries(e.sourceRouting ?? {})) sourceRouting[iface] = { ...normalizeSourceRoute(r), entry: i };
    if (e.linkDown !== undefined) linkDown = e.linkDown;
    if (e.linkDownHold !== undefined) linkDownHoldMs = parseDuration(e.linkDownHold) ?? linkDownHoldMs;
  }
  const tableOrigin = new Map<number, { iface: string; entry: number }[]>();
  for (const [iface, r] of Object.entries(sourceRouting)) {
    tableOrigin.set(r.table, [...(tableOrigin.get(r.table) ?? []), { iface, entry: r.entry! }]);
    delete r.entry;
  }
  if (indices.length === 0) return { tableOrigin };
  return { routing: { sourceRouting: orderedSourceRouting(sourceRouting), linkDown, linkDownHoldMs }, tableOrigin };
}

/** Every namespace some entry applies to: `host` plus the given /run/netns names, in that order. */
export function resolveAll(config: Config, node: string, netnsNames: readonly string[]): DesiredNamespace[] {
  const out: DesiredNamespace[] = [];
  for (const name of namesToConsider(netnsNames)) {
    const d = resolveNamespace(config, node, name);
    if (d) out.push(d);
  }
  return out;
}

// A /run/netns entry literally named "host" cannot be told apart from the
// reconciler's own namespace in the file, so it is not managed.
function namesToConsider(netnsNames: readonly string[]): string[] {
  return [HOST_NETNS, ...[...new Set(netnsNames)].filter((n) => n !== HOST_NETNS)];
}

/** Literal (non-glob) namespace names the config declares for this node that are not in the live list. */
export function missingNamespaces(config: Config, node: string, netnsNames: readonly string[]): string[] {
  const live = new Set(netnsNames);
  const out = new Set<string>();
  for (const e of config.namespaces) {
    if (e.netns === HOST_NETNS || isGlob(e.netns) || !entryMatchesNode(e, node)) continue;
    if (!live.has(e.netns)) out.add(e.netns);
  }
  return [...out];
}

function posDiag(code: string, pos: Position | undefined, message: string, hint: string): Diagnostic {
  return {
    severity: 'error',
    code,
    file: pos?.file ?? '',
    line: pos?.line ?? 0,
    column: pos?.column ?? 0,
    path: pos?.path ?? '',
    message,
    hint,
    source: pos?.source,
    length: pos?.length,
  };
}

/**
 * Rules that hold only after merging (at most 8 endpoints, unique ids, unique
 * identities), for these concrete namespaces on this node. Each problem is
 * positioned at the later endpoint that causes it when `entries` (from the
 * loader) is given.
 */
export function checkMerged(
  config: Config,
  node: string,
  netnsNames: readonly string[],
  entries?: readonly EntrySource[],
): Diagnostic[] {
  const out: Diagnostic[] = [];
  for (const name of namesToConsider(netnsNames)) {
    // A table may be unique in each entry and still shared after merging.
    for (const [table, users] of mergeRouting(config, matchingEntries(config, node, name)).tableOrigin) {
      if (users.length < 2) continue;
      const [first, later] = [users[0]!, users[1]!];
      const at = (i: number) => (entries?.[i] ? `${entries[i]!.file}:${entries[i]!.line}` : formatPath(['namespaces', i]));
      out.push(
        posDiag(
          'shared-table',
          entries?.[later.entry],
          `after merging, routing table ${table} of ${later.iface} is also the table of ${first.iface} (${at(first.entry)}) in namespace "${name}" on node "${node}"`,
          'give every interface a table of its own',
        ),
      );
    }
    // Endpoints' after-merge rules; one entry alone was checked when parsed.
    if (matchingEntries(config, node, name).filter((i) => config.namespaces[i]!.endpoints?.length).length < 2) continue;
    const m = merge(config, node, name);
    const eps = m?.desired.endpoints;
    if (!m || !eps) continue;
    const where = `namespace "${name}" on node "${node}"`;
    const pos = (o: Origin) => entries?.[o.entry]?.endpoints[o.endpoint];
    const label = (o: Origin) => {
      const e = entries?.[o.entry];
      return e ? `${e.file}:${e.endpoints[o.endpoint]?.line ?? e.line}` : formatPath(['namespaces', o.entry, 'endpoints', o.endpoint]);
    };
    // Dev endpoints count once here; at run time they count once per address.
    if (eps.length > MAX_ENDPOINTS) {
      const o = m.origins[MAX_ENDPOINTS]!;
      out.push(
        posDiag(
          'too-many-endpoints',
          pos(o),
          `after merging, ${where} has ${eps.length} endpoints; the kernel holds at most ${MAX_ENDPOINTS}`,
          `the entries merged here: ${[...new Set(m.entries.map((i) => (entries?.[i] ? `${entries[i]!.file}:${entries[i]!.line}` : formatPath(['namespaces', i]))))].join(', ')}; remove endpoints or narrow \`netns\`/\`nodes\``,
        ),
      );
    }
    const ids = new Map<number, number>();
    eps.forEach((ep, k) => {
      if (ep.id === undefined) return;
      const prev = ids.get(ep.id);
      if (prev === undefined) {
        ids.set(ep.id, k);
        return;
      }
      const o = m.origins[k]!;
      out.push(
        posDiag(
          'duplicate-id',
          pos(o),
          `after merging, id ${ep.id} of endpoint ${describeEndpoint(ep)} is also used by endpoint ${describeEndpoint(eps[prev]!)} (${label(m.origins[prev]!)}) in ${where}`,
          'ids must be unique in a namespace; change one or leave `id` out',
        ),
      );
    });
  }
  return out;
}

/**
 * A name that `pattern` matches, to stand for it when no live list exists
 * (validate, render). Undefined when none is found quickly.
 */
export function witnessName(pattern: string): string | undefined {
  if (!isGlob(pattern)) return pattern;
  const tries = [''];
  for (const star of ['', 'x']) {
    let s = '';
    for (let i = 0; i < pattern.length; i++) {
      const ch = pattern[i]!;
      if (ch === '\\' && i + 1 < pattern.length) s += pattern[++i];
      else if (ch === '*') s += star;
      else if (ch === '?') s += 'x';
      else if (ch === '[') {
        const end = pattern.indexOf(']', i + 2);
        if (end < 0) {
          s += ch;
          continue;
        }
        const body = pattern.slice(i + 1, end);
        if (body.startsWith('!') || body.startsWith('^')) {
          const excluded = body.slice(1);
          s += [...'xyzq0_'].find((c) => !excluded.includes(c)) ?? 'x';
        } else s += body[0];
        i = end;
      } else if (ch === '{') {
        const end = pattern.indexOf('}', i);
        if (end < 0) {
          s += ch;
          continue;
        }
        s += pattern.slice(i + 1, end).split(',')[0];
        i = end;
      } else s += ch;
    }
    tries.push(s);
  }
  return tries.find((t) => t !== '' && t !== HOST_NETNS && globMatch(pattern, t));
}

/** Node names and namespace names that exercise every entry (used where there is no live list). */
export function candidateNames(config: Config): { nodes: string[]; netns: string[] } {
  const nodes = new Set<string>();
  const netns = new Set<string>([HOST_NETNS]);
  for (const e of config.namespaces) {
    for (const p of e.nodes ?? []) {
      const w = witnessName(p);
      if (w) nodes.add(w);
    }
    const w = witnessName(e.netns);
    if (w) netns.add(w);
  }
  if (nodes.size === 0) nodes.add('node');
  return { nodes: [...nodes], netns: [...netns] };
}
