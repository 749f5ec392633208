// Address identity as the kernel sees it (docs/kernel-notes.md#commands): IPv4 and v4-mapped IPv6
// compare equal, IPv6 text forms are many. Everything compares canonical forms.
import { isIPv4, isIPv6, SocketAddress } from 'node:net';
import type { Family } from './model.js';

// A pass compares every live and desired address several times, and SocketAddress
// costs microseconds each; the set of distinct addresses is small, so results are
// remembered (bounded: cleared when full, so hostile input cannot grow it).
const canonCache = new Map<string, string>();
const CANON_CACHE_MAX = 4096;

/** Canonical text: IPv4 dotted quad; IPv6 compressed lower case; ::ffff:a.b.c.d -> a.b.c.d. */
export function canonicalAddress(address: string): string {
  let c = canonCache.get(address);
  if (c === undefined) {
    c = computeCanonical(address);
    if (canonCache.size >= CANON_CACHE_MAX) canonCache.clear();
    canonCache.set(address, c);
  }
  return c;
}

function computeCanonical(address: string): string {
  if (isIPv4(address)) return new SocketAddress({ address, family: 'ipv4' }).address;
  if (!isIPv6(address)) throw new Error(`not an IP address: ${address}`);
  const canon = new SocketAddress({ address, family: 'ipv6' }).address.toLowerCase();
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(canon);
  if (mapped) return mapped[1]!;
  const mappedHex = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(canon);
  if (mappedHex) {
    const hi = parseInt(mappedHex[1]!, 16);
    const lo = parseInt(mappedHex[2]!, 16);
    return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
  }
  return canon;
}

export function addressFamily(address: string): Family {
  // Canonical IPv6 text always has a colon, canonical IPv4 never.
  return canonicalAddress(address).includes(':') ? 6 : 4;
}

/** The identity of an endpoint: (canonical address, port or none). */
export function endpointKey(address: string, port?: number): string {
  return `${canonicalAddress(address)}|${port ?? ''}`;
}
