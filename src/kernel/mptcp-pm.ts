// mptcp_pm generic netlink requests (docs/kernel-notes.md#wire-format, #commands) on a synchronous NlSocket.
// Builders write into a shared NlWriter and return the NlRequest that collects the
// answer, so a caller can put several requests in one send (pipelining).
import type { EndpointSpec, LiveEndpoint } from '../core/model.js';
import type { KernelWrite, KernelWriteResult, Limits } from './api.js';
import { KernelError } from './api.js';
import {
  CodecError,
  CTRL_ATTRS,
  type EndpointRequest,
  MPTCP_PM_CMD,
  PM_ATTRS,
  decodeAttrs,
  decodeEndpointMessage,
  decodeMcastGroups,
  encodeAttrs,
  endpointAttrs,
  endpointOpText,
} from './mptcp-codec.js';
import { NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST, type NlRequest, type NlSocket, NlWriter, nextSeq, throwIfFailed } from './nlsock.js';
import { NLMSG_HDRLEN } from './uapi.js';

const GENL_ID_CTRL = 0x10;
const CTRL_CMD_GETFAMILY = 3;
const GENL_HDRLEN = 4;
export const MPTCP_PM_NAME = 'mptcp_pm';
export const MPTCP_PM_VERSION = 1;

export interface GenlFamily {
  id: number;
  version: number;
  /** Multicast group name -> id (e.g. mptcp_pm_events). */
  groups: Record<string, number>;
}

/** One writer for every request of the process: used and sent synchronously. */
export const writer = new NlWriter();

function genlMsg(w: NlWriter, type: number, flags: number, seq: number, cmd: number, version: number): NlWriter {
  return w.beginMsg(type, flags, seq).header(GENL_HDRLEN, (b, o) => {
    b[o] = cmd;
    b[o + 1] = version;
  });
}

let cachedFamily: GenlFamily | undefined;

/**
 * Resolves mptcp_pm through the controller. Generic netlink family ids are global
 * (not per namespace), so this runs once per process.
 */
export function resolveMptcpFamily(sock: NlSocket): GenlFamily {
  if (cachedFamily) return cachedFamily;
  const w = writer.reset();
  const seq = nextSeq();
  genlMsg(w, GENL_ID_CTRL, NLM_F_REQUEST, seq, CTRL_CMD_GETFAMILY, 1).string(2, MPTCP_PM_NAME).endMsg();
  let fam: GenlFamily | undefined;
  const req: NlRequest = {
    seq,
    op: `CTRL_CMD_GETFAMILY ${MPTCP_PM_NAME}`,
    dump: false,
    onMessage: (buf, off, len) => {
      const a = decodeAttrs(buf, off + NLMSG_HDRLEN + GENL_HDRLEN, off + len, CTRL_ATTRS);
      fam = {
        id: Number(a.familyId),
        version: Number(a.version),
        groups: Buffer.isBuffer(a.mcastGroups) ? decodeMcastGroups(a.mcastGroups) : {},
      };
    },
  };
  sock.send(w, req.op);
  sock.collect([req]);
  if (req.error) {
    if (req.error.code === 'ENOENT') {
      throw new KernelError({
        ...req.error,
        extack: 'the kernel has no mptcp_pm generic netlink family (MPTCP not built in or module not loaded)',
      });
    }
    throw req.error;
  }
  if (!fam || !fam.id) throw new Error('CTRL_CMD_GETFAMILY mptcp_pm: reply without a family id');
  if (fam.version < MPTCP_PM_VERSION) {
    throw new KernelError({
      op: req.op,
      netns: sock.netns,
      errno: 95,
      code: 'EOPNOTSUPP',
      extack: `mptcp_pm version ${fam.version}; version ${MPTCP_PM_VERSION} or later is needed`,
      retryable: false,
    });
  }
  cachedFamily = fam;
  return fam;
}

/** Appends a GET_ADDR dump; endpoints land in `into`. */
export function queueDumpEndpoints(w: NlWriter, fam: GenlFamily, into: LiveEndpoint[]): NlRequest {
  const seq = nextSeq();
  genlMsg(w, fam.id, NLM_F_REQUEST | NLM_F_DUMP, seq, MPTCP_PM_CMD.GET_ADDR, MPTCP_PM_VERSION).endMsg();
  return {
    seq,
    op: 'GET_ADDR dump',
    dump: true,
    onMessage: (buf, off, len) => {
      into.push(decodeEndpointMessage(buf, off + NLMSG_HDRLEN + GENL_HDRLEN, off + len));
    },
  };
}

export function queueGetLimits(w: NlWriter, fam: GenlFamily, into: Limits): NlRequest {
  const seq = nextSeq();
  genlMsg(w, fam.id, NLM_F_REQUEST, seq, MPTCP_PM_CMD.GET_LIMITS, MPTCP_PM_VERSION).endMsg();
  return {
    seq,
    op: 'GET_LIMITS',
    dump: false,
    onMessage: (buf, off, len) => {
      const a = decodeAttrs(buf, off + NLMSG_HDRLEN + GENL_HDRLEN, off + len, PM_ATTRS);
      into.subflows = Number(a.subflows ?? 0);
      into.addAddrAccepted = Number(a.rcvAddAddrs ?? 0);
    },
  };
}

function write(w: NlWriter, fam: GenlFamily, cmd: number, op: string, fill: (w: NlWriter) => void): NlRequest {
  const seq = nextSeq();
  genlMsg(w, fam.id, NLM_F_REQUEST | NLM_F_ACK, seq, cmd, MPTCP_PM_VERSION);
  fill(w);
  w.endMsg();
  return { seq, op, dump: false };
}

export function queueAddEndpoint(w: NlWriter, fam: GenlFamily, ep: EndpointRequest): NlRequest {
  return write(w, fam, MPTCP_PM_CMD.ADD_ADDR, `ADD_ADDR ${endpointOpText(ep)}`, (w) =>
    encodeAttrs(w, PM_ATTRS, { addr: endpointAttrs(ep) }),
  );
}

/** DEL_ADDR by id only: id 0 or none would delete nothing and still succeed (docs/kernel-notes.md#commands). */
export function queueDeleteEndpoint(w: NlWriter, fam: GenlFamily, id: number, netns: string): NlRequest {
  if (!Number.isInteger(id) || id < 1 || id > 255) {
    throw new KernelError({
      op: `DEL_ADDR id ${id}`,
      netns,
      errno: 22,
      code: 'EINVAL',
      extack: 'an endpoint is deleted by its id 1..255; without one the kernel deletes nothing',
      retryable: false,
    });
  }
  return write(w, fam, MPTCP_PM_CMD.DEL_ADDR, `DEL_ADDR id ${id}`, (w) => encodeAttrs(w, PM_ATTRS, { addr: { id } }));
}

/** FLUSH_ADDRS takes no attributes: every endpoint goes, the id counter restarts at 1. */
export function queueFlushEndpoints(w: NlWriter, fam: GenlFamily): NlRequest {
  return write(w, fam, MPTCP_PM_CMD.FLUSH_ADDRS, 'FLUSH_ADDRS', () => undefined);
}

/** SET_FLAGS by id (no family, so the kernel looks up by id); backup and fullmesh are absolute. */
export function queueSetFlags(
  w: NlWriter,
  fam: GenlFamily,
  id: number,
  flags: { backup: boolean; fullmesh: boolean },
  netns: string,
): NlRequest {
  if (!Number.isInteger(id) || id < 1 || id > 255) {
    throw new KernelError({ op: `SET_FLAGS id ${id}`, netns, errno: 22, code: 'EINVAL', extack: 'SET_FLAGS needs an endpoint id 1..255', retryable: false });
  }
  const bits = (flags.backup ? 0x04 : 0) | (flags.fullmesh ? 0x08 : 0);
  const what = [flags.backup ? 'backup' : 'nobackup', flags.fullmesh ? 'fullmesh' : 'nofullmesh'].join(',');
  return write(w, fam, MPTCP_PM_CMD.SET_FLAGS, `SET_FLAGS id ${id} ${what}`, (w) =>
    encodeAttrs(w, PM_ATTRS, { addr: { id, ...(bits ? { flags: bits } : {}) } }),
  );
}

export function queueSetLimits(w: NlWriter, fam: GenlFamily, limits: Partial<Limits>): NlRequest {
  const parts = [
    limits.subflows !== undefined ? `subflows ${limits.subflows}` : '',
    limits.addAddrAccepted !== undefined ? `add_addr_accepted ${limits.addAddrAccepted}` : '',
  ].filter(Boolean);
  return write(w, fam, MPTCP_PM_CMD.SET_LIMITS, `SET_LIMITS ${parts.join(' ')}`.trim(), (w) =>
    encodeAttrs(w, PM_ATTRS, { rcvAddAddrs: limits.addAddrAccepted, subflows: limits.subflows }),
  );
}

/** Appends one write of a batch (see queueAddEndpoint and the others). */
export function queueWrite(w: NlWriter, fam: GenlFamily, write: KernelWrite, netns: string): NlRequest {
  switch (write.op) {
    case 'add':
      return queueAddEndpoint(w, fam, write.endpoint);
    case 'delete':
      return queueDeleteEndpoint(w, fam, write.id, netns);
    case 'flush':
      return queueFlushEndpoints(w, fam);
    case 'set-flags':
      return queueSetFlags(w, fam, write.id, { backup: write.backup, fullmesh: write.fullmesh }, netns);
    case 'set-limits':
      return queueSetLimits(w, fam, write.limits);
  }
}

function writeOpText(write: KernelWrite): string {
  switch (write.op) {
    case 'add':
      return `ADD_ADDR ${write.endpoint.address}`;
    case 'delete':
      return `DEL_ADDR id ${write.id}`;
    case 'flush':
      return 'FLUSH_ADDRS';
    case 'set-flags':
      return `SET_FLAGS id ${write.id}`;
    case 'set-limits':
      return 'SET_LIMITS';
  }
}

/**
 * Writes per sendmsg. The kernel runs a whole buffer inside send() and queues the
 * answers before send() returns; 64 (with extack text, and NETLINK_CAP_ACK so an
 * error does not carry the request back) stay far below the default 208 KiB
 * receive buffer, so none is dropped for want of room.
 */
export const MAX_BATCH = 64;

/** One sendmsg of a batch: its requests and, per request, the index of its write. */
export interface QueuedBatch {
  reqs: NlRequest[];
  index: number[];
}

/**
 * Appends writes[start, end) to `w` as one batch. Only the last request asks for
 * an ack: the kernel answers the others only when they fail, and the last ack,
 * answered in order after them, says they are done (one recv instead of one per
 * write: a recv per ack was a sixth of a cold pass). A write refused before
 * sending (an id out of range, an unencodable address) gets its error in
 * `refused` and is left out of the buffer.
 */
export function queueWrites(
  w: NlWriter,
  fam: GenlFamily,
  writes: readonly KernelWrite[],
  netns: string,
  refused: (i: number, error: KernelError) => void,
  start = 0,
  end = writes.length,
): QueuedBatch {
  const reqs: NlRequest[] = [];
  const index: number[] = [];
  const starts: number[] = [];
  for (let i = start; i < end; i++) {
    const mark = w.len;
    try {
      reqs.push(queueWrite(w, fam, writes[i]!, netns));
      index.push(i);
      starts.push(mark);
    } catch (e) {
      // Drop what the refused request had written so far: the kernel must not see half a message.
      w.len = mark;
      if (!(e instanceof KernelError) && !(e instanceof CodecError)) throw e;
      // Refused here as the kernel would refuse it (like an id out of range in queueDeleteEndpoint).
      refused(i, e instanceof KernelError ? e : new KernelError({ op: writeOpText(writes[i]!), netns, errno: 22, code: 'EINVAL', extack: e.message, retryable: false }));
    }
  }
  for (let k = 0; k < reqs.length - 1; k++) {
    const flagsAt = starts[k]! + 6;
    w.buf.writeUInt16LE(w.buf.readUInt16LE(flagsAt) & ~NLM_F_ACK, flagsAt);
    reqs[k]!.ackless = true;
  }
  return { reqs, index };
}

/**
 * Runs `writes` in order, MAX_BATCH per sendmsg, and returns one result per write.
 * A write refused before sending gets its error and the others still go; an error
 * that concerns the socket itself throws.
 */
export function runWrites(sock: NlSocket, w: NlWriter, fam: GenlFamily, writes: readonly KernelWrite[]): KernelWriteResult[] {
  const results: KernelWriteResult[] = new Array(writes.length);
  for (let start = 0; start < writes.length; start += MAX_BATCH) {
    const { reqs, index } = queueWrites(w.reset(), fam, writes, sock.netns, (i, error) => (results[i] = { ok: false, error }), start, Math.min(writes.length, start + MAX_BATCH));
    if (reqs.length === 0) continue;
    sock.send(w, reqs.length === 1 ? reqs[0]!.op : `${reqs.length} requests from ${reqs[0]!.op}`);
    sock.collect(reqs);
    for (let k = 0; k < reqs.length; k++) {
      const err = reqs[k]!.error;
      results[index[k]!] = err ? { ok: false, error: err } : { ok: true };
    }
  }
  return results;
}

/** Sends what `w` holds and collects every request; throws the first failure. */
export function run(sock: NlSocket, w: NlWriter, reqs: NlRequest[]): void {
  if (reqs.length === 0) return;
  sock.send(w, reqs[0]!.op);
  sock.collect(reqs);
  throwIfFailed(reqs);
}

export type { EndpointSpec };
