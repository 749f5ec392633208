// Turns the declared endpoints of one namespace into concrete kernel endpoints:
// `dev` names become ifindexes, an address-less `dev` endpoint becomes one endpoint
// per usable address of that interface. Shared by plan and verify so that both
// judge the same desired set; everything that can't be resolved yet is `pending`.
import type { EndpointConfig } from './schema.js';
import { addressFamily, canonicalAddress, endpointKey } from './address.js';
import { sortFlags, type FlagName } from './flags.js';
import type { Family, LiveAddress, LiveNamespace, Pending } from './model.js';

/** One endpoint the namespace should hold, fully resolved against the live links. */
export interface ResolvedEndpoint {
  /** endpointKey(address, port): the identity the kernel uses. */
  key: string;
  address: string;
  family: Family;
  port?: number;
  /** Only when the user pinned it. */
  id?: number;
  flags: FlagName[];
  dev?: string;
  ifindex?: number;
  /** Expanded from an address-less `dev` endpoint. */
  derived: boolean;
  /** Index of the declaring entry in desired.endpoints (for ordering and messages). */
  index: number;
}

export interface Resolution {
  endpoints: ResolvedEndpoint[];
  /** Keys of declared endpoints that can't be resolved yet: their live twin is left alone. */
  heldKeys: Set<string>;
  pending: Pending[];
  errors: string[];
}

/** `192.0.2.1` or `192.0.2.1 port 10000`: how endpoints are named in messages. */
export function endpointLabel(address: string, port?: number): string {
  return port === undefined ? address : `${address} port ${port}`;
}

function isLinkLocal(a: LiveAddress): boolean {
  if (a.scope === 'link' || a.scope === 253) return true;
  // fe80::/10 (the first 10 bits are 1111111010), and IPv4 169.254/16, which is
  // often configured with global scope but never routed beyond the link.
  const addr = canonicalAddress(a.address);
  return a.family === 6 ? /^fe[89ab]/i.test(addr) : addr.startsWith('169.254.');
}

function isGlobal(a: LiveAddress): boolean {
  // RT_SCOPE_UNIVERSE (0) is what iproute2 calls "global".
  return a.scope === 'global' || a.scope === 0;
}

/**
 * Addresses of one interface an address-less `dev` endpoint stands for: global
 * scope only, and never an address the kernel can't use as a source yet
 * (tentative, failed DAD) or is phasing out (deprecated).
 */
export function usableAddresses(live: LiveNamespace, ifindex: number, family: 'ipv4' | 'ipv6' | 'any' = 'any'): LiveAddress[] {
  return live.addresses.filter(
    (a) =>
      a.ifindex === ifindex &&
      isGlobal(a) &&
      !isLinkLocal(a) &&
      !a.tentative &&
      !a.dadfailed &&
      !a.deprecated &&
      (family === 'any' || (family === 'ipv4' ? a.family === 4 : a.family === 6)),
  );
}

export function resolveEndpoints(declared: EndpointConfig[], live: LiveNamespace): Resolution {
  const pending: Pending[] = [];
  const errors: string[] = [];
  const heldKeys = new Set<string>();
  const explicit: ResolvedEndpoint[] = [];
  const derived: ResolvedEndpoint[] = [];
  const linkByName = new Map(live.links.map((l) => [l.name, l]));

  declared.forEach((ep, index) => {
    const flags = sortFlags((ep.flags ?? []) as FlagName[]);
    const link = ep.dev === undefined ? undefined : linkByName.get(ep.dev);
    if (ep.address !== undefined) {
      const address = canonicalAddress(ep.address);
      const key = endpointKey(address, ep.port);
      if (ep.dev !== undefined && link === undefined) {
        heldKeys.add(key);
        pending.push({
          what: `endpoints[${endpointLabel(address, ep.port)}]`,
          reason: `dev ${ep.dev} does not exist (yet)`,
        });
        return;
      }
      explicit.push({
        key,
        address,
        family: addressFamily(address),
        ...(ep.port !== undefined && { port: ep.port }),
        ...(ep.id !== undefined && { id: ep.id }),
        flags,
        ...(ep.dev !== undefined && { dev: ep.dev, ifindex: link!.ifindex }),
        derived: false,
        index,
      });
      return;
    }
    // Address-less: stands for the current addresses of `dev`.
    const what = `endpoints[dev ${ep.dev}]`;
    if (link === undefined) {
      pending.push({ what, reason: `dev ${ep.dev} does not exist (yet)` });
      return;
    }
    const addrs = usableAddresses(live, link.ifindex, ep.family);
    if (addrs.length === 0) {
      pending.push({ what, reason: `dev ${ep.dev} has no usable ${ep.family && ep.family !== 'any' ? `${ep.family} ` : ''}address (global scope, not tentative or deprecated)` });
      return;
    }
    if (ep.id !== undefined && addrs.length > 1) {
      errors.push(
        `${what}: id ${ep.id} can pin only one endpoint, but dev ${ep.dev} has ${addrs.length} usable addresses (${addrs
          .map((a) => canonicalAddress(a.address))
          .join(', ')}); give the address explicitly or drop the id`,
      );
      return;
    }
    for (const a of addrs) {
      const address = canonicalAddress(a.address);
      derived.push({
        key: endpointKey(address, ep.port),
        address,
        family: addressFamily(address),
        ...(ep.port !== undefined && { port: ep.port }),
        ...(ep.id !== undefined && { id: ep.id }),
        flags,
        dev: link.name,
        ifindex: link.ifindex,
        derived: true,
        index,
      });
    }
  });

  const endpoints: ResolvedEndpoint[] = [];
  const byKey = new Map<string, ResolvedEndpoint>();
  for (const ep of explicit) {
    const other = byKey.get(ep.key);
    if (other) {
      errors.push(`endpoints[${endpointLabel(ep.address, ep.port)}] is declared twice (entries ${other.index + 1} and ${ep.index + 1})`);
      continue;
    }
    byKey.set(ep.key, ep);
    endpoints.push(ep);
  }
  for (const ep of derived) {
    // An explicit endpoint for the same address says more than a derived one; the
    // same address on two interfaces is taken from the first declaring entry.
    if (byKey.has(ep.key)) continue;
    if (heldKeys.has(ep.key)) continue;
    byKey.set(ep.key, ep);
    endpoints.push(ep);
  }
  // Merge rejects this for a valid file; kept as a guard so plan never sends two
  // adds with one id (the second would get EBUSY).
  const byId = new Map<number, ResolvedEndpoint>();
  const unique = endpoints.filter((ep) => {
    if (ep.id === undefined) return true;
    const other = byId.get(ep.id);
    if (!other) {
      byId.set(ep.id, ep);
      return true;
    }
    errors.push(
      `id ${ep.id} is pinned by both endpoints[${endpointLabel(other.address, other.port)}] and endpoints[${endpointLabel(ep.address, ep.port)}]`,
    );
    return false;
  });
  return { endpoints: unique, heldKeys, pending, errors };
}
