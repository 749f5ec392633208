// MPTCP connections and their path-manager counters over sock_diag, like `ss -Mai`.
// The request is the one mptcp_diag understands: inet_diag_req_v2 says TCP (its
// protocol byte is a u8 and 262 does not fit), INET_DIAG_REQ_PROTOCOL carries the
// real protocol. The reply's INET_DIAG_INFO holds `struct mptcp_info`
// (include/uapi/linux/mptcp.h), which has grown over kernel releases: every field
// is read only when the kernel sent enough bytes for it.
import { isIPv4 } from 'node:net';
import { withNetns } from './netns.js';
import { NlSocket, NlWriter, nextSeq, NLM_F_DUMP, NLM_F_REQUEST, throwIfFailed, type NlRequest } from './nlsock.js';
import { canonicalAddress } from '../core/address.js';
import type { Family } from '../core/model.js';

export const NETLINK_SOCK_DIAG = 4;
export const SOCK_DIAG_BY_FAMILY = 20;
export const IPPROTO_MPTCP = 262;
const IPPROTO_TCP = 6;
const AF_INET = 2;
const AF_INET6 = 10;
const INET_DIAG_INFO = 2;
const INET_DIAG_REQ_PROTOCOL = 3;
const INET_DIAG_ULP_INFO = 19;
const INET_ULP_INFO_NAME = 1;
const INET_ULP_INFO_MPTCP = 3;
const MPTCP_SUBFLOW_ATTR_TOKEN_LOC = 2;
const TCP_LISTEN = 10;

/** TCP state names as `ss` prints them, indexed by the kernel's TCP_* value. */
const TCP_STATES = [
  'UNKNOWN', 'ESTAB', 'SYN-SENT', 'SYN-RECV', 'FIN-WAIT-1', 'FIN-WAIT-2', 'TIME-WAIT',
  'UNCONN', 'CLOSE-WAIT', 'LAST-ACK', 'LISTEN', 'CLOSING', 'NEW-SYN-RECV', 'BOUND-INACTIVE',
] as const;

const MPTCP_INFO_FLAG_FALLBACK = 1 << 0;
const MPTCP_INFO_FLAG_REMOTE_KEY_RECEIVED = 1 << 1;

/** `struct mptcp_info`; optional fields are absent when the kernel's struct is too short for them. */
export interface MptcpInfo {
  /** Bytes the kernel sent: tells which generation of the struct this is. */
  size: number;
  /** Additional subflows (the initial one is not counted). */
  subflows: number;
  addAddrSignal: number;
  addAddrAccepted: number;
  subflowsMax: number;
  /** Signal endpoints in the namespace (mptcpi_endp_signal_max). */
  addAddrSignalMax: number;
  addAddrAcceptedMax: number;
  fallback: boolean;
  remoteKeyReceived: boolean;
  token: number;
  /** Since 5.12. */
  localAddrUsed?: number;
  /** Subflow endpoints in the namespace (mptcpi_endp_subflow_max); since 5.12. */
  localAddrMax?: number;
  csumEnabled?: boolean;
  retransmits?: number;
  bytesRetrans?: bigint;
  bytesSent?: bigint;
  bytesReceived?: bigint;
  bytesAcked?: bigint;
  /** Subflows including the initial one; since 6.8. */
  subflowsTotal?: number;
  /** Since 6.18. */
  endpLaminarMax?: number;
}

/** The TCP subflows of one MPTCP connection, by state (`ss -tin` shows them with tcp-ulp-mptcp). */
export interface SubflowStates {
  /** Subflows in ESTAB, the initial one included. */
  established: number;
  /** Joins sent and not answered yet (SYN-SENT): the path manager counts them against its limits. */
  synSent: number;
  /** Any other state (closing, SYN-RECV, ...). */
  other: number;
}

export interface MptcpConnection {
  family: Family;
  state: string;
  local: { address: string; port: number };
  remote: { address: string; port: number };
  inode: number;
  uid: number;
  /** Absent when the kernel sent no INET_DIAG_INFO (it then has nothing to say). */
  info?: MptcpInfo;
  /** Its TCP subflows, matched by token; absent when they could not be read. */
  subflowStates?: SubflowStates;
}

const MPTCP_INFO_MIN = 40; // up to mptcpi_rcv_nxt: the 5.9 struct

/** Parses `struct mptcp_info` by offsets; throws when shorter than the oldest layout. */
export function parseMptcpInfo(b: Buffer): MptcpInfo {
  if (b.length < MPTCP_INFO_MIN) {
    throw new Error(`mptcp_info is ${b.length} bytes; at least ${MPTCP_INFO_MIN} expected`);
  }
  const flags = b.readUInt32LE(8);
  const info: MptcpInfo = {
    size: b.length,
    subflows: b[0]!,
    addAddrSignal: b[1]!,
    addAddrAccepted: b[2]!,
    subflowsMax: b[3]!,
    addAddrSignalMax: b[4]!,
    addAddrAcceptedMax: b[5]!,
    fallback: (flags & MPTCP_INFO_FLAG_FALLBACK) !== 0,
    remoteKeyReceived: (flags & MPTCP_INFO_FLAG_REMOTE_KEY_RECEIVED) !== 0,
    token: b.readUInt32LE(12),
  };
  const has = (end: number) => b.length >= end;
  if (has(42)) {
    info.localAddrUsed = b[40]!;
    info.localAddrMax = b[41]!;
  }
  if (has(43)) info.csumEnabled = b[42] !== 0;
  if (has(48)) info.retransmits = b.readUInt32LE(44);
  if (has(56)) info.bytesRetrans = b.readBigUInt64LE(48);
  if (has(64)) info.bytesSent = b.readBigUInt64LE(56);
  if (has(72)) info.bytesReceived = b.readBigUInt64LE(64);
  if (has(80)) info.bytesAcked = b.readBigUInt64LE(72);
  if (has(81)) info.subflowsTotal = b[80]!;
  if (has(82)) info.endpLaminarMax = b[81]!;
  return info;
}

/** Payload of one SOCK_DIAG_BY_FAMILY dump request: inet_diag_req_v2 + INET_DIAG_REQ_PROTOCOL. */
export function buildDumpRequest(family: typeof AF_INET | typeof AF_INET6): Buffer {
  const req = Buffer.alloc(56 + 8);
  req[0] = family;
  req[1] = IPPROTO_TCP;
  req[2] = 1 << (INET_DIAG_INFO - 1);
  // Every state but LISTEN: listeners have no path-manager counters worth reporting.
  req.writeUInt32LE((0xfff & ~(1 << TCP_LISTEN)) >>> 0, 4);
  // inet_diag_sockid stays zero (a dump matches all); cookie INET_DIAG_NOCOOKIE is not needed for dumps.
  req.writeUInt16LE(8, 56);
  req.writeUInt16LE(INET_DIAG_REQ_PROTOCOL, 58);
  req.writeUInt32LE(IPPROTO_MPTCP, 60);
  return req;
}

function addressFrom(b: Buffer, family: number): string {
  if (family === AF_INET) return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(b.readUInt16BE(i).toString(16));
  return canonicalAddress(groups.join(':'));
}

/** Parses one inet_diag_msg with its attributes; throws on a truncated message. */
export function parseInetDiagMsg(b: Buffer): MptcpConnection {
  if (b.length < 72) throw new Error(`inet_diag_msg is ${b.length} bytes; 72 expected`);
  const family = b[0]!;
  const state = b[1]!;
  const conn: MptcpConnection = {
    family: family === AF_INET6 ? 6 : 4,
    state: TCP_STATES[state] ?? `STATE-${state}`,
    local: { address: addressFrom(b.subarray(8, 24), family), port: b.readUInt16BE(4) },
    remote: { address: addressFrom(b.subarray(24, 40), family), port: b.readUInt16BE(6) },
    uid: b.readUInt32LE(64),
    inode: b.readUInt32LE(68),
  };
  for (let off = 72; off + 4 <= b.length; ) {
    const len = b.readUInt16LE(off);
    const type = b.readUInt16LE(off + 2) & 0x3fff;
    if (len < 4 || off + len > b.length) break;
    if (type === INET_DIAG_INFO) conn.info = parseMptcpInfo(b.subarray(off + 4, off + len));
    off += (len + 3) & ~3;
  }
  if (conn.family === 4 && !isIPv4(conn.local.address)) throw new Error('bad IPv4 address in inet_diag_msg');
  return conn;
}

/** Appends one dump request for `family` to `w`; returns its sequence number. */
function writeDumpRequest(w: NlWriter, family: typeof AF_INET | typeof AF_INET6): number {
  const seq = nextSeq();
  w.beginMsg(SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST | NLM_F_DUMP, seq);
  const req = buildDumpRequest(family);
  w.header(req.length, (b, off) => req.copy(b, off));
  w.endMsg();
  return seq;
}

/**
 * Every MPTCP connection (not listeners) of the namespace the socket was created
 * in, IPv4 then IPv6. Synchronous, so it can run inside withNetns.
 */
export function dumpMptcpConnections(sock: NlSocket): MptcpConnection[] {
  const out: MptcpConnection[] = [];
  const w = new NlWriter(256);
  // One after the other: a netlink socket runs one dump at a time (EBUSY otherwise).
  for (const family of [AF_INET, AF_INET6] as const) {
    const op = `SOCK_DIAG_BY_FAMILY mptcp ${family === AF_INET ? 'inet' : 'inet6'} dump`;
    const req: NlRequest = {
      seq: writeDumpRequest(w.reset(), family),
      op,
      dump: true,
      onMessage: (buf, off, len, type) => {
        if (type !== SOCK_DIAG_BY_FAMILY) return;
        // Copy: the receive buffer is reused by the next recv.
        out.push(parseInetDiagMsg(Buffer.from(buf.subarray(off + 16, off + len))));
      },
    };
    sock.send(w, op);
    sock.collect([req]);
    throwIfFailed([req]);
  }
  return out;
}

/** One TCP socket that is an MPTCP subflow: its state and the local token of its connection. */
export interface TcpSubflow {
  state: string;
  local: { address: string; port: number };
  remote: { address: string; port: number };
  token: number;
}

function* attrs(b: Buffer, start: number, end: number): Generator<{ type: number; body: Buffer }> {
  for (let off = start; off + 4 <= end; ) {
    const len = b.readUInt16LE(off);
    if (len < 4 || off + len > end) return;
    yield { type: b.readUInt16LE(off + 2) & 0x3fff, body: b.subarray(off + 4, off + len) };
    off += (len + 3) & ~3;
  }
}

/**
 * The MPTCP part of a TCP socket's INET_DIAG_ULP_INFO (what `ss -ti` prints as
 * tcp-ulp-mptcp): undefined for a plain TCP socket or another ULP.
 */
export function parseTcpSubflow(b: Buffer): TcpSubflow | undefined {
  if (b.length < 72) throw new Error(`inet_diag_msg is ${b.length} bytes; 72 expected`);
  const family = b[0]!;
  let token: number | undefined;
  for (const a of attrs(b, 72, b.length)) {
    if (a.type !== INET_DIAG_ULP_INFO) continue;
    let name = '';
    let mptcp: Buffer | undefined;
    for (const u of attrs(a.body, 0, a.body.length)) {
      if (u.type === INET_ULP_INFO_NAME) name = u.body.toString('latin1').replace(/\0.*$/s, '');
      else if (u.type === INET_ULP_INFO_MPTCP) mptcp = u.body;
    }
    if (name !== 'mptcp' || !mptcp) return undefined;
    for (const m of attrs(mptcp, 0, mptcp.length)) {
      if (m.type === MPTCP_SUBFLOW_ATTR_TOKEN_LOC && m.body.length >= 4) token = m.body.readUInt32LE(0);
    }
  }
  if (token === undefined) return undefined;
  return {
    state: TCP_STATES[b[1]!] ?? `STATE-${b[1]}`,
    local: { address: addressFrom(b.subarray(8, 24), family), port: b.readUInt16BE(4) },
    remote: { address: addressFrom(b.subarray(24, 40), family), port: b.readUInt16BE(6) },
    token,
  };
}

/** A TCP dump request asking for the ULP info (sent with INET_DIAG_INFO). */
function buildTcpDumpRequest(family: typeof AF_INET | typeof AF_INET6): Buffer {
  const req = Buffer.alloc(56);
  req[0] = family;
  req[1] = IPPROTO_TCP;
  req[2] = 1 << (INET_DIAG_INFO - 1);
  req.writeUInt32LE((0xfff & ~(1 << TCP_LISTEN)) >>> 0, 4);
  return req;
}

/** Every TCP socket of the namespace that is an MPTCP subflow, IPv4 then IPv6. */
export function dumpTcpSubflows(sock: NlSocket): TcpSubflow[] {
  const out: TcpSubflow[] = [];
  const w = new NlWriter(256);
  for (const family of [AF_INET, AF_INET6] as const) {
    const op = `SOCK_DIAG_BY_FAMILY tcp ${family === AF_INET ? 'inet' : 'inet6'} dump`;
    const seq = nextSeq();
    w.reset().beginMsg(SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST | NLM_F_DUMP, seq);
    const req = buildTcpDumpRequest(family);
    w.header(req.length, (b, off) => req.copy(b, off));
    w.endMsg();
    const r: NlRequest = {
      seq,
      op,
      dump: true,
      onMessage: (buf, off, len, type) => {
        if (type !== SOCK_DIAG_BY_FAMILY) return;
        const sf = parseTcpSubflow(Buffer.from(buf.subarray(off + 16, off + len)));
        if (sf) out.push(sf);
      },
    };
    sock.send(w, op);
    sock.collect([r]);
    throwIfFailed([r]);
  }
  return out;
}

/** Subflow states per connection token. */
export function subflowStatesByToken(subflows: readonly TcpSubflow[]): Map<number, SubflowStates> {
  const m = new Map<number, SubflowStates>();
  for (const sf of subflows) {
    const s = m.get(sf.token) ?? { established: 0, synSent: 0, other: 0 };
    if (sf.state === 'ESTAB') s.established++;
    else if (sf.state === 'SYN-SENT') s.synSent++;
    else s.other++;
    m.set(sf.token, s);
  }
  return m;
}

/**
 * Opens a sock_diag socket inside `netns`, dumps its MPTCP connections and their
 * TCP subflows (to tell established subflows from joins still in SYN-SENT, which
 * mptcp_info counts alike), closes it.
 */
export function readMptcpConnections(netns: string): MptcpConnection[] {
  return withNetns(netns, () => {
    const sock = new NlSocket(NETLINK_SOCK_DIAG, netns);
    try {
      const conns = dumpMptcpConnections(sock);
      if (conns.length === 0) return conns;
      const states = subflowStatesByToken(dumpTcpSubflows(sock));
      for (const c of conns) {
        if (c.info) c.subflowStates = states.get(c.info.token) ?? { established: 0, synSent: 0, other: 0 };
      }
      return conns;
    } finally {
      sock.close();
    }
  });
}
