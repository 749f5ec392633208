// The contract between the imperative shell's kernel layer (netns, mptcp_pm genl,
// rtnetlink, procfs) and its users (apply, daemon, doctor, show). Implementations
// live next to this file; users depend only on these shapes.
import type { MptcpConfig, MptcpKey } from '../config/schema.js';
import type {
  EndpointSpec,
  LiveAddress,
  LiveEndpoint,
  LiveLink,
  LiveNamespace,
} from '../core/model.js';

export interface KernelErrorFields {
  /** What was attempted, e.g. "ADD_ADDR 192.0.2.1 id 3", "write net.mptcp.enabled". */
  op: string;
  netns: string;
  /** Positive errno, e.g. 17. */
  errno: number;
  /** errno name, e.g. "EEXIST". */
  code: string;
  /** The kernel's extended-ack message, when it sent one. */
  extack?: string;
  /** Whether trying the same thing again later can help (EBUSY, ENOBUFS, EAGAIN, ENODEV ...). */
  retryable: boolean;
}

export class KernelError extends Error implements KernelErrorFields {
  override name = 'KernelError';
  op: string;
  netns: string;
  errno: number;
  code: string;
  extack?: string;
  retryable: boolean;
  constructor(f: KernelErrorFields) {
    super(`${f.op} in netns ${f.netns}: ${f.code}${f.extack ? ` (${f.extack})` : ''}`);
    this.op = f.op;
    this.netns = f.netns;
    this.errno = f.errno;
    this.code = f.code;
    if (f.extack !== undefined) this.extack = f.extack;
    this.retryable = f.retryable;
  }
}

export interface Limits {
  subflows: number;
  addAddrAccepted: number;
}

export interface LiveSelection {
  endpoints?: boolean;
  limits?: boolean;
  /** Link and address lists (for `dev` names and interface-derived endpoints). */
  links?: boolean;
  addresses?: boolean;
  /** Which sysctls to read; default all. */
  mptcp?: MptcpKey[] | boolean;
  /** Which interfaces' rp_filter to read (plus all/default); default all. */
  rpFilter?: string[] | boolean;
}

/** Opaque bytes standing for one read's raw input; only the kernel layer compares them. */
export interface LiveFingerprint {
  readonly bytes: Uint8Array;
}

/**
 * One mptcp_pm write of a batch (NamespaceKernel.runBatch); the same requests as
 * addEndpoint, deleteEndpoint, setEndpointFlags and setLimits.
 */
export type KernelWrite =
  | { op: 'add'; endpoint: EndpointSpec }
  | { op: 'delete'; id: number }
  | { op: 'set-flags'; id: number; backup: boolean; fullmesh: boolean }
  | { op: 'set-limits'; limits: Partial<Limits> };

/** The kernel's answer to one write of a batch: its acknowledgement, or its own error (errno, extack). */
export type KernelWriteResult = { ok: true } | { ok: false; error: KernelError };

/** One namespace's kernel handles: sockets created inside it, reused across passes. */
export interface NamespaceKernel {
  /** "host" or the name under /run/netns. */
  readonly netns: string;

  dumpEndpoints(): Promise<LiveEndpoint[]>;
  /** ADD_ADDR; ifindex is resolved by the caller from `dev`. */
  addEndpoint(ep: EndpointSpec): Promise<void>;
  /** DEL_ADDR by id (the kernel ignores the address when an id is given). */
  deleteEndpoint(id: number): Promise<void>;
  /** SET_FLAGS by id; both flags are set absolutely. */
  setEndpointFlags(id: number, flags: { backup: boolean; fullmesh: boolean }): Promise<void>;
  getLimits(): Promise<Limits>;
  /** Absent keys keep their value. */
  setLimits(limits: Partial<Limits>): Promise<void>;

  links(): Promise<LiveLink[]>;
  addresses(): Promise<LiveAddress[]>;

  /** The net.mptcp.* sysctls this kernel has, in file keys. */
  readMptcpSysctls(): MptcpConfig;
  writeMptcpSysctl(key: MptcpKey, value: string | number | boolean): void;
  /** Raw rp_filter per interface plus `all` and `default`. */
  readRpFilter(): Record<string, number>;
  writeRpFilter(iface: string, value: 0 | 1 | 2): void;

  /**
   * Everything a pass needs at once, with the netlink requests pipelined. A
   * selection reads only part (a converged pass of a large fleet must be cheap);
   * what is not selected comes back empty.
   */
  readLive(select?: LiveSelection): Promise<LiveNamespace>;

  /**
   * readLive that also fingerprints what it read: the raw kernel replies (minus
   * sequence numbers and port ids) and the sysctl values. When that equals `since`
   * (an earlier fingerprint of this handle, same selection) nothing is decoded and
   * `live` is undefined. Optional: without it a pass always reads in full.
   */
  readLiveIfChanged?(select: LiveSelection, since?: LiveFingerprint): Promise<{ live: LiveNamespace | undefined; fingerprint: LiveFingerprint }>;

  /**
   * Sends the writes together (one sendmsg per up to 64) and returns one result
   * per write, in order. The kernel applies them one after another in that order,
   * whatever an earlier one answered: a write that must not run when another
   * failed belongs in a later batch. Optional: without it each write is a call.
   */
  runBatch?(writes: readonly KernelWrite[]): Promise<KernelWriteResult[]>;

  close(): void;
}
