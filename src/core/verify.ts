// Verify: compare a freshly re-read live namespace with the desired state and name
// what still differs, nmstate style (`limits.subflows: want 4, have 2`). It does
// not consult the planner: it checks the end state directly, so a planner bug
// shows up here (and in the property test) instead of being confirmed by itself.
import { SYSCTL_NAMES, type MptcpKey } from './schema.js';
import { rpFilterName } from './vocabulary.js';
import { endpointKey } from './address.js';
import { endpointLabel, resolveEndpoints } from './derive.js';
import { sortFlags, type FlagName } from './flags.js';
import { linkTrouble, splitByLink } from './link-lifecycle.js';
import type { DesiredNamespace, LinkHold, LiveNamespace, Pending } from './model.js';
import { canonicalAddress } from './address.js';
import { DEFAULT_RULE_PRIORITY } from './schema-routing.js';
import { describeRoute, describeRule, networkOf, routedEndpoints, RTPROT_RECONCILER } from './source-routing.js';

export interface VerifyResult {
  converged: boolean;
  /** The first entry of `differences`. */
  firstDifference?: string;
  /** Every path that differs, in the order sysctls, limits, endpoints, rpFilter. */
  differences: string[];
  /** Declared things that can't exist yet (a missing dev or interface): not a difference. */
  pending: Pending[];
}


function show(v: unknown): string {
  return v === undefined ? '(none)' : String(v);
}

function flagList(flags: readonly FlagName[]): string {
  return `[${sortFlags(flags).join(' ')}]`;
}

/** `hold`: what watch's link lifecycle holds back (those endpoints must be absent). */
export function verifyNamespace(desired: DesiredNamespace, live: LiveNamespace, hold?: LinkHold): VerifyResult {
  const differences: string[] = [];
  const pending: Pending[] = [];

  for (const key of Object.keys(SYSCTL_NAMES) as MptcpKey[]) {
    const want = desired.mptcp[key];
    if (want === undefined) continue;
    const have = live.mptcp[key];
    if (have === undefined) differences.push(`mptcp.${key}: want ${show(want)}, have (this kernel lacks net.mptcp.${SYSCTL_NAMES[key]})`);
    else if (have !== want) differences.push(`mptcp.${key}: want ${show(want)}, have ${show(have)}`);
  }

  for (const key of ['subflows', 'addAddrAccepted'] as const) {
    const want = desired.limits[key];
    if (want !== undefined && want !== live.limits[key]) {
      differences.push(`limits.${key}: want ${want}, have ${live.limits[key]}`);
    }
  }

  if (desired.endpoints !== undefined) {
    const res = resolveEndpoints(desired.endpoints, live);
    pending.push(...res.pending);
    differences.push(...res.errors.map((e) => `endpoints: ${e}`));
    const nameOf = (ifindex: number | undefined) =>
      ifindex === undefined ? undefined : (live.links.find((l) => l.ifindex === ifindex)?.name ?? `if${ifindex}`);
    const wanted = new Set<string>();
    const split = splitByLink(res.endpoints, live, desired.linkDown?.policy ?? 'withdraw', hold);
    for (const { e, iface } of split.held) {
      wanted.add(e.key);
      const l = live.endpoints.find((x) => endpointKey(x.address, x.port) === e.key);
      if (l && !l.flags.includes('implicit')) {
        differences.push(`endpoints[${endpointLabel(e.address, e.port)}]: want absent (${linkTrouble(live.links, iface)}: withdrawn), have present id ${l.id}`);
      }
    }
    for (const d of split.active) {
      wanted.add(d.key);
      const path = `endpoints[${endpointLabel(d.address, d.port)}]`;
      const l = live.endpoints.find((e) => endpointKey(e.address, e.port) === d.key);
      if (!l) {
        differences.push(`${path}: want present ${flagList(d.flags)}, have absent`);
        continue;
      }
      if (flagList(l.flags) !== flagList(d.flags)) differences.push(`${path}.flags: want ${flagList(d.flags)}, have ${flagList(l.flags)}`);
      if (l.ifindex !== d.ifindex) differences.push(`${path}.dev: want ${show(d.dev)}, have ${show(nameOf(l.ifindex))}`);
      if (d.id !== undefined && l.id !== d.id) differences.push(`${path}.id: want ${d.id}, have ${l.id}`);
    }
    if (desired.prune) {
      for (const l of live.endpoints) {
        const key = endpointKey(l.address, l.port);
        if (wanted.has(key) || res.heldKeys.has(key) || l.flags.includes('implicit')) continue;
        differences.push(`endpoints[${endpointLabel(l.address, l.port)}]: want absent (prune), have present ${flagList(l.flags)} id ${l.id}`);
      }
    }
  }

  for (const [iface, want] of Object.entries(desired.rpFilter)) {
    const have = live.rpFilter[iface];
    const known = iface === 'all' || iface === 'default' || have !== undefined || live.links.some((l) => l.name === iface);
    if (!known) {
      pending.push({ what: `rpFilter.${iface}`, reason: `interface ${iface} does not exist (yet)` });
      continue;
    }
    const haveName = have === undefined ? undefined : rpFilterName(have);
    if (haveName !== want) differences.push(`rpFilter.${iface}: want ${want}, have ${show(haveName)}`);
  }

  differences.push(...verifyRouting(desired, live));

  return {
    converged: differences.length === 0,
    ...(differences.length > 0 && { firstDifference: differences[0] }),
    differences,
    pending,
  };
}

/**
 * Source routing, checked on the end state: every declared interface that is up
 * has its connected prefixes and default route in its table, every endpoint
 * address on it its rule (whoever made them), and nothing the tool created is
 * left that the declaration does not need.
 */
function verifyRouting(desired: DesiredNamespace, live: LiveNamespace): string[] {
  if (live.routes === undefined || live.rules === undefined) return [];
  const out: string[] = [];
  const declared = desired.sourceRouting ?? {};
  const wantRoutes = new Set<string>();
  const wantRules = new Set<string>();
  const routeId = (table: number, dst: string, len: number, ifindex: number, gw?: string) => `${table}|${dst}/${len}|${ifindex}|${gw ?? ''}`;
  const haveRoutes = new Set(live.routes.filter((r) => !r.other).map((r) => routeId(r.table, r.dst, r.dstLen, r.ifindex, r.gateway)));
  const ruleId = (r: { family: 4 | 6; priority: number; src: string; srcLen: number; table: number }) => `${r.family}|${r.priority}|${r.src}/${r.srcLen}|${r.table}`;
  const haveRules = new Set(live.rules.filter((r) => !r.other).map(ruleId));
  const endpoints = routedEndpoints(desired, live);
  for (const [iface, cfg] of Object.entries(declared)) {
    const link = live.links.find((l) => l.name === iface);
    if (!link) continue;
    const own = live.addresses.filter((a) => a.ifindex === link.ifindex);
    const needed: { family: 4 | 6; dst: string; dstLen: number; gateway?: string }[] = [];
    if (link.up) {
      for (const a of own) {
        const bits = a.family === 4 ? 32 : 128;
        if ((a.scope === 'global' || a.scope === 0) && !a.dadfailed && a.prefixlen < bits) needed.push({ family: a.family, dst: networkOf(a.address, a.prefixlen), dstLen: a.prefixlen });
      }
      if (cfg.gateway) needed.push({ family: 4, dst: '0.0.0.0', dstLen: 0, gateway: canonicalAddress(cfg.gateway) });
      if (cfg.gateway6) needed.push({ family: 6, dst: '::', dstLen: 0, gateway: canonicalAddress(cfg.gateway6) });
    }
    for (const n of needed) {
      const id = routeId(cfg.table, n.dst, n.dstLen, link.ifindex, n.gateway);
      wantRoutes.add(id);
      if (!haveRoutes.has(id)) out.push(`sourceRouting.${iface}: want route ${describeRoute({ ...n, table: cfg.table, ifindex: link.ifindex, scope: 'universe' }, iface)}, have none`);
    }
    for (const ep of endpoints) {
      const address = canonicalAddress(ep.address);
      const home = own.find((a) => canonicalAddress(a.address) === address);
      if (!home || (ep.ifindex !== undefined && ep.ifindex !== link.ifindex)) continue;
      const rule = { family: home.family, priority: cfg.priority ?? DEFAULT_RULE_PRIORITY, src: address, srcLen: home.family === 4 ? 32 : 128, table: cfg.table };
      wantRules.add(ruleId(rule));
      if (!haveRules.has(ruleId(rule))) out.push(`sourceRouting.${iface}: want rule ${describeRule(rule)}, have none`);
    }
  }
  const heldTables = new Set(Object.entries(declared).filter(([i]) => live.links.find((l) => l.name === i)?.up === false).map(([, c]) => c.table));
  for (const r of live.routes) {
    if (r.protocol !== RTPROT_RECONCILER || heldTables.has(r.table) || wantRoutes.has(routeId(r.table, r.dst, r.dstLen, r.ifindex, r.gateway))) continue;
    out.push(`sourceRouting: want absent, have route ${describeRoute(r, live.links.find((l) => l.ifindex === r.ifindex)?.name)} proto ${RTPROT_RECONCILER}`);
  }
  for (const r of live.rules) {
    if (r.protocol !== RTPROT_RECONCILER || (!r.other && wantRules.has(ruleId(r)))) continue;
    out.push(`sourceRouting: want absent, have rule ${describeRule(r)} proto ${RTPROT_RECONCILER}`);
  }
  return out;
}
