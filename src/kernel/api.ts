// The contract between the imperative shell's kernel layer (netns, mptcp_pm genl,
// rtnetlink, procfs) and its users (apply, daemon, doctor, show). Implementations
// live next to this file; users depend only on these shapes.
import type { MptcpKey } from '../core/schema.js';
import type { EndpointSpec, LiveEndpoint, LiveNamespace } from '../core/model.js';
import type { RoutingOp } from '../core/source-routing.js';

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
  /**
   * Source routing: `tables` reads every rule, the routes of those tables and
   * every route with the tool's protocol; 'owned' reads them only while this
   * handle may hold routes or rules the tool created (so that they can be
   * removed), nothing once a read found none. Not part of "read everything".
   */
  routing?: { tables: number[] } | 'owned';
}

/** Opaque bytes standing for one read's raw input; only the kernel layer compares them. */
export interface LiveFingerprint {
  readonly bytes: Uint8Array;
}

/**
 * One mptcp_pm write of a batch (KernelWriter.runBatch); the same requests as
 * addEndpoint, deleteEndpoint, setEndpointFlags and setLimits, and FLUSH_ADDRS.
 */
export type KernelWrite =
  | { op: 'add'; endpoint: EndpointSpec }
  | { op: 'delete'; id: number }
  /** FLUSH_ADDRS: every endpoint of the namespace at once (the limits stay). */
  | { op: 'flush' }
  | { op: 'set-flags'; id: number; backup: boolean; fullmesh: boolean }
  | { op: 'set-limits'; limits: Partial<Limits> };

/** The kernel's answer to one write of a batch: its acknowledgement, or its own error (errno, extack). */
export type KernelWriteResult = { ok: true } | { ok: false; error: KernelError };

/**
 * What a pass reads. `readLive` returns the state; `readLiveIfChanged` also
 * fingerprints what it read (the raw kernel replies minus sequence numbers and
 * port ids, and the sysctl values) and, when that equals `since` (an earlier
 * fingerprint of this reader, same selection), decodes nothing and returns
 * `live: undefined`. A reader that cannot tell returns the state every time.
 */
export interface LiveReader {
  /** "host" or the name under /run/netns. */
  readonly netns: string;
  /**
   * Everything a pass needs at once, with the netlink requests pipelined. A
   * selection reads only part (a converged pass of a large fleet must be cheap);
   * what is not selected comes back empty.
   */
  readLive(select?: LiveSelection): Promise<LiveNamespace>;
  readLiveIfChanged(select: LiveSelection, since?: LiveFingerprint): Promise<{ live: LiveNamespace | undefined; fingerprint: LiveFingerprint }>;
}

/** What a pass writes: mptcp_pm requests in batches, /proc/sys files one by one. */
export interface KernelWriter {
  readonly netns: string;
  /**
   * Sends the writes together (one sendmsg per up to 64) and returns one result
   * per write, in order. The kernel applies them one after another in that order,
   * whatever an earlier one answered: a write that must not run when another
   * failed belongs in a later batch.
   */
  runBatch(writes: readonly KernelWrite[]): Promise<KernelWriteResult[]>;
  writeMptcpSysctl(key: MptcpKey, value: string | number | boolean): void;
  writeRpFilter(iface: string, value: 0 | 1 | 2): void;
  /**
   * Route and rule writes, one at a time in order; one result each, a failure
   * never stops the rest. Absent: this writer cannot write routing.
   */
  runRouting?(ops: readonly RoutingOp[]): Promise<KernelWriteResult[]>;
  /** To tell, after a failed delete, whether someone else removed the endpoint first. */
  dumpEndpoints(): Promise<LiveEndpoint[]>;
}

/** One namespace's kernel handles: sockets created inside it, reused across passes. */
export interface NamespaceKernel extends LiveReader, KernelWriter {
  readonly netns: string;
  /** ADD_ADDR; ifindex is resolved by the caller from `dev`. */
  addEndpoint(ep: EndpointSpec): Promise<void>;
  /** DEL_ADDR by id (the kernel ignores the address when an id is given). */
  deleteEndpoint(id: number): Promise<void>;
  /** SET_FLAGS by id; both flags are set absolutely. */
  setEndpointFlags(id: number, flags: { backup: boolean; fullmesh: boolean }): Promise<void>;
  /** Absent keys keep their value. */
  setLimits(limits: Partial<Limits>): Promise<void>;
  close(): void;
}
