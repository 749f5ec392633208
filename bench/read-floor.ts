// What a converged resync cannot do without: per namespace, the endpoint dump and
// limits read over generic netlink, the path-manager sysctl, and the identity
// check of /run/netns/NAME; the bytes compared with the last read, nothing
// decoded. Done here in a tight loop over open handles, so the daemon's idle CPU
// can be split into this floor (kernel time and the read itself) and the rest
// of a pass (scheduling, conflicts, status, metrics).
import { netnsIdentity } from '../src/kernel/netns.js';
import { closeAllNamespaces, openNamespace } from '../src/kernel/namespace.js';
import type { LiveFingerprint, LiveSelection } from '../src/kernel/api.js';

export interface ReadFloor {
  /** CPU per namespace and resync, split into kernel (system) and user time. */
  userUs: number;
  systemUs: number;
  /** At `n` namespaces and one resync every `resyncMs`: the share of one core. */
  percent: number;
  kernelPercent: number;
}

const SELECT: LiveSelection = { endpoints: true, limits: true, mptcp: ['pathManager'] };

export async function readFloor(names: readonly string[], resyncMs: number, rounds = 20): Promise<ReadFloor> {
  const handles = names.map((n) => openNamespace(n));
  const since = new Map<object, LiveFingerprint>();
  const pass = async () => {
    for (let i = 0; i < handles.length; i++) {
      const h = handles[i]!;
      if (!netnsIdentity(names[i]!)) throw new Error(`${names[i]} is gone`);
      const r = await h.readLiveIfChanged(SELECT, since.get(h));
      if (r.live) since.set(h, r.fingerprint);
    }
  };
  try {
    // The first rounds open sockets and files and let V8 tier the code up.
    for (let i = 0; i < 5; i++) await pass();
    const c0 = process.cpuUsage();
    for (let i = 0; i < rounds; i++) await pass();
    const c = process.cpuUsage(c0);
    const reads = rounds * names.length;
    const userUs = c.user / reads;
    const systemUs = c.system / reads;
    const perSecond = (names.length * 1000) / resyncMs;
    return { userUs, systemUs, percent: ((userUs + systemUs) * perSecond) / 1e4, kernelPercent: (systemUs * perSecond) / 1e4 };
  } finally {
    closeAllNamespaces();
  }
}
