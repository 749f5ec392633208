// rtnetlink dumps of links, addresses and IPv4 netconf (the parts the reconciler
// needs: names for `dev`, addresses for interface-derived endpoints, rp_filter).
import type { AddressScope, LiveAddress, LiveLink } from '../core/model.js';
import { AF_INET, formatIPv4, formatIPv6 } from './mptcp-codec.js';
import { NLM_F_DUMP, NLM_F_REQUEST, type NlRequest, type NlWriter, forEachAttr, nextSeq } from './nlsock.js';
import {
  NETCONFA_IFINDEX,
  NETCONFA_RP_FILTER,
  NETCONFMSG_LEN,
  NLMSG_HDRLEN,
  RTM_GETADDR,
  RTM_GETLINK,
  RTM_GETNETCONF,
  RTM_NEWADDR,
  RTM_NEWLINK,
  RTM_NEWNETCONF,
} from './uapi.js';

const IFLA_IFNAME = 3;
const IFLA_EXT_MASK = 29;
// Statistics are most of a link message and nobody here reads them.
const RTEXT_FILTER_SKIP_STATS = 1 << 3;
const IFF_UP = 0x1;
const IFF_LOWER_UP = 0x10000;
const IFINFOMSG_LEN = 16;
const IFADDRMSG_LEN = 8;

const IFA_ADDRESS = 1;
const IFA_LOCAL = 2;
const IFA_FLAGS = 8;
const IFA_F_TEMPORARY = 0x01;
const IFA_F_DADFAILED = 0x08;
const IFA_F_DEPRECATED = 0x20;
const IFA_F_TENTATIVE = 0x40;

const SCOPES: Record<number, AddressScope> = { 0: 'global', 200: 'site', 253: 'link', 254: 'host', 255: 'nowhere' };

export function queueDumpLinks(w: NlWriter, into: LiveLink[]): NlRequest {
  const seq = nextSeq();
  w.beginMsg(RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, seq).header(IFINFOMSG_LEN).u32(IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS).endMsg();
  return {
    seq,
    op: 'RTM_GETLINK dump',
    dump: true,
    onMessage: (buf, off, len, type) => {
      if (type !== RTM_NEWLINK || len < NLMSG_HDRLEN + IFINFOMSG_LEN) return;
      const p = off + NLMSG_HDRLEN;
      const ifindex = buf.readInt32LE(p + 4);
      const flags = buf.readUInt32LE(p + 8);
      let name = '';
      forEachAttr(buf, p + IFINFOMSG_LEN, off + len, (t, o, l) => {
        if (t !== IFLA_IFNAME) return;
        let e = o + l;
        while (e > o && buf[e - 1] === 0) e--;
        name = buf.toString('utf8', o, e);
      });
      into.push({ ifindex, name, up: (flags & IFF_UP) !== 0, lowerUp: (flags & IFF_LOWER_UP) !== 0 });
    },
  };
}

export function queueDumpAddresses(w: NlWriter, into: LiveAddress[]): NlRequest {
  const seq = nextSeq();
  w.beginMsg(RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP, seq).header(IFADDRMSG_LEN).endMsg();
  return {
    seq,
    op: 'RTM_GETADDR dump',
    dump: true,
    onMessage: (buf, off, len, type) => {
      if (type !== RTM_NEWADDR || len < NLMSG_HDRLEN + IFADDRMSG_LEN) return;
      const p = off + NLMSG_HDRLEN;
      const fam = buf[p]!;
      if (fam !== 2 && fam !== 10) return;
      const alen = fam === 2 ? 4 : 16;
      let flags = buf[p + 2]!;
      const scopeRaw = buf[p + 3]!;
      let local: string | undefined;
      let address: string | undefined;
      forEachAttr(buf, p + IFADDRMSG_LEN, off + len, (t, o, l) => {
        if ((t === IFA_LOCAL || t === IFA_ADDRESS) && l === alen) {
          const text = fam === 2 ? formatIPv4(buf, o) : formatIPv6(buf, o);
          if (t === IFA_LOCAL) local = text;
          else address = text;
        } else if (t === IFA_FLAGS && l >= 4) {
          // The 8-bit ifa_flags cannot hold the newer bits; IFA_FLAGS is authoritative.
          flags = buf.readUInt32LE(o);
        }
      });
      // On point-to-point links IFA_ADDRESS is the peer; IFA_LOCAL is ours.
      const addr = local ?? address;
      if (addr === undefined) return;
      into.push({
        ifindex: buf.readUInt32LE(p + 4),
        family: fam === 2 ? 4 : 6,
        address: addr,
        prefixlen: buf[p + 1]!,
        scope: SCOPES[scopeRaw] ?? scopeRaw,
        tentative: (flags & IFA_F_TENTATIVE) !== 0,
        dadfailed: (flags & IFA_F_DADFAILED) !== 0,
        deprecated: (flags & IFA_F_DEPRECATED) !== 0,
        temporary: (flags & IFA_F_TEMPORARY) !== 0,
      });
    },
  };
}

/**
 * The raw rp_filter of every interface with IPv4 configuration, by ifindex, plus
 * `all` and `default` under NETCONFA_IFINDEX_ALL and _DEFAULT: one dump instead of
 * a /proc/sys open per interface (docs/kernel-notes.md#rp_filter).
 */
export function queueDumpRpFilter(w: NlWriter, into: Map<number, number>): NlRequest {
  const seq = nextSeq();
  w.beginMsg(RTM_GETNETCONF, NLM_F_REQUEST | NLM_F_DUMP, seq)
    .header(NETCONFMSG_LEN, (b, o) => {
      b[o] = AF_INET;
    })
    .endMsg();
  return {
    seq,
    op: 'RTM_GETNETCONF inet dump',
    dump: true,
    onMessage: (buf, off, len, type) => {
      if (type !== RTM_NEWNETCONF || len < NLMSG_HDRLEN + NETCONFMSG_LEN) return;
      const p = off + NLMSG_HDRLEN;
      if (buf[p] !== AF_INET) return;
      let ifindex: number | undefined;
      let rp: number | undefined;
      forEachAttr(buf, p + NETCONFMSG_LEN, off + len, (t, o, l) => {
        if (l < 4) return;
        if (t === NETCONFA_IFINDEX) ifindex = buf.readInt32LE(o);
        else if (t === NETCONFA_RP_FILTER) rp = buf.readInt32LE(o);
      });
      if (ifindex !== undefined && rp !== undefined) into.set(ifindex, rp);
    },
  };
}
