// A synchronous netlink socket over koffi. The kernel answers rtnetlink and
// generic netlink requests inside send(), and produces each next dump part inside
// recv(), so a blocking recv never waits on anything but the kernel itself. This
// replaces the `netlink` package here because that one cannot set NETLINK_EXT_ACK
// (its fd is private), and its libuv receive path costs a peek, an allocation and
// an event-loop turn per message.
import { KernelError } from './api.js';
import { errnoName, isRetryable, lastErrno, lib } from './libc.js';
import { AF_NETLINK, MSG_DONTWAIT, NETLINK_ADD_MEMBERSHIP, NETLINK_CAP_ACK, NETLINK_EXT_ACK, NETLINK_GENERIC, NETLINK_ROUTE, NLMSG_DONE, NLMSG_ERROR, NLMSG_HDRLEN, NLM_F_ACK, NLM_F_DUMP, NLM_F_MULTI, NLM_F_REQUEST, SOL_NETLINK, SOL_SOCKET } from './uapi.js';

// Re-exported for the codecs and tools that build requests on this socket.
export { NETLINK_GENERIC, NETLINK_ROUTE, NLMSG_DONE, NLMSG_ERROR, NLM_F_ACK, NLM_F_DUMP, NLM_F_MULTI, NLM_F_REQUEST } from './uapi.js';

const SOCK_RAW = 3;
const SOCK_CLOEXEC = 0x80000;
const SO_RCVTIMEO = 20;
const EAGAIN = 11;
const ENOBUFS = 105;


const NLM_F_CAPPED = 0x100;
const NLM_F_ACK_TLVS = 0x200;

export const NLA_F_NESTED = 0x8000;
const NLA_TYPE_MASK = 0x3fff;

const NLMSGERR_ATTR_MSG = 1;
const NLMSGERR_ATTR_MISS_TYPE = 5;

export const align4 = (n: number): number => (n + 3) & ~3;

/** Builds netlink messages into one reusable buffer (single-threaded, used synchronously). */
export class NlWriter {
  buf: Buffer;
  len = 0;
  private msgStart = 0;

  constructor(size = 8192) {
    this.buf = Buffer.alloc(size);
  }

  reset(): this {
    this.len = 0;
    return this;
  }

  private ensure(n: number): void {
    if (this.len + n <= this.buf.length) return;
    const next = Buffer.alloc(Math.max(this.buf.length * 2, this.len + n));
    this.buf.copy(next, 0, 0, this.len);
    this.buf = next;
  }

  private pad(): void {
    const to = align4(this.len);
    this.ensure(to - this.len);
    this.buf.fill(0, this.len, to);
    this.len = to;
  }

  beginMsg(type: number, flags: number, seq: number): this {
    this.pad();
    this.ensure(16);
    this.msgStart = this.len;
    const b = this.buf;
    b.writeUInt32LE(0, this.len);
    b.writeUInt16LE(type, this.len + 4);
    b.writeUInt16LE(flags, this.len + 6);
    b.writeUInt32LE(seq >>> 0, this.len + 8);
    b.writeUInt32LE(0, this.len + 12);
    this.len += 16;
    return this;
  }

  endMsg(): this {
    this.pad();
    this.buf.writeUInt32LE(this.len - this.msgStart, this.msgStart);
    return this;
  }

  /** Raw fixed header (genlmsghdr, ifinfomsg, ...), zero-filled to `size`. */
  header(size: number, fill?: (b: Buffer, off: number) => void): this {
    this.ensure(align4(size));
    this.buf.fill(0, this.len, this.len + align4(size));
    fill?.(this.buf, this.len);
    this.len += align4(size);
    return this;
  }

  private attrHead(type: number, payload: number): number {
    this.pad();
    this.ensure(4 + align4(payload));
    const at = this.len;
    this.buf.writeUInt16LE(4 + payload, at);
    this.buf.writeUInt16LE(type, at + 2);
    this.len += 4;
    return at + 4;
  }

  u8(type: number, v: number): this {
    const at = this.attrHead(type, 1);
    this.buf.writeUInt8(v, at);
    this.len += 1;
    return this;
  }

  u16(type: number, v: number): this {
    const at = this.attrHead(type, 2);
    this.buf.writeUInt16LE(v, at);
    this.len += 2;
    return this;
  }

  u32(type: number, v: number): this {
    const at = this.attrHead(type, 4);
    this.buf.writeUInt32LE(v >>> 0, at);
    this.len += 4;
    return this;
  }

  s32(type: number, v: number): this {
    const at = this.attrHead(type, 4);
    this.buf.writeInt32LE(v, at);
    this.len += 4;
    return this;
  }

  bytes(type: number, v: Uint8Array): this {
    const at = this.attrHead(type, v.length);
    this.buf.set(v, at);
    this.len += v.length;
    return this;
  }

  /** NUL-terminated string attribute. */
  string(type: number, v: string): this {
    const n = Buffer.byteLength(v);
    const at = this.attrHead(type, n + 1);
    this.buf.write(v, at);
    this.buf[at + n] = 0;
    this.len += n + 1;
    return this;
  }

  beginNest(type: number): number {
    const at = this.attrHead(type | NLA_F_NESTED, 0) - 4;
    return at;
  }

  endNest(at: number): this {
    this.buf.writeUInt16LE(this.len - at, at);
    return this;
  }

  /** A copy of what was written (for golden-byte tests and logs). */
  bytesWritten(): Buffer {
    return Buffer.from(this.buf.subarray(0, this.len));
  }
}

/** Walks the attributes in buf[start, end); calls `fn(type, payloadStart, payloadLen)`. */
export function forEachAttr(
  buf: Buffer,
  start: number,
  end: number,
  fn: (type: number, off: number, len: number) => void,
): void {
  let off = start;
  while (off + 4 <= end) {
    const len = buf.readUInt16LE(off);
    if (len < 4 || off + len > end) throw new Error(`malformed netlink attribute at offset ${off} (length ${len})`);
    fn(buf.readUInt16LE(off + 2) & NLA_TYPE_MASK, off + 4, len - 4);
    off += align4(len);
  }
}

/**
 * Walks the messages of one received datagram; calls `fn(type, bodyStart, bodyEnd)`.
 * For event sockets: a truncated message ends the walk instead of throwing, so a
 * reader of multicast events never dies on one bad datagram.
 */
export function forEachMessage(buf: Buffer, fn: (type: number, body: number, end: number) => void): void {
  let off = 0;
  while (off + NLMSG_HDRLEN <= buf.length) {
    const len = buf.readUInt32LE(off);
    if (len < NLMSG_HDRLEN || off + len > buf.length) return;
    fn(buf.readUInt16LE(off + 4), off + NLMSG_HDRLEN, off + len);
    off += align4(len);
  }
}

/** One request awaiting its answer, matched by sequence number. */
export interface NlRequest {
  seq: number;
  /** Operation text for errors, e.g. "ADD_ADDR 192.0.2.1". */
  op: string;
  dump: boolean;
  /** Called for each data message (not ERROR/DONE). */
  onMessage?: (buf: Buffer, off: number, len: number, type: number) => void;
  done?: boolean;
  error?: KernelError;
  /**
   * Sent without NLM_F_ACK: the kernel answers only a failure. It succeeded once
   * a later request of the same buffer is answered without its error before that
   * (the kernel runs a buffer in order and answers in order).
   */
  ackless?: boolean;
}

// One receive buffer for the whole process: every use is synchronous, and parsing
// completes before the next recv. 32 KiB holds the largest dump part the kernel
// produces for a default socket.
const RECV_SIZE = 65536;
let recvBuf: Buffer | undefined;

let seqCounter = (Date.now() & 0xffff) << 8;
export function nextSeq(): number {
  seqCounter = (seqCounter + 1) >>> 0;
  if (seqCounter === 0) seqCounter = 1;
  return seqCounter;
}

export class NlSocket {
  readonly fd: number;
  private closed = false;

  /** Creates the socket in the namespace the thread is in now (see withNetns). */
  constructor(
    readonly protocol: number,
    readonly netns: string,
  ) {
    const c = lib();
    const fd = c.socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, protocol);
    if (fd < 0) this.fail('socket', lastErrno());
    this.fd = fd;
    const addr = Buffer.alloc(12);
    addr.writeUInt16LE(AF_NETLINK, 0);
    const one = Buffer.alloc(4);
    one.writeInt32LE(1, 0);
    // Time out a blocking recv rather than hang, should a reply ever not come.
    const tv = Buffer.alloc(16);
    tv.writeBigInt64LE(2n, 0);
    if (
      c.bind(fd, addr, 12) !== 0 ||
      c.setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, one, 4) !== 0 ||
      c.setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, one, 4) !== 0 ||
      c.setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, tv, 16) !== 0
    ) {
      const e = lastErrno();
      c.close(fd);
      this.fail('netlink socket setup', e);
    }
  }

  private fail(op: string, errno: number): never {
    const code = errnoName(errno);
    throw new KernelError({ op, netns: this.netns, errno, code, retryable: isRetryable(code) });
  }

  send(w: NlWriter, op: string): void {
    if (this.closed) throw new Error(`netlink socket of netns ${this.netns} is closed`);
    const n = lib().send(this.fd, w.buf, w.len, 0);
    if (n < 0) this.fail(`send ${op}`, lastErrno());
  }

  /**
   * Receives until every request in `reqs` is answered; errors are stored on each
   * request. When the receive queue overflowed (ENOBUFS) during a batch of writes,
   * the answers still queued are read and each request whose answer was lost gets
   * an ENOBUFS error of its own: it may or may not have been applied. A dump cannot
   * be resumed, so an overflow while one is pending throws as before.
   */
  collect(reqs: NlRequest[]): void {
    if (!recvBuf) recvBuf = Buffer.alloc(RECV_SIZE);
    const buf = recvBuf;
    const c = lib();
    let pending = reqs.filter((r) => !r.done).length;
    let overflowed = false;
    while (pending > 0) {
      const n = c.recv(this.fd, buf, buf.length, overflowed ? MSG_DONTWAIT : 0);
      if (n < 0) {
        const e = lastErrno();
        if (e === 4) continue;
        // The kernel answers writes inside send(): once it reported an overflow,
        // whatever is not queued by now was dropped.
        if (overflowed && e === EAGAIN) {
          for (const r of reqs) {
            if (r.done) continue;
            r.done = true;
            r.error = new KernelError({
              op: r.op,
              netns: this.netns,
              errno: ENOBUFS,
              code: 'ENOBUFS',
              extack: 'its answer was lost (netlink receive queue overflow); it may or may not have been applied',
              retryable: true,
            });
          }
          return;
        }
        if (e === ENOBUFS && !overflowed && !reqs.some((r) => !r.done && r.dump)) {
          overflowed = true;
          continue;
        }
        this.fail(`recv ${reqs.find((r) => !r.done)?.op ?? ''}`.trim(), e);
      }
      let off = 0;
      while (off + 16 <= n) {
        const len = buf.readUInt32LE(off);
        if (len < 16 || off + len > n) throw new Error(`malformed netlink message from the kernel (length ${len})`);
        const type = buf.readUInt16LE(off + 4);
        const flags = buf.readUInt16LE(off + 6);
        const seq = buf.readUInt32LE(off + 8);
        const at = findReq(reqs, seq);
        const req = at >= 0 ? reqs[at] : undefined;
        if (req && !req.done) {
          for (let j = 0; j < at; j++) {
            const q = reqs[j]!;
            if (q.ackless && !q.done) {
              q.done = true;
              pending--;
            }
          }
          if (type === NLMSG_ERROR || type === NLMSG_DONE) {
            const err = len >= 20 ? buf.readInt32LE(off + 16) : 0;
            if (err !== 0) req.error = this.errorFrom(req.op, -err, buf, off, len, flags, type);
            // An ERROR with 0 is the ACK; for a dump only DONE (or an error) ends it.
            if (type === NLMSG_DONE || err !== 0 || !req.dump) {
              req.done = true;
              pending--;
            }
          } else {
            req.onMessage?.(buf, off, len, type);
            if (!req.dump && (flags & NLM_F_MULTI) === 0 && req.onMessage) {
              req.done = true;
              pending--;
            }
          }
        }
        off += align4(len);
      }
    }
  }

  /** Subscribes to a multicast group (e.g. rtnetlink's RTNLGRP_LINK). */
  joinGroup(group: number): void {
    const g = Buffer.alloc(4);
    g.writeUInt32LE(group, 0);
    if (lib().setsockopt(this.fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, g, 4) !== 0) this.fail(`join multicast group ${group}`, lastErrno());
  }

  /**
   * Empties the queue of a subscribed socket without blocking. True when any
   * notification was queued, or some were lost (ENOBUFS): either way what they
   * describe may have changed.
   */
  drainNotifications(): boolean {
    if (!recvBuf) recvBuf = Buffer.alloc(RECV_SIZE);
    const c = lib();
    let changed = false;
    for (;;) {
      const n = c.recv(this.fd, recvBuf, recvBuf.length, MSG_DONTWAIT);
      if (n >= 0) {
        changed = true;
        continue;
      }
      const e = lastErrno();
      if (e === EAGAIN) return changed;
      if (e === ENOBUFS) changed = true;
      else if (e !== 4) this.fail('recv notifications', e);
    }
  }

  private errorFrom(op: string, errno: number, buf: Buffer, off: number, len: number, flags: number, type: number): KernelError {
    const code = errnoName(errno);
    let extack: string | undefined;
    let missing: number | undefined;
    if (flags & NLM_F_ACK_TLVS) {
      let tlv: number;
      if (type === NLMSG_DONE) tlv = off + 20;
      else tlv = flags & NLM_F_CAPPED ? off + 36 : off + 20 + align4(buf.readUInt32LE(off + 20));
      try {
        forEachAttr(buf, tlv, off + len, (t, o, l) => {
          if (t === NLMSGERR_ATTR_MSG) {
            let e = o + l;
            while (e > o && buf[e - 1] === 0) e--;
            extack = buf.toString('utf8', o, e);
          } else if (t === NLMSGERR_ATTR_MISS_TYPE && l >= 4) missing = buf.readUInt32LE(o);
        });
      } catch {
        // A malformed TLV tail loses only the explanation, never the errno.
      }
    }
    if (extack === undefined && missing !== undefined) extack = `missing attribute type ${missing}`;
    // The kernel refuses writes without a word; say which privilege is missing.
    if (extack === undefined && errno === 1) extack = 'needs CAP_NET_ADMIN in this namespace (run as root)';
    return new KernelError({ op, netns: this.netns, errno, code, ...(extack ? { extack } : {}), retryable: isRetryable(code) });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    lib().close(this.fd);
  }
}

function findReq(reqs: NlRequest[], seq: number): number {
  for (let i = 0; i < reqs.length; i++) if (reqs[i]!.seq === seq) return i;
  return -1;
}

/** Throws the first error of a collected batch. */
export function throwIfFailed(reqs: NlRequest[]): void {
  for (const r of reqs) if (r.error) throw r.error;
}
