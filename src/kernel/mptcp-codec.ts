// The mptcp_pm generic netlink attribute codec (docs/kernel-notes.md#wire-format), one table per
// attribute set. Everything that turns kernel attributes into LiveEndpoint or an
// EndpointSpec into attributes goes through these tables: an attribute that is
// not set is left out (never sent as zero), and a short attribute is an error.
import { bitsFromFlags, flagsFromBits } from '../core/flags.js';
import type { EndpointSpec, Family, LiveEndpoint } from '../core/model.js';
import { type NlWriter, forEachAttr } from './nlsock.js';

export type AttrKind = 'u8' | 'u16' | 'u32' | 's32' | 'in_addr' | 'in6_addr' | 'string' | 'nest';

export interface AttrSpec {
  type: number;
  name: string;
  kind: AttrKind;
  /** For nests: the attribute set inside. */
  nested?: AttrTable;
}

export interface AttrTable {
  name: string;
  attrs: readonly AttrSpec[];
  byType: Map<number, AttrSpec>;
  byName: Map<string, AttrSpec>;
}

export function attrTable(name: string, attrs: AttrSpec[]): AttrTable {
  return {
    name,
    attrs,
    byType: new Map(attrs.map((a) => [a.type, a])),
    byName: new Map(attrs.map((a) => [a.name, a])),
  };
}

/** MPTCP_PM_ADDR_ATTR_*; PORT is host byte order (docs/kernel-notes.md#wire-format), IF_IDX signed. */
export const ADDR_ATTRS = attrTable('mptcp_pm address', [
  { type: 1, name: 'family', kind: 'u16' },
  { type: 2, name: 'id', kind: 'u8' },
  { type: 3, name: 'addr4', kind: 'in_addr' },
  { type: 4, name: 'addr6', kind: 'in6_addr' },
  { type: 5, name: 'port', kind: 'u16' },
  { type: 6, name: 'flags', kind: 'u32' },
  { type: 7, name: 'ifIdx', kind: 's32' },
]);

/** MPTCP_PM_ATTR_* (the "attr" set; the "endpoint" set uses the same type 1 nest). */
export const PM_ATTRS = attrTable('mptcp_pm', [
  { type: 1, name: 'addr', kind: 'nest', nested: ADDR_ATTRS },
  { type: 2, name: 'rcvAddAddrs', kind: 'u32' },
  { type: 3, name: 'subflows', kind: 'u32' },
  { type: 4, name: 'token', kind: 'u32' },
  { type: 5, name: 'locId', kind: 'u8' },
  { type: 6, name: 'addrRemote', kind: 'nest', nested: ADDR_ATTRS },
]);

const MCAST_GRP_ATTRS = attrTable('genl mcast group', [
  { type: 1, name: 'name', kind: 'string' },
  { type: 2, name: 'id', kind: 'u32' },
]);

/** CTRL_ATTR_* of the generic netlink controller (only what family resolution needs). */
export const CTRL_ATTRS = attrTable('genl ctrl', [
  { type: 1, name: 'familyId', kind: 'u16' },
  { type: 2, name: 'familyName', kind: 'string' },
  { type: 3, name: 'version', kind: 'u32' },
  { type: 4, name: 'hdrSize', kind: 'u32' },
  { type: 5, name: 'maxAttr', kind: 'u32' },
  // MCAST_GROUPS is an array: a nest of nests whose types are indexes.
  { type: 7, name: 'mcastGroups', kind: 'nest' },
]);

export const MPTCP_PM_CMD = {
  ADD_ADDR: 1,
  DEL_ADDR: 2,
  GET_ADDR: 3,
  FLUSH_ADDRS: 4,
  SET_LIMITS: 5,
  GET_LIMITS: 6,
  SET_FLAGS: 7,
} as const;

export const AF_INET = 2;
export const AF_INET6 = 10;

export type AttrValue = number | string | AttrValues | Buffer;
export interface AttrValues {
  [name: string]: AttrValue | undefined;
}

export class CodecError extends Error {
  override name = 'CodecError';
}

const MIN_LEN: Record<AttrKind, number> = { u8: 1, u16: 2, u32: 4, s32: 4, in_addr: 4, in6_addr: 16, string: 0, nest: 0 };

/** Decodes the attributes in buf[start, end) by `table`; unknown types are skipped. */
export function decodeAttrs(buf: Buffer, start: number, end: number, table: AttrTable): AttrValues {
  const out: AttrValues = {};
  forEachAttr(buf, start, end, (type, off, len) => {
    const spec = table.byType.get(type);
    if (!spec) return;
    const exact = spec.kind === 'in_addr' || spec.kind === 'in6_addr';
    if (len < MIN_LEN[spec.kind] || (exact && len !== MIN_LEN[spec.kind])) {
      throw new CodecError(`${table.name} attribute ${spec.name} (type ${type}) is ${len} bytes; ${spec.kind} needs ${MIN_LEN[spec.kind]}`);
    }
    switch (spec.kind) {
      case 'u8':
        out[spec.name] = buf.readUInt8(off);
        break;
      case 'u16':
        out[spec.name] = buf.readUInt16LE(off);
        break;
      case 'u32':
        out[spec.name] = buf.readUInt32LE(off);
        break;
      case 's32':
        out[spec.name] = buf.readInt32LE(off);
        break;
      case 'in_addr':
        out[spec.name] = formatIPv4(buf, off);
        break;
      case 'in6_addr':
        out[spec.name] = formatIPv6(buf, off);
        break;
      case 'string': {
        let e = off + len;
        while (e > off && buf[e - 1] === 0) e--;
        out[spec.name] = buf.toString('utf8', off, e);
        break;
      }
      case 'nest':
        out[spec.name] = spec.nested ? decodeAttrs(buf, off, off + len, spec.nested) : Buffer.from(buf.subarray(off, off + len));
        break;
    }
  });
  return out;
}

/** Encodes `values` by `table`, in table order; undefined values are left out. */
export function encodeAttrs(w: NlWriter, table: AttrTable, values: AttrValues): void {
  for (const spec of table.attrs) {
    const v = values[spec.name];
    if (v === undefined) continue;
    switch (spec.kind) {
      case 'u8':
        w.u8(spec.type, checkInt(v, 0, 0xff, spec));
        break;
      case 'u16':
        w.u16(spec.type, checkInt(v, 0, 0xffff, spec));
        break;
      case 'u32':
        w.u32(spec.type, checkInt(v, 0, 0xffffffff, spec));
        break;
      case 's32':
        w.s32(spec.type, checkInt(v, -0x80000000, 0x7fffffff, spec));
        break;
      case 'in_addr':
        w.bytes(spec.type, parseIPv4(String(v)));
        break;
      case 'in6_addr':
        w.bytes(spec.type, parseIPv6(String(v)));
        break;
      case 'string':
        w.string(spec.type, String(v));
        break;
      case 'nest': {
        if (!spec.nested || typeof v !== 'object' || Buffer.isBuffer(v)) throw new CodecError(`${spec.name}: not encodable`);
        const at = w.beginNest(spec.type);
        encodeAttrs(w, spec.nested, v);
        w.endNest(at);
        break;
      }
    }
  }
}

function checkInt(v: AttrValue, min: number, max: number, spec: AttrSpec): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new CodecError(`${spec.name} must be an integer in ${min}..${max}, got ${String(v)}`);
  }
  return v;
}

// ---- addresses -----------------------------------------------------------

export function formatIPv4(b: Uint8Array, off: number): string {
  return `${b[off]}.${b[off + 1]}.${b[off + 2]}.${b[off + 3]}`;
}

/** RFC 5952 text; a v4-mapped address comes out as its IPv4 form (canonicalAddress does the same). */
export function formatIPv6(b: Uint8Array, off: number): string {
  const g: number[] = [];
  for (let i = 0; i < 8; i++) g.push((b[off + 2 * i]! << 8) | b[off + 2 * i + 1]!);
  if (g[0] === 0 && g[1] === 0 && g[2] === 0 && g[3] === 0 && g[4] === 0 && g[5] === 0xffff) {
    return formatIPv4(b, off + 12);
  }
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (from: number, to: number) => g.slice(from, to).map((x) => x.toString(16)).join(':');
  if (bestStart < 0) return hex(0, 8);
  return `${hex(0, bestStart)}::${hex(bestStart + bestLen, 8)}`;
}

export function parseIPv4(s: string): Uint8Array {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  const parts = m ? m.slice(1).map(Number) : [];
  if (parts.length !== 4 || parts.some((p) => p > 255)) throw new CodecError(`not an IPv4 address: ${s}`);
  return Uint8Array.from(parts);
}

export function parseIPv6(s: string): Uint8Array {
  const bad = () => new CodecError(`not an IPv6 address: ${s}`);
  let text = s;
  const tail: number[] = [];
  const v4 = /^(.*:)(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    const b = parseIPv4(v4[2]!);
    tail.push((b[0]! << 8) | b[1]!, (b[2]! << 8) | b[3]!);
    text = v4[1]!.endsWith('::') ? v4[1]! : v4[1]!.slice(0, -1);
  }
  const halves = text.split('::');
  if (halves.length > 2) throw bad();
  const groups = (h: string) => (h === '' ? [] : h.split(':').map((x) => {
    if (!/^[0-9a-fA-F]{1,4}$/.test(x)) throw bad();
    return parseInt(x, 16);
  }));
  const head = groups(halves[0]!);
  const rest = halves.length === 2 ? groups(halves[1]!) : [];
  const total = head.length + rest.length + tail.length;
  let all: number[];
  if (halves.length === 2) {
    if (total > 7) throw bad();
    all = [...head, ...new Array<number>(8 - total).fill(0), ...rest, ...tail];
  } else {
    if (total !== 8) throw bad();
    all = [...head, ...tail];
  }
  const out = new Uint8Array(16);
  all.forEach((x, i) => {
    out[2 * i] = x >> 8;
    out[2 * i + 1] = x & 0xff;
  });
  return out;
}

// ---- endpoints -----------------------------------------------------------

/** An endpoint as ADD_ADDR takes it; rawFlags lets a caller send bits the flag table does not name. */
export type EndpointRequest = EndpointSpec & { rawFlags?: number };

export function endpointFamily(address: string): Family {
  return address.includes(':') ? 6 : 4;
}

/** The ADDR nest values of an endpoint; unset and zero-meaning-unset fields are left out. */
export function endpointAttrs(ep: EndpointRequest): AttrValues {
  const family = endpointFamily(ep.address);
  const bits = bitsFromFlags(ep.flags, ep.rawFlags ?? 0);
  return {
    family: family === 4 ? AF_INET : AF_INET6,
    ...(family === 4 ? { addr4: ep.address } : { addr6: ep.address }),
    ...(ep.id ? { id: ep.id } : {}),
    ...(bits ? { flags: bits } : {}),
    ...(ep.port ? { port: ep.port } : {}),
    ...(ep.ifindex ? { ifIdx: ep.ifindex } : {}),
  };
}

/** A decoded ADDR nest as a LiveEndpoint; missing family or address is an error. */
export function endpointFromAttrs(a: AttrValues): LiveEndpoint {
  const fam = a.family;
  let family: Family;
  let address: unknown;
  if (fam === AF_INET) {
    family = 4;
    address = a.addr4;
  } else if (fam === AF_INET6) {
    family = 6;
    address = a.addr6;
  } else {
    throw new CodecError(`endpoint with ${fam === undefined ? 'no' : `unknown`} address family ${fam ?? ''}`.trim());
  }
  if (typeof address !== 'string') throw new CodecError(`endpoint of family ${fam} without its address attribute`);
  if (typeof a.id !== 'number') throw new CodecError(`endpoint ${address} without an id`);
  const { flags, unknown } = flagsFromBits(typeof a.flags === 'number' ? a.flags : 0);
  const ep: LiveEndpoint = { id: a.id, family, address, flags };
  if (typeof a.port === 'number' && a.port !== 0) ep.port = a.port;
  if (unknown) ep.rawFlags = unknown;
  if (typeof a.ifIdx === 'number' && a.ifIdx !== 0) ep.ifindex = a.ifIdx;
  return ep;
}

/** Decodes the genl payload (after the 4-byte genlmsghdr) of one GET_ADDR reply. */
export function decodeEndpointMessage(buf: Buffer, start: number, end: number): LiveEndpoint {
  const top = decodeAttrs(buf, start, end, PM_ATTRS);
  if (!top.addr || typeof top.addr !== 'object' || Buffer.isBuffer(top.addr)) {
    throw new CodecError('GET_ADDR reply without an address nest');
  }
  return endpointFromAttrs(top.addr);
}

/** The text a user reads for an endpoint in an operation name. */
export function endpointOpText(ep: EndpointSpec): string {
  return `${ep.address}${ep.port ? ` port ${ep.port}` : ''}${ep.id ? ` id ${ep.id}` : ''}`;
}

/** Decodes the genl controller's MCAST_GROUPS array into name -> id. */
export function decodeMcastGroups(nest: Buffer): Record<string, number> {
  const groups: Record<string, number> = {};
  forEachAttr(nest, 0, nest.length, (_idx, off, len) => {
    const g = decodeAttrs(nest, off, off + len, MCAST_GRP_ATTRS);
    if (typeof g.name === 'string' && typeof g.id === 'number') groups[g.name] = g.id;
  });
  return groups;
}
