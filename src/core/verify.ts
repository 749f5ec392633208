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

  return {
    converged: differences.length === 0,
    ...(differences.length > 0 && { firstDifference: differences[0] }),
    differences,
    pending,
  };
}
