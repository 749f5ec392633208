// net.mptcp.* sysctls, and rp_filter writes, through /proc/sys. A /proc/sys/net
// file is bound to the namespace of whoever opened it, at open time: files are
// opened inside the namespace (via `enter`) once, kept open, and read and written
// with pread/pwrite afterwards. rp_filter is read over rtnetlink instead
// (docs/kernel-notes.md#rp_filter), so its files are opened only by a write.
//
// That binding is by the opener, not by the mount: a bind mount of /proc/sys/net
// elsewhere (a container's read-write hostPath, since the container's own /proc/sys
// is read-only) acts the same way, so the root of these paths is configurable.
import { closeSync, openSync, readSync, statSync, statfsSync, writeSync } from 'node:fs';
import { isAbsolute, normalize } from 'node:path';
import { release } from 'node:os';
import { type MptcpConfig, type MptcpKey, SYSCTL_NAMES } from '../core/schema.js';
import { interfaceNameProblem } from '../core/names.js';
import { SYSCTL_KINDS, SYSCTL_SINCE } from '../core/vocabulary.js';
import { KernelError } from './api.js';
import { errnoName, isRetryable } from './libc.js';

export type Enter = <T>(fn: () => T) => T;

export const DEFAULT_SYSCTL_ROOT = '/proc/sys';
const PROC_SUPER_MAGIC = 0x9fa0;
let sysctlRoot = DEFAULT_SYSCTL_ROOT;

/** Why `dir` cannot serve as the sysctl root (the directory holding net/), or undefined. */
export function sysctlRootProblem(dir: string): string | undefined {
  if (!isAbsolute(dir)) return 'must be an absolute path';
  const net = `${normalize(dir).replace(/\/+$/, '')}/net`;
  try {
    if (!statSync(dir).isDirectory()) return 'is not a directory';
  } catch (e) {
    return `cannot be read (${(e as NodeJS.ErrnoException).code ?? String(e)})`;
  }
  try {
    if (!statSync(net).isDirectory()) return `has no net/ directory`;
    // Sysctl values are written as plain text into these files; a regular
    // directory tree there would silently take writes meant for the kernel.
    if (statfsSync(net).type !== PROC_SUPER_MAGIC) return `${net} is not procfs (mount the host's /proc/sys/net there)`;
  } catch (e) {
    return `has no net/ directory (${(e as NodeJS.ErrnoException).code ?? String(e)})`;
  }
  return undefined;
}

/**
 * Where net/mptcp and net/ipv4/conf are opened from, for the whole process
 * (default /proc/sys). Affects namespaces opened afterwards; throws when unusable.
 */
export function setSysctlRoot(dir: string): void {
  const p = sysctlRootProblem(dir);
  if (p) throw new Error(`sysctl root ${JSON.stringify(dir)} ${p}`);
  sysctlRoot = normalize(dir).replace(/\/+$/, '') || '/';
}

export function getSysctlRoot(): string {
  return sysctlRoot;
}

const KINDS = SYSCTL_KINDS;

export const MPTCP_KEYS = Object.keys(SYSCTL_NAMES) as MptcpKey[];

const PM_TYPE = 'pm_type';
const scratch = Buffer.alloc(256);

interface Slot {
  fd: number;
  writable: boolean;
}

function errnoOf(e: unknown): { errno: number; code: string } {
  const err = e as NodeJS.ErrnoException;
  const errno = err.errno !== undefined ? Math.abs(err.errno) : 5;
  return { errno, code: err.code ?? errnoName(errno) };
}

/** Opens read-write where allowed, else read-only; undefined when the file does not exist. */
function openSlot(path: string): Slot | undefined {
  try {
    return { fd: openSync(path, 'r+'), writable: true };
  } catch (e) {
    const { code } = errnoOf(e);
    if (code === 'ENOENT') return undefined;
    if (code !== 'EACCES' && code !== 'EPERM' && code !== 'EROFS') throw e;
  }
  try {
    return { fd: openSync(path, 'r'), writable: false };
  } catch (e) {
    if (errnoOf(e).code === 'ENOENT') return undefined;
    throw e;
  }
}

function readSlot(slot: Slot): string {
  const n = readSync(slot.fd, scratch, 0, scratch.length, 0);
  return scratch.toString('utf8', 0, n).trim();
}

export class SysctlFiles {
  /** undefined entry: not opened yet; null: the kernel has no such file. */
  private mptcp = new Map<string, Slot | null>();
  private rp = new Map<string, Slot>();
  // Taken at creation: files already open keep the root they were opened under.
  private readonly mptcpDir = `${sysctlRoot}/net/mptcp`;
  private readonly confDir = `${sysctlRoot}/net/ipv4/conf`;

  constructor(
    readonly netns: string,
    private readonly enter: Enter,
  ) {}

  private fail(op: string, e: unknown, extack?: string): never {
    const { errno, code } = errnoOf(e);
    // /proc/sys/net is writable only with CAP_NET_ADMIN over the namespace: name it instead of a bare EACCES.
    if (extack === undefined && op.startsWith('write ') && (code === 'EACCES' || code === 'EPERM')) {
      extack = 'writing net.* sysctls needs CAP_NET_ADMIN in this namespace (run as root)';
    }
    throw new KernelError({ op, netns: this.netns, errno, code, ...(extack ? { extack } : {}), retryable: isRetryable(code) });
  }

  /**
   * Opens, in one namespace entry, the files of `keys` not open yet (pathManager
   * brings pm_type, its pre-6.15 form, where path_manager is missing). Only what
   * is asked for: a pass reads one or two of these, and opening all eleven was most
   * of a namespace's first-pass cost.
   */
  private openMptcp(keys: readonly MptcpKey[]): void {
    const names = keys.map((k) => SYSCTL_NAMES[k]).filter((name) => !this.mptcp.has(name));
    if (names.length === 0) return;
    this.enter(() => {
      for (const name of names) this.openMptcpFile(name);
      if (names.includes(SYSCTL_NAMES.pathManager) && this.mptcp.get(SYSCTL_NAMES.pathManager) === null) this.openMptcpFile(PM_TYPE);
    });
  }

  private openMptcpFile(name: string): void {
    try {
      this.mptcp.set(name, openSlot(`${this.mptcpDir}/${name}`) ?? null);
    } catch (e) {
      this.fail(`open net.mptcp.${name}`, e);
    }
  }

  /** The net.mptcp.* values this kernel has (all, or only `keys`), in file keys. */
  readMptcp(keys: readonly MptcpKey[] = MPTCP_KEYS): MptcpConfig {
    this.openMptcp(keys);
    const out: Record<string, string | number | boolean> = {};
    for (const key of keys) {
      const name = SYSCTL_NAMES[key];
      let slot = this.mptcp.get(name);
      let raw: string;
      if (!slot && key === 'pathManager') {
        // Before 6.15 the path manager was chosen by number.
        slot = this.mptcp.get(PM_TYPE);
        if (!slot) continue;
        raw = this.read(slot, PM_TYPE);
        out[key] = raw === '1' ? 'userspace' : raw === '0' ? 'kernel' : raw;
        continue;
      }
      if (!slot) continue;
      raw = this.read(slot, name);
      const kind = KINDS[key];
      out[key] = kind === 'bool' ? raw !== '0' : kind === 'int' ? Number(raw) : raw;
    }
    return out as MptcpConfig;
  }

  private read(slot: Slot, name: string): string {
    try {
      return readSlot(slot);
    } catch (e) {
      this.fail(`read net.mptcp.${name}`, e);
    }
  }

  writeMptcp(key: MptcpKey, value: string | number | boolean): void {
    this.openMptcp([key]);
    let name = SYSCTL_NAMES[key];
    let text: string;
    if (KINDS[key] === 'bool') text = value === true || value === 1 || value === '1' ? '1' : '0';
    else text = String(value);
    if (!this.mptcp.get(name) && key === 'pathManager' && this.mptcp.get(PM_TYPE)) {
      name = PM_TYPE;
      if (text === 'kernel') text = '0';
      else if (text === 'userspace') text = '1';
      else {
        throw new KernelError({
          op: `write net.mptcp.${PM_TYPE}=${text}`,
          netns: this.netns,
          errno: 22,
          code: 'EINVAL',
          extack: `this kernel (Linux ${release()}) only knows the path managers kernel and userspace (pm_type 0/1)`,
          retryable: false,
        });
      }
    }
    const op = `write net.mptcp.${name}=${text}`;
    const slot = this.mptcp.get(name);
    if (!slot) {
      throw new KernelError({
        op,
        netns: this.netns,
        errno: 2,
        code: 'ENOENT',
        extack: `this kernel (Linux ${release()}) has no net.mptcp.${name}; it needs Linux ${SYSCTL_SINCE[key]} or later`,
        retryable: false,
      });
    }
    this.mptcp.set(name, this.writeSlot(slot, `${this.mptcpDir}/${name}`, text, op));
  }

  private writeSlot(slot: Slot, path: string, text: string, op: string): Slot {
    let s = slot;
    if (!s.writable) {
      // Opened read-only earlier (unprivileged read); a write needs a new open inside the namespace.
      const reopened = this.enter(() => {
        try {
          return { fd: openSync(path, 'r+'), writable: true };
        } catch (e) {
          this.fail(op, e);
        }
      });
      closeSync(s.fd);
      s = reopened;
    }
    try {
      writeSync(s.fd, text, 0);
    } catch (e) {
      this.fail(op, e);
    }
    return s;
  }

  private rpPath(iface: string): string {
    if (iface !== 'all' && iface !== 'default') {
      const p = interfaceNameProblem(iface);
      if (p) throw new KernelError({ op: `rp_filter of ${JSON.stringify(iface)}`, netns: this.netns, errno: 22, code: 'EINVAL', extack: `interface name ${p}`, retryable: false });
    }
    return `${this.confDir}/${iface}/rp_filter`;
  }

  /** Opens the rp_filter file of `iface` inside the namespace, unless it is open already. */
  private openRp(iface: string): void {
    if (this.rp.has(iface)) return;
    const path = this.rpPath(iface);
    this.enter(() => {
      let slot: Slot | undefined;
      try {
        slot = openSlot(path);
      } catch (e) {
        this.fail(`open net.ipv4.conf.${iface}.rp_filter`, e);
      }
      if (slot) this.rp.set(iface, slot);
    });
  }

  writeRpFilter(iface: string, value: 0 | 1 | 2): void {
    if (value !== 0 && value !== 1 && value !== 2) {
      throw new KernelError({ op: `write net.ipv4.conf.${iface}.rp_filter=${String(value)}`, netns: this.netns, errno: 22, code: 'EINVAL', extack: 'rp_filter is 0, 1 or 2', retryable: false });
    }
    const op = `write net.ipv4.conf.${iface}.rp_filter=${value}`;
    for (let attempt = 0; attempt < 2; attempt++) {
      this.openRp(iface);
      const slot = this.rp.get(iface);
      if (!slot) {
        throw new KernelError({ op, netns: this.netns, errno: 19, code: 'ENODEV', extack: `no interface ${iface}`, retryable: true });
      }
      try {
        this.rp.set(iface, this.writeSlot(slot, this.rpPath(iface), String(value), op));
        return;
      } catch (e) {
        if (!(e instanceof KernelError) || e.code !== 'ENOENT' || attempt > 0) throw e;
        closeSync(slot.fd);
        this.rp.delete(iface);
      }
    }
  }

  close(): void {
    for (const s of this.mptcp.values()) if (s) closeSync(s.fd);
    for (const s of this.rp.values()) closeSync(s.fd);
    this.mptcp.clear();
    this.rp.clear();
  }
}
