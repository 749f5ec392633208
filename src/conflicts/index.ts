// Conflict detection with other MPTCP managers (docs/design.md#conflicts-with-other-managers): the thin reader
// (procfs, /etc) and the pure parts, re-exported for the daemon, apply and doctor.
//
// Per pass: scan = await scanManagerProcesses(); configs = await readManagerConfigs();
// then per namespace: evidence = detectFromScan(...); decision = decide(policy, evidence, fights.state(netns), {netns, scope}).
// Before planning: fights.observe(netns, live) (links and addresses: the environment);
// after writing: fights.recordPass(netns, appliedOps, heldOps). A fight suspends only its
// keys (fights.suspendedKeys) and never blocks a namespace; fights.reset ends it.
// In a container, process detection needs the host's /proc (hostPID, or procRoot pointing
// at a mount of it). A running manager's configuration is read through its own root
// (<procRoot>/PID/root: its mount namespace); etcRoot serves the host namespace's
// stopped managers and a manager whose root cannot be read.
//
// Between passes (not wired here): watchManagerStarts() (./proc-events.js, imported
// on its own so one-shot commands do not load the netlink addon) reports a manager's exec as
// it happens; managersInNamespaceNow(target) is the synchronous check to run right
// before writing to a namespace.
import { buildEvidence, type ManagerEvidence } from './evidence.js';
import { readMptcpdConfig, type MptcpdConfig } from './mptcpd.js';
import { readNmConfig, type NmConfig } from './networkmanager.js';
import { processesIn, scanManagerProcesses, type NetnsIdentity, type ProcScan } from './procscan.js';

export * from './evidence.js';
export * from './fight.js';
export * from './policy.js';
export { openLiveManagers, type LiveManagerLog, type LiveManagerSource } from './live-managers.js';
export {
  DEFAULT_MANAGER_NAMES,
  commKey,
  managersInNamespaceNow,
  mappedPlugins,
  netnsIdentity,
  netnsIdentitySync,
  parseNsLink,
  processesIn,
  readOwnConfig,
  sameNetns,
  scanManagerProcesses,
  scanManagerProcessesSync,
  type ManagerProcess,
  type NetnsIdentity,
  type OwnConfig,
  type ProcScan,
  type ScanOptions,
} from './procscan.js';
export {
  NM_MPTCP_BUILTIN_DEFAULT,
  NM_MPTCP_FLAG_BITS,
  describeNmMptcpFlags,
  matchDeviceSpec,
  nmDefaultFor,
  nmProfileFlags,
  normalizeNmMptcpFlags,
  parseNmConf,
  parseNmConfDefault,
  parseNmKeyfile,
  parseNmMptcpFlags,
  readNmConfig,
  type NmConfig,
  type NmProfile,
} from './networkmanager.js';
export { mptcpdBehaviour, parseMptcpdArgs, parseMptcpdConf, readMptcpdConfig, type MptcpdConfig } from './mptcpd.js';
export { parseIni, type IniFile } from './ini.js';

export interface ConflictRoots {
  /** Default /proc. */
  procRoot?: string;
  /** Default /etc. */
  etcRoot?: string;
  /** Default /run. */
  runRoot?: string;
  /** Default /usr/lib. */
  usrLibRoot?: string;
  /** comm -> manager name (default NetworkManager, mptcpd). */
  managerNames?: Readonly<Record<string, string>>;
}

export interface ManagerConfigs {
  nm: NmConfig;
  mptcpd: { config?: MptcpdConfig; problem?: { file: string; reason: string } };
}

/** Reads NetworkManager's and mptcpd's configuration once (host files; the same for every namespace). */
export async function readManagerConfigs(roots: ConflictRoots = {}): Promise<ManagerConfigs> {
  const etcRoot = roots.etcRoot ?? '/etc';
  const [nm, mptcpd] = await Promise.all([
    readNmConfig({ etcRoot, runRoot: roots.runRoot ?? '/run', usrLibRoot: roots.usrLibRoot ?? '/usr/lib' }),
    readMptcpdConfig(etcRoot),
  ]);
  return { nm, mptcpd };
}

export interface NamespaceConflictInput {
  /** Namespace identity: stat of /proc/thread-self/ns/net at start (host) or /run/netns/NAME. */
  target: NetnsIdentity;
  /** The namespace the reconciler runs in: stopped managers' configuration is reported there (inactive). */
  isHost: boolean;
  livePathManager?: string;
  desiredPathManager?: 'kernel' | 'userspace';
}

/** Pure given a scan and configs: the evidence for one namespace. */
export function detectFromScan(scan: ProcScan, configs: ManagerConfigs | undefined, input: NamespaceConflictInput): ManagerEvidence[] {
  return buildEvidence({
    processes: processesIn(scan, input.target),
    ...(configs ? { nm: configs.nm, mptcpd: configs.mptcpd } : {}),
    includeInactiveConfig: input.isHost,
    ...(input.livePathManager !== undefined ? { livePathManager: input.livePathManager } : {}),
    ...(input.desiredPathManager !== undefined ? { desiredPathManager: input.desiredPathManager } : {}),
  });
}

/** Convenience for one namespace (doctor, apply): scans /proc and reads configs itself. */
export async function detectConflicts(input: NamespaceConflictInput, roots: ConflictRoots = {}): Promise<ManagerEvidence[]> {
  const [scan, configs] = await Promise.all([
    scanManagerProcesses({ ...(roots.procRoot ? { procRoot: roots.procRoot } : {}), ...(roots.managerNames ? { names: roots.managerNames } : {}) }),
    readManagerConfigs(roots),
  ]);
  return detectFromScan(scan, configs, input);
}
