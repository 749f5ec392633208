// Default routes over rtnetlink (RTM_GETROUTE dump), for doctor: the interface a
// new connection leaves by is one MPTCP uses, so its rp_filter matters too.
import {
  forEachAttr,
  nextSeq,
  NLM_F_DUMP,
  NLM_F_REQUEST,
  NlSocket,
  NlWriter,
  throwIfFailed,
  type NlRequest,
} from './nlsock.js';
import { canonicalAddress } from '../core/address.js';
import type { Family } from '../core/model.js';

const RTM_NEWROUTE = 24;
const RTM_GETROUTE = 26;
const AF_INET = 2;
const AF_INET6 = 10;
const RTN_UNICAST = 1;
const RT_TABLE_LOCAL = 255;
const RTA_OIF = 4;
const RTA_GATEWAY = 5;
const RTA_PRIORITY = 6;
const RTA_MULTIPATH = 9;
const RTA_TABLE = 15;
const RTMSG_SIZE = 12;

export interface DefaultRoute {
  family: Family;
  table: number;
  /** Outgoing interfaces: one, or several for a multipath route. */
  ifindexes: number[];
  gateway?: string;
  metric?: number;
}

function gatewayText(buf: Buffer, off: number, len: number): string | undefined {
  if (len === 4) return `${buf[off]}.${buf[off + 1]}.${buf[off + 2]}.${buf[off + 3]}`;
  if (len === 16) {
    const groups: string[] = [];
    for (let i = 0; i < 16; i += 2) groups.push(buf.readUInt16BE(off + i).toString(16));
    return canonicalAddress(groups.join(':'));
  }
  return undefined;
}

/** Parses one RTM_NEWROUTE message (buf[off, off+len) including nlmsghdr); undefined unless a default unicast route. */
export function parseDefaultRoute(buf: Buffer, off: number, len: number): DefaultRoute | undefined {
  const body = off + 16;
  if (len < 16 + RTMSG_SIZE) return undefined;
  const family = buf[body]!;
  const dstLen = buf[body + 1]!;
  let table = buf[body + 4]!;
  const type = buf[body + 7]!;
  if (dstLen !== 0 || type !== RTN_UNICAST || (family !== AF_INET && family !== AF_INET6)) return undefined;
  const route: DefaultRoute = { family: family === AF_INET ? 4 : 6, table, ifindexes: [] };
  forEachAttr(buf, body + RTMSG_SIZE, off + len, (t, o, l) => {
    if (t === RTA_OIF && l >= 4) route.ifindexes.push(buf.readInt32LE(o));
    else if (t === RTA_TABLE && l >= 4) table = buf.readUInt32LE(o);
    else if (t === RTA_PRIORITY && l >= 4) route.metric = buf.readUInt32LE(o);
    else if (t === RTA_GATEWAY) {
      const g = gatewayText(buf, o, l);
      if (g) route.gateway = g;
    } else if (t === RTA_MULTIPATH) {
      // struct rtnexthop { u16 len; u8 flags; u8 hops; s32 ifindex; } followed by its attributes.
      for (let p = o; p + 8 <= o + l; ) {
        const nhLen = buf.readUInt16LE(p);
        if (nhLen < 8) break;
        route.ifindexes.push(buf.readInt32LE(p + 4));
        p += (nhLen + 3) & ~3;
      }
    }
  });
  route.table = table;
  if (table === RT_TABLE_LOCAL) return undefined;
  return route;
}

/** Default unicast routes of the socket's namespace, every table but `local`, IPv4 then IPv6. */
export function dumpDefaultRoutes(sock: NlSocket): DefaultRoute[] {
  const out: DefaultRoute[] = [];
  const w = new NlWriter(128);
  for (const family of [AF_INET, AF_INET6]) {
    const op = `RTM_GETROUTE ${family === AF_INET ? 'inet' : 'inet6'} dump`;
    const seq = nextSeq();
    w.reset().beginMsg(RTM_GETROUTE, NLM_F_REQUEST | NLM_F_DUMP, seq);
    w.header(RTMSG_SIZE, (b, o) => {
      b[o] = family;
    });
    w.endMsg();
    const req: NlRequest = {
      seq,
      op,
      dump: true,
      onMessage: (buf, off, len, type) => {
        if (type !== RTM_NEWROUTE) return;
        const r = parseDefaultRoute(buf, off, len);
        if (r) out.push(r);
      },
    };
    sock.send(w, op);
    sock.collect([req]);
    throwIfFailed([req]);
  }
  return out;
}

