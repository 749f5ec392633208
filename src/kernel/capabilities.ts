// What the running kernel supports, probed cheaply and without writing anything:
// endpoint flags come from the release (a kernel stores unknown flag bits as given,
// and since "mptcp: pm: ignore unknown endpoint flags" silently drops them, so no
// request can tell them apart without creating an endpoint); the sysctls, path
// managers and schedulers are read from /proc/sys/net/mptcp inside the namespace.
// Probed once per namespace and process, or once per namespace handle.
import { readdirSync, readFileSync } from 'node:fs';
import { release as osRelease } from 'node:os';
import type { FlagName } from '../core/flags.js';
import type { KernelCapabilities, PlanCapabilities } from '../core/model.js';
import { withNetns } from './netns.js';

/** The first release that stores each endpoint flag (the kernel's git history). */
export const FLAG_SINCE: Record<FlagName, readonly [number, number]> = {
  signal: [5, 6],
  subflow: [5, 6],
  backup: [5, 6],
  fullmesh: [5, 15],
  implicit: [5, 18],
  laminar: [6, 18],
};

export function parseRelease(release: string): [number, number] | undefined {
  const m = /^(\d+)\.(\d+)/.exec(release);
  return m ? [Number(m[1]), Number(m[2])] : undefined;
}

const atLeast = (v: readonly [number, number], min: readonly [number, number]) => v[0] > min[0] || (v[0] === min[0] && v[1] >= min[1]);

/** Pure: the capabilities a release and a /proc/sys/net/mptcp listing stand for. */
export function capabilitiesFor(
  release: string,
  sysctls: readonly string[],
  available: { pathManagers?: string[]; schedulers?: string[] } = {},
): KernelCapabilities {
  const v = parseRelease(release);
  return {
    release,
    ...(v && { endpointFlags: (Object.keys(FLAG_SINCE) as FlagName[]).filter((f) => atLeast(v, FLAG_SINCE[f])) }),
    sysctls: [...sysctls].sort(),
    ...(available.pathManagers && { pathManagers: available.pathManagers }),
    ...(available.schedulers && { schedulers: available.schedulers }),
  };
}

/**
 * What the release alone tells, all a plan asks for (the endpoint flags): no
 * namespace is entered, where probe() costs a namespace entry, a directory
 * listing and two reads per namespace (a one-shot plan of many namespaces).
 */
export function releaseCapabilities(): PlanCapabilities {
  return capabilitiesFor(osRelease(), []);
}

const cache = new Map<string, KernelCapabilities>();

function words(path: string): string[] | undefined {
  try {
    return readFileSync(path, 'utf8').trim().split(/\s+/).filter(Boolean);
  } catch {
    return undefined;
  }
}

/** Probes `netns` (once per process); a namespace without MPTCP sysctls reports none. */
export function probeCapabilities(netns: string): KernelCapabilities {
  const hit = cache.get(netns);
  if (hit) return hit;
  const caps = probe(netns);
  cache.set(netns, caps);
  return caps;
}

const byHandle = new WeakMap<object, KernelCapabilities>();
let kernelWide: KernelCapabilities | undefined;

/**
 * Once per namespace handle (a long-running daemon): a handle re-opened for a
 * re-created namespace is a new object and gets its own answer. The answer
 * itself is the same for every namespace of this kernel (docs/kernel-notes.md#capabilities),
 * so the daemon probes /proc/sys/net/mptcp once, in the first namespace it
 * manages: listing that directory in each new namespace was 1 of 6 s of CPU
 * when the daemon started on 800 namespaces.
 */
export function capabilitiesOfHandle(handle: { readonly netns: string }): KernelCapabilities {
  let caps = byHandle.get(handle);
  if (!caps) {
    kernelWide ??= probe(handle.netns);
    caps = { ...kernelWide };
    byHandle.set(handle, caps);
  }
  return caps;
}

function probe(netns: string): KernelCapabilities {
  return withNetns(netns, () => {
    let names: string[] = [];
    try {
      names = readdirSync('/proc/sys/net/mptcp');
    } catch {
      names = [];
    }
    const pathManagers = words('/proc/sys/net/mptcp/available_path_managers');
    const schedulers = words('/proc/sys/net/mptcp/available_schedulers');
    return capabilitiesFor(osRelease(), names, { ...(pathManagers && { pathManagers }), ...(schedulers && { schedulers }) });
  });
}

/** One line for humans: `kernel 6.18.44: endpoint flags signal subflow ...; path managers kernel userspace; ...`. */
export function describeCapabilities(c: KernelCapabilities): string {
  return [
    `kernel ${c.release}`,
    `endpoint flags ${c.endpointFlags ? c.endpointFlags.join(' ') : 'unknown (release not recognised)'}`,
    ...(c.pathManagers ? [`path managers ${c.pathManagers.join(' ')}`] : []),
    ...(c.schedulers ? [`schedulers ${c.schedulers.join(' ')}`] : []),
    `${c.sysctls.length} net.mptcp sysctls`,
  ].join('; ');
}
