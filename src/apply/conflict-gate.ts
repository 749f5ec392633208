// The conflict gate the one-shot commands (plan, apply) put in front of a pass:
// scan /proc and read NetworkManager's and mptcpd's configuration once, then per
// namespace decide from the evidence and the entry's `conflicts:` policy. The
// daemon builds its own per pass, adding its fight detector's state.
import {
  declaredScope,
  decide,
  detectFromScan,
  netnsIdentitySync,
  readManagerConfigs,
  scanManagerProcesses,
  type ConflictRoots,
  type FightState,
} from '../conflicts/index.js';
import type { ConflictGate } from './reconcile.js';

export interface ConflictGateOptions extends ConflictRoots {
  /** The fight detector's view of a namespace (daemon only). */
  fight?: (netns: string) => FightState | undefined;
  now?: () => number;
}

export async function createConflictGate(opts: ConflictGateOptions = {}): Promise<ConflictGate> {
  const [scan, configs] = await Promise.all([
    scanManagerProcesses({
      ...(opts.procRoot ? { procRoot: opts.procRoot } : {}),
      ...(opts.managerNames ? { names: opts.managerNames } : {}),
    }),
    readManagerConfigs(opts),
  ]);
  const procRoot = opts.procRoot ?? '/proc';
  return ({ netns, desired, live }) => {
    const isHost = netns === 'host';
    // The host is the namespace this process runs in; named ones are bind mounts in /run/netns.
    const target = netnsIdentitySync(isHost ? `${procRoot}/thread-self/ns/net` : `/run/netns/${netns}`);
    const livePm = live.mptcp.pathManager;
    const evidence = detectFromScan(scan, configs, {
      target,
      isHost,
      ...(livePm !== undefined ? { livePathManager: livePm } : {}),
      ...(desired.mptcp.pathManager !== undefined ? { desiredPathManager: desired.mptcp.pathManager } : {}),
    });
    return decide(desired.conflicts, evidence, opts.fight?.(netns), {
      netns,
      scope: declaredScope(desired),
      ...(opts.now ? { now: opts.now() } : {}),
    });
  };
}
