// Exec events from the kernel's process connector (NETLINK_CONNECTOR, group
// CN_IDX_PROC), so the daemon learns of a manager started while it runs without
// polling /proc. The subscription asks the kernel (6.6+) to send only exec and
// comm-change events; older kernels ignore the filter and send every event,
// which the parser drops.
//
// Where it works: the connector exists only in the initial network namespace
// (elsewhere the socket opens but the subscription is refused: ECONNREFUSED,
// reported through onError). The kernel applies the event filter only to
// subscribers in the initial user and PID namespaces; others get every event,
// which the parser drops. Events carry the initial PID namespace's pids: look
// them up in a /proc of that namespace (hostPID, or --proc-root on a mount of it).
//
// Use: open the socket FIRST, then scan /proc once; every manager started after
// the scan arrives as an event. Lost events (a full receive queue) are reported
// as an overflow: scan /proc again then.
import type { RawNetlinkSocket } from 'netlink/dist/raw.js';
import { KernelError } from '../kernel/api.js';
import { dropCount, netlinkFd } from '../kernel/events.js';
import { netlinkRawSockets } from '../kernel/native.js';
import { forEachMessage } from '../kernel/nlsock.js';
import { NETLINK_NO_ENOBUFS, NLMSG_DONE, NLMSG_HDRLEN, NLMSG_OVERRUN, SOL_NETLINK } from '../kernel/uapi.js';
import { errnoName, isRetryable, lastErrno, lib } from '../kernel/libc.js';
import {
  commKey,
  DEFAULT_MANAGER_NAMES,
  inspectProcess,
  processNetns,
  readComm,
  sameNetns,
  scanManagerProcessesSync,
  type ManagerProcess,
  type NetnsIdentity,
  type ScanOptions,
} from './procscan.js';

const NETLINK_CONNECTOR = 11;
const CN_IDX_PROC = 1;
const CN_VAL_PROC = 1;
const CN_MSG_LEN = 20; // struct cn_msg: cb_id{idx,val}, seq, ack, u16 len, u16 flags
const PROC_CN_MCAST_LISTEN = 1;
const PROC_CN_MCAST_IGNORE = 2;

/** enum proc_cn_event (linux/cn_proc.h). */
export const PROC_EVENT = { NONE: 0, EXEC: 0x2, COMM: 0x200 } as const;

const MSG_DONTWAIT = 0x40;
const EAGAIN = 11;

export interface ProcEvent {
  what: 'exec' | 'comm';
  /** The thread that exec'd or was renamed. */
  pid: number;
  /** Its process (thread group) id: the /proc directory to look at. */
  tgid: number;
  /** The new name (comm events only). */
  comm?: string;
  /** CLOCK_MONOTONIC nanoseconds of the event, as process.hrtime.bigint() counts. */
  timestampNs: bigint;
}

/**
 * Golden bytes: the subscription message. nlmsghdr + cn_msg + struct proc_input
 * {mcast_op, event_type}; the kernel reads an 8-byte body as a filtered listen.
 */
export function encodeProcSubscription(op: 'listen' | 'ignore', events: number, seq: number, portId: number): Buffer {
  const len = NLMSG_HDRLEN + CN_MSG_LEN + 8;
  const b = Buffer.alloc(len);
  b.writeUInt32LE(len, 0);
  b.writeUInt16LE(NLMSG_DONE, 4);
  b.writeUInt16LE(0, 6);
  b.writeUInt32LE(seq, 8);
  b.writeUInt32LE(portId, 12);
  let o = NLMSG_HDRLEN;
  b.writeUInt32LE(CN_IDX_PROC, o);
  b.writeUInt32LE(CN_VAL_PROC, o + 4);
  b.writeUInt32LE(seq, o + 8);
  b.writeUInt32LE(0, o + 12); // ack
  b.writeUInt16LE(8, o + 16); // data length
  b.writeUInt16LE(0, o + 18);
  o += CN_MSG_LEN;
  b.writeUInt32LE(op === 'listen' ? PROC_CN_MCAST_LISTEN : PROC_CN_MCAST_IGNORE, o);
  b.writeUInt32LE(events, o + 4);
  return b;
}

/** Pure: the exec and comm events in one datagram; other events (fork, exit, ack) are skipped. */
export function parseProcEvents(buf: Buffer): { events: ProcEvent[]; overrun: boolean } {
  const events: ProcEvent[] = [];
  let overrun = false;
  forEachMessage(buf, (type, cn, end) => {
    if (type === NLMSG_OVERRUN) overrun = true;
    // proc_event: u32 what, u32 cpu, u64 timestamp_ns, then the event data.
    if (end - cn < CN_MSG_LEN + 24 || buf.readUInt32LE(cn) !== CN_IDX_PROC || buf.readUInt32LE(cn + 4) !== CN_VAL_PROC) return;
    const ev = cn + CN_MSG_LEN;
    const what = buf.readUInt32LE(ev);
    const timestampNs = buf.readBigUInt64LE(ev + 8);
    const data = ev + 16;
    if (what === PROC_EVENT.EXEC) {
      events.push({ what: 'exec', pid: buf.readInt32LE(data), tgid: buf.readInt32LE(data + 4), timestampNs });
    } else if (what === PROC_EVENT.COMM && end >= data + 24) {
      const raw = buf.subarray(data + 8, data + 24);
      const nul = raw.indexOf(0);
      events.push({
        what: 'comm',
        pid: buf.readInt32LE(data),
        tgid: buf.readInt32LE(data + 4),
        comm: raw.toString('utf8', 0, nul < 0 ? raw.length : nul),
        timestampNs,
      });
    }
  });
  return { events, overrun };
}

export interface ProcEventHandlers {
  onEvents(events: ProcEvent[]): void;
  /** Events were lost (receive queue full): whatever they announced must be found by a scan. */
  onOverflow(): void;
  onError?(err: Error & { code?: string }): void;
}

export interface ProcEventSocket {
  /**
   * Reads every event already queued, synchronously, and hands it to the handlers
   * before returning: an exec that completed before this call is seen by then
   * (the kernel queues the event during the exec itself). Returns how many
   * events were read.
   */
  drain(): number;
  close(): void;
}

function kernelError(op: string, e: unknown): KernelError {
  const err = e as { code?: string; errno?: number };
  const code = typeof err.code === 'string' ? err.code : 'EIO';
  // Any namespace can open the socket, but only the initial one has the kernel end.
  const extack =
    code === 'ECONNREFUSED'
      ? 'no process connector in this network namespace: it exists only in the initial one (run with the host network, e.g. hostNetwork: true)'
      : undefined;
  return new KernelError({ op, netns: 'host', errno: Math.abs(err.errno ?? 0), code, ...(extack ? { extack } : {}), retryable: isRetryable(code) });
}

/**
 * Subscribes to exec and comm events. The socket is set up synchronously (a
 * KernelError with op proc-connector-* is thrown if that fails); the subscription
 * message is sent at once and a refusal arrives through onError.
 */
export function openProcEvents(handlers: ProcEventHandlers, opts: { recvBufferSize?: number } = {}): ProcEventSocket {
  let sock: RawNetlinkSocket;
  try {
    sock = new (netlinkRawSockets().RawNetlinkSocket)(NETLINK_CONNECTOR, { recvBufferSize: opts.recvBufferSize ?? 1 << 20, sendBufferSize: 0 });
  } catch (e) {
    throw kernelError('proc-connector-socket', e);
  }
  let fd: number;
  try {
    fd = netlinkFd(sock.address().port);
    const one = Buffer.alloc(4);
    one.writeInt32LE(1);
    // The package's poll handler aborts the process on ENOBUFS; count drops instead (as the rtnetlink event socket does).
    if (lib().setsockopt(fd, SOL_NETLINK, NETLINK_NO_ENOBUFS, one, 4) !== 0) {
      const errno = lastErrno();
      throw new KernelError({ op: 'proc-connector-setsockopt', netns: 'host', errno, code: errnoName(errno), retryable: false });
    }
    try {
      sock.addMembership(CN_IDX_PROC);
    } catch (e) {
      throw kernelError('proc-connector-join', e);
    }
  } catch (e) {
    sock.close();
    throw e;
  }
  const port = sock.address().port;
  let drops = dropCount(fd);
  let closed = false;
  sock.unref();
  const deliver = (msg: Buffer) => {
    const { events, overrun } = parseProcEvents(msg);
    const now = dropCount(fd);
    const lost = now !== drops;
    drops = now;
    if (events.length > 0) handlers.onEvents(events);
    if (overrun || lost) handlers.onOverflow();
    return events.length;
  };
  sock.on('message', (msg) => {
    if (!closed) deliver(msg);
  });
  sock.on('truncatedMessage', () => {
    if (!closed) handlers.onOverflow();
  });
  sock.on('error', (err) => {
    if (closed) return;
    if (err.code === 'ENOBUFS') handlers.onOverflow();
    else handlers.onError?.(err);
  });
  // One datagram per event (tens of bytes); a larger one would be truncated, which
  // is reported as an overflow like the package's own receive path does.
  const rbuf = Buffer.alloc(8192);
  const drain = (): number => {
    let n = 0;
    while (!closed) {
      const got = Number(lib().recv(fd, rbuf, rbuf.length, MSG_DONTWAIT));
      if (got < 0) {
        const errno = lastErrno();
        if (errno === EAGAIN) break;
        if (errnoName(errno) === 'ENOBUFS') {
          handlers.onOverflow();
          continue;
        }
        handlers.onError?.(new KernelError({ op: 'proc-connector-recv', netns: 'host', errno, code: errnoName(errno), retryable: isRetryable(errnoName(errno)) }));
        break;
      }
      n += deliver(Buffer.from(rbuf.subarray(0, got)));
    }
    return n;
  };
  sock.send(encodeProcSubscription('listen', PROC_EVENT.EXEC | PROC_EVENT.COMM, 1, port), { port: 0 }, (err) => {
    if (err && !closed) handlers.onError?.(kernelError('proc-connector-listen', err));
  });
  return {
    drain,
    close() {
      if (closed) return;
      closed = true;
      // The kernel counts listeners; say goodbye before closing (best effort).
      sock.send(encodeProcSubscription('ignore', PROC_EVENT.NONE, 2, port), { port: 0 }, () => sock.close());
    },
  };
}

export interface ManagerStartHandlers {
  /** A known manager exec'd (or a process renamed itself to one). */
  onManager(proc: ManagerProcess, event: ProcEvent): void;
  onOverflow(): void;
  onError?(err: Error & { code?: string }): void;
}

/**
 * Exec events filtered down to known managers: each event costs one read of
 * /proc/TGID/comm (comm events carry the name). The process's namespace and
 * argv are read at once, while it is certainly there.
 */
export function watchManagerStarts(handlers: ManagerStartHandlers, opts: ScanOptions & { recvBufferSize?: number } = {}): ProcEventSocket {
  const procRoot = opts.procRoot ?? '/proc';
  const byComm = new Map(Object.entries(opts.names ?? DEFAULT_MANAGER_NAMES).map(([c, m]) => [commKey(c), m]));
  return openProcEvents(
    {
      onEvents(events) {
        for (const ev of events) {
          // A thread renaming itself (pthread_setname_np) is not a new process.
          if (ev.what === 'comm' && ev.pid !== ev.tgid) continue;
          const comm = ev.comm ?? readComm(procRoot, String(ev.tgid));
          if (comm === undefined) continue;
          const manager = byComm.get(comm);
          if (manager === undefined) continue;
          let proc: ManagerProcess;
          try {
            proc = inspectProcess(procRoot, ev.tgid, comm, manager);
          } catch {
            continue; // gone again already: nothing left to write
          }
          handlers.onManager(proc, ev);
        }
      },
      onOverflow: () => handlers.onOverflow(),
      ...(handlers.onError ? { onError: (e: Error & { code?: string }) => handlers.onError!(e) } : {}),
    },
    opts.recvBufferSize !== undefined ? { recvBufferSize: opts.recvBufferSize } : {},
  );
}

export interface ManagerWatchOptions extends ScanOptions {
  recvBufferSize?: number;
  /** A manager appeared (`started`), or events were lost and /proc was scanned again (`rescan`). */
  onChange?(reason: 'started' | 'rescan', proc?: ManagerProcess): void;
  onError?(err: Error & { code?: string }): void;
}

/**
 * The set of manager processes on the machine, kept current by exec events
 * instead of polling: one scan of /proc at start (after subscribing, so no exec
 * falls between) and again only after lost events. `managersIn` is the check a
 * pass makes right before writing: synchronous, it first drains queued events,
 * then looks only at the known managers (a stat and a comm read each), so its
 * cost does not grow with the number of processes on the machine.
 */
export class ManagerWatch {
  /** Bumped whenever the set may have grown: a pass holding evidence from an older generation decides again. */
  generation = 0;
  private readonly known = new Map<number, ManagerProcess>();
  private readonly procRoot: string;
  private sock: ProcEventSocket | undefined;
  private needRescan = false;

  private constructor(private readonly opts: ManagerWatchOptions) {
    this.procRoot = opts.procRoot ?? '/proc';
  }

  /** Subscribes, then scans once. Throws a KernelError like openProcEvents. */
  static open(opts: ManagerWatchOptions = {}): ManagerWatch {
    const w = new ManagerWatch(opts);
    w.sock = watchManagerStarts(
      {
        onManager: (proc) => {
          w.known.set(proc.pid, proc);
          w.generation++;
          opts.onChange?.('started', proc);
        },
        // Rescanned lazily (next managersIn) or at once when nobody asks: either way before the next write.
        onOverflow: () => {
          w.needRescan = true;
          queueMicrotask(() => w.rescanIfNeeded());
        },
        ...(opts.onError ? { onError: opts.onError } : {}),
      },
      opts,
    );
    w.rescan();
    return w;
  }

  private rescan(): void {
    this.needRescan = false;
    this.known.clear();
    for (const p of scanManagerProcessesSync(this.opts).processes) this.known.set(p.pid, p);
    this.generation++;
    this.opts.onChange?.('rescan');
  }

  private rescanIfNeeded(): void {
    if (this.needRescan) this.rescan();
  }

  /** Manager processes in `target` now (see the class comment). */
  managersIn(target: NetnsIdentity): ManagerProcess[] {
    this.sock?.drain();
    this.rescanIfNeeded();
    const out: ManagerProcess[] = [];
    for (const [pid, p] of this.known) {
      // Gone, or the pid now belongs to another program: forget it.
      if (readComm(this.procRoot, String(pid)) !== p.comm) {
        this.known.delete(pid);
        continue;
      }
      let ns: { dev?: number; ino: number };
      try {
        ns = processNetns(`${this.procRoot}/${pid}`);
      } catch {
        this.known.delete(pid);
        continue;
      }
      // A manager may have moved itself (setns) since its exec: use where it is now.
      p.netns = ns;
      if (sameNetns(ns, target)) out.push(p);
    }
    return out.sort((a, b) => a.pid - b.pid);
  }

  close(): void {
    this.sock?.close();
    this.sock = undefined;
  }
}
