// Which known network managers run, and in which network namespace.
// A process's namespace is the nsfs inode behind <procRoot>/PID/ns/net: stat()
// gives {dev, ino} (exact), readlink() gives "net:[INODE]" (fallback when stat
// is refused, and what a fake tree in tests can provide).
import { closeSync, openSync, readdirSync, readFileSync, readlinkSync, readSync, statSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { readFile, stat as statAsync } from 'node:fs/promises';
import { dirname, basename, join } from 'node:path';
import { parseMptcpdArgs, readMptcpdConfig, type MptcpdConfig } from './mptcpd.js';
import { readNmConfig, type NmConfig } from './networkmanager.js';
import type { NetnsIdentity } from '../kernel/netns.js';

// Identity of a network namespace: stat() of /proc/thread-self/ns/net or /run/netns/NAME.
export type { NetnsIdentity };

/** comm (as the kernel shows it, at most 15 bytes) -> manager name. */
export const DEFAULT_MANAGER_NAMES: Readonly<Record<string, string>> = {
  NetworkManager: 'NetworkManager',
  mptcpd: 'mptcpd',
};

export interface ManagerProcess {
  pid: number;
  comm: string;
  manager: string;
  /** Namespace of the process; dev absent when only readlink worked. */
  netns: { dev?: number; ino: number };
  /** argv from /proc/PID/cmdline ([] when unreadable). */
  argv: string[];
  /** The manager's own configuration, read through <procRoot>/PID/root (async scans only). */
  own?: OwnConfig;
}

/**
 * Configuration as the manager itself sees it: its root shows its mount namespace,
 * where NetworkManager (or mptcpd in a container) may have other files than ours.
 */
export interface OwnConfig {
  /** <procRoot>/PID/root. */
  root: string;
  /** Why the root could not be read (then the caller's --etc-root is used instead). */
  error?: string;
  nm?: NmConfig;
  mptcpd?: { config?: MptcpdConfig; problem?: { file: string; reason: string } };
  /** mptcpd plugins mapped into the process (names without .so); undefined: maps unreadable. */
  plugins?: string[];
}

export interface ProcScan {
  processes: ManagerProcess[];
  /** Matching processes whose namespace could not be read (e.g. exited meanwhile). */
  unknownNamespace: { pid: number; manager: string; error: string }[];
}

/** The kernel truncates comm to TASK_COMM_LEN-1 = 15 bytes; compare names the same way. */
export function commKey(name: string): string {
  const b = Buffer.from(name, 'utf8');
  return b.length <= 15 ? name : b.subarray(0, 15).toString('utf8');
}

export function parseNsLink(text: string): number | undefined {
  const m = /^net:\[(\d+)\]$/.exec(text.trim());
  return m ? Number(m[1]) : undefined;
}

export function sameNetns(p: { dev?: number; ino: number }, target: NetnsIdentity): boolean {
  return p.ino === target.ino && (p.dev === undefined || p.dev === target.dev);
}

/** stat() of a namespace file, e.g. /run/netns/NAME or /proc/thread-self/ns/net. */
export async function netnsIdentity(path: string): Promise<NetnsIdentity> {
  const st = await stat(path);
  return { dev: st.dev, ino: st.ino };
}

/** netnsIdentity without the thread-pool round trip: a pass asks once per namespace. */
export function netnsIdentitySync(path: string): NetnsIdentity {
  const st = statSync(path);
  return { dev: st.dev, ino: st.ino };
}

/** The namespace of the process in `dir` (<procRoot>/PID); throws when it cannot be read. */
export function processNetns(dir: string): { dev?: number; ino: number } {
  const link = join(dir, 'ns', 'net');
  try {
    const st = statSync(link);
    return { dev: st.dev, ino: st.ino };
  } catch (statErr) {
    const ino = parseNsLink(readlinkSync(link));
    if (ino === undefined) throw statErr;
    return { ino };
  }
}

export interface ScanOptions {
  procRoot?: string;
  /** comm -> manager name (default NetworkManager, mptcpd). */
  names?: Readonly<Record<string, string>>;
}

function commTable(names: Readonly<Record<string, string>> | undefined): Map<string, string> {
  return new Map(Object.entries(names ?? DEFAULT_MANAGER_NAMES).map(([c, m]) => [commKey(c), m]));
}

// One buffer for every comm read: comm is at most 16 bytes with its newline.
const commBuf = Buffer.alloc(64);

/**
 * comm of one process, or undefined when it is gone. open+read+close on a fixed
 * buffer: readFileSync would add an fstat and a second read per process, which is
 * most of a scan's cost since procfs files report size 0.
 */
export function readComm(procRoot: string, pid: string): string | undefined {
  let fd: number;
  try {
    fd = openSync(join(procRoot, pid, 'comm'), 'r');
  } catch {
    return undefined; // exited, or not a process directory
  }
  try {
    const n = readSync(fd, commBuf, 0, commBuf.length, 0);
    const end = n > 0 && commBuf[n - 1] === 0x0a ? n - 1 : n;
    return commBuf.toString('utf8', 0, end);
  } catch {
    return undefined;
  } finally {
    closeSync(fd);
  }
}

/**
 * What is known about one process already matched by comm: its namespace and argv.
 * Throws (with the errno) when its namespace cannot be read, e.g. it exited meanwhile.
 */
export function inspectProcess(procRoot: string, pid: number, comm: string, manager: string): ManagerProcess {
  const dir = join(procRoot, String(pid));
  const netns = processNetns(dir);
  let argv: string[] = [];
  try {
    argv = readFileSync(join(dir, 'cmdline'), 'utf8').split('\0').filter((s, i, a) => s !== '' || i < a.length - 1);
  } catch {
    // cmdline is only a refinement (mptcpd options); absent is fine
  }
  return { pid, comm, manager, netns, argv };
}

/**
 * The synchronous scan: every process of <procRoot> whose comm is one of `names`.
 * Synchronous reads inside: procfs answers from memory, and a thread-pool round
 * trip per file made the scan of ~80 processes cost 25-50 ms instead of ~3.
 * `filter` (a namespace) skips the argv read of processes elsewhere.
 */
export function scanManagerProcessesSync(opts: ScanOptions = {}, filter?: NetnsIdentity): ProcScan {
  const procRoot = opts.procRoot ?? '/proc';
  const byComm = commTable(opts.names);
  const processes: ManagerProcess[] = [];
  const unknownNamespace: ProcScan['unknownNamespace'] = [];
  let entries: string[];
  try {
    entries = readdirSync(procRoot);
  } catch {
    return { processes, unknownNamespace };
  }
  for (const name of entries) {
    // Only PID directories: digits only, so the joined path never leaves procRoot.
    if (!/^\d+$/.test(name)) continue;
    const comm = readComm(procRoot, name);
    if (comm === undefined) continue;
    const manager = byComm.get(comm);
    if (manager === undefined) continue;
    const pid = Number(name);
    if (filter) {
      let ns: { dev?: number; ino: number };
      try {
        ns = processNetns(join(procRoot, name));
      } catch (e) {
        unknownNamespace.push({ pid, manager, error: (e as NodeJS.ErrnoException).code ?? String(e) });
        continue;
      }
      if (!sameNetns(ns, filter)) continue;
    }
    try {
      processes.push(inspectProcess(procRoot, pid, comm, manager));
    } catch (e) {
      unknownNamespace.push({ pid, manager, error: (e as NodeJS.ErrnoException).code ?? String(e) });
    }
  }
  processes.sort((a, b) => a.pid - b.pid);
  return { processes, unknownNamespace };
}

/**
 * Scans <procRoot> for processes whose comm is one of `names` (comm -> manager).
 * Each manager's own configuration is attached by the conflicts index (see
 * attachManagerConfigs); this is the process part only.
 */
export async function scanManagerProcesses(opts: ScanOptions = {}): Promise<ProcScan> {
  const scan = scanManagerProcessesSync(opts);
  const procRoot = opts.procRoot ?? '/proc';
  await Promise.all(
    scan.processes.map(async (p) => {
      p.own = await readOwnConfig(procRoot, p);
    }),
  );
  return scan;
}

/**
 * Plugin names from a /proc/PID/maps text: shared objects in `pluginDir`, or
 * (directory unknown) in any directory named mptcpd.
 */
export function mappedPlugins(maps: string, pluginDir: string | undefined): string[] {
  const names = new Set<string>();
  for (const line of maps.split('\n')) {
    const i = line.indexOf('/');
    if (i < 0) continue;
    const path = line.slice(i).replace(/ \(deleted\)$/, '');
    if (!path.endsWith('.so')) continue;
    const dir = dirname(path);
    if (pluginDir !== undefined ? dir === pluginDir.replace(/\/+$/, '') : basename(dir) === 'mptcpd') names.add(basename(path, '.so'));
  }
  return [...names].sort();
}

/** Reads a manager's configuration through its own root; never throws. */
export async function readOwnConfig(procRoot: string, p: ManagerProcess): Promise<OwnConfig> {
  const root = join(procRoot, String(p.pid), 'root');
  try {
    await statAsync(join(root, '.'));
  } catch (e) {
    return { root, error: (e as NodeJS.ErrnoException).code ?? String(e) };
  }
  const etcRoot = join(root, 'etc');
  if (p.manager === 'NetworkManager') {
    const nm = await readNmConfig({ etcRoot, runRoot: join(root, 'run'), usrLibRoot: join(root, 'usr', 'lib'), jail: root });
    return { root, nm };
  }
  if (p.manager === 'mptcpd') {
    const mptcpd = await readMptcpdConfig(etcRoot, root);
    // Without a plugin-dir setting, the compile-time one (distribution-specific) is a directory named mptcpd.
    const pluginDir = parseMptcpdArgs(p.argv.slice(1)).pluginDir ?? mptcpd.config?.pluginDir?.value;
    let plugins: string[] | undefined;
    try {
      const found = mappedPlugins(await readFile(join(procRoot, String(p.pid), 'maps'), 'utf8'), pluginDir);
      // None yet: just started, plugins not loaded; infer from the settings rather than say "none".
      if (found.length > 0) plugins = found;
    } catch {
      // maps needs ptrace read access; without it the plugins are inferred from the settings
    }
    return { root, mptcpd, ...(plugins ? { plugins } : {}) };
  }
  return { root };
}

/**
 * The pre-write check: manager processes in one namespace right now. Synchronous,
 * so a caller that runs it immediately before a write has no await between the
 * check and the write for a manager to slip through. Costs one open+read per
 * process on the machine (see the conflicts README section for measured figures).
 */
export function managersInNamespaceNow(target: NetnsIdentity, opts: ScanOptions = {}): ManagerProcess[] {
  return scanManagerProcessesSync(opts, target).processes;
}

export function processesIn(scan: ProcScan, target: NetnsIdentity): ManagerProcess[] {
  return scan.processes.filter((p) => sameNetns(p.netns, target));
}
