// Golden bytes of the hand-written mptcp_pm codec (docs/kernel-notes.md#wire-format). Pure: no kernel.
import { describe, expect, it } from 'vitest';
import {
  ADDR_ATTRS,
  CodecError,
  PM_ATTRS,
  decodeAttrs,
  decodeEndpointMessage,
  encodeAttrs,
  endpointAttrs,
  endpointFromAttrs,
  formatIPv6,
  parseIPv6,
} from '../src/kernel/mptcp-codec.js';
import { queueAddEndpoint, queueDeleteEndpoint, queueSetFlags, queueSetLimits } from '../src/kernel/mptcp-pm.js';
import { KernelError } from '../src/kernel/api.js';
import { NlWriter } from '../src/kernel/nlsock.js';

const hex = (s: string) => Buffer.from(s.replace(/[\s|]/g, ''), 'hex');
const fam = { id: 28, version: 1, groups: {} };

describe('mptcp_pm codec', () => {
  it('decodes the dump entry of docs/kernel-notes.md#wire-format into the endpoint ip shows', () => {
    const entry = hex('2c 00 01 80 | 06 00 01 00 02 00 00 00 | 06 00 05 00 00 00 00 00 | 05 00 02 00 01 00 00 00 | 08 00 06 00 02 00 00 00 | 08 00 03 00 c0 00 02 01');
    // The doc's entry: FAMILY=2, PORT=0, ID=1, FLAGS=0x2, ADDR4=192.0.2.1 (no IF_IDX: it is 0).
    expect(decodeEndpointMessage(entry, 0, entry.length)).toEqual({ id: 1, family: 4, address: '192.0.2.1', flags: ['subflow'] });
  });

  it('encodes ADD_ADDR with port and id: port in host byte order, unset attributes left out', () => {
    const w = new NlWriter();
    const req = queueAddEndpoint(w, fam, { address: '192.0.2.1', port: 10100, id: 3, flags: ['signal'] });
    expect(req.op).toBe('ADD_ADDR 192.0.2.1 port 10100 id 3');
    const seq = Buffer.alloc(4);
    seq.writeUInt32LE(req.seq);
    expect(w.bytesWritten().toString('hex')).toBe(
      hex(
        `40000000 1c00 0500 ${seq.toString('hex')} 00000000 | 01 01 0000 |` +
          // ADDR nest (type 1 | NLA_F_NESTED), 44 bytes
          '2c00 0180 | 0600 0100 0200 0000 | 0500 0200 03 000000 | 0800 0300 c0000201 | 0600 0500 7427 0000 | 0800 0600 01000000',
      ).toString('hex'),
    );
  });

  it('encodes an IPv6 endpoint with ifindex and an unknown raw bit', () => {
    const w = new NlWriter();
    encodeAttrs(w, PM_ATTRS, { addr: endpointAttrs({ address: '2001:db8::1', flags: ['subflow', 'laminar'], ifindex: 7, rawFlags: 0x80 }) });
    expect(w.bytesWritten().toString('hex')).toBe(
      hex(
        '3000 0180 | 0600 0100 0a00 0000 | 1400 0400 20010db8000000000000000000000001 | 0800 0600 a2000000 | 0800 0700 07000000',
      ).toString('hex'),
    );
    const back = decodeAttrs(w.bytesWritten(), 0, w.len, PM_ATTRS) as { addr: Record<string, unknown> };
    // A reply always carries the id; without one the entry is rejected, not guessed.
    expect(() => endpointFromAttrs(back.addr as never)).toThrow(/without an id/);
    expect(endpointFromAttrs({ ...back.addr, id: 4 } as never)).toEqual({
      id: 4,
      family: 6,
      address: '2001:db8::1',
      flags: ['subflow', 'laminar'],
      rawFlags: 0x80,
      ifindex: 7,
    });
  });

  it('rejects a short attribute instead of reading garbage', () => {
    // ADDR4 of 3 bytes, FLAGS of 2 bytes.
    expect(() => decodeAttrs(hex('0700 0300 c00002 00'), 0, 8, ADDR_ATTRS)).toThrow(CodecError);
    expect(() => decodeAttrs(hex('0600 0600 0200 0000'), 0, 8, ADDR_ATTRS)).toThrow(/flags .* 2 bytes; u32 needs 4/);
    // An attribute running past the message end.
    expect(() => decodeAttrs(hex('0c00 0600 02000000'), 0, 8, ADDR_ATTRS)).toThrow(/malformed/);
  });

  it('SET_LIMITS sends only the keys given; SET_FLAGS is by id with absolute flags', () => {
    const w = new NlWriter();
    queueSetLimits(w, fam, { subflows: 4 });
    expect(w.bytesWritten().subarray(20).toString('hex')).toBe('0800030004000000');
    w.reset();
    queueSetFlags(w, fam, 5, { backup: true, fullmesh: false }, 'x');
    expect(w.bytesWritten().subarray(20).toString('hex')).toBe(hex('1400 0180 | 0500 0200 05000000 | 0800 0600 04000000').toString('hex'));
  });

  it('refuses DEL_ADDR without an id (the kernel would delete nothing and succeed)', () => {
    const w = new NlWriter();
    expect(() => queueDeleteEndpoint(w, fam, 0, 'ns1')).toThrow(KernelError);
    expect(() => queueDeleteEndpoint(w, fam, 0, 'ns1')).toThrow(/DEL_ADDR id 0 in netns ns1: EINVAL/);
  });

  it('formats and parses IPv6 like inet_ntop', () => {
    for (const [text, canon] of [
      ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
      ['2001:DB8::', '2001:db8::'],
      ['::', '::'],
      ['::ffff:192.0.2.1', '192.0.2.1'],
      ['2001:db8:1:2:3:4:5:6', '2001:db8:1:2:3:4:5:6'],
    ] as const) {
      expect(formatIPv6(parseIPv6(text), 0)).toBe(canon);
    }
    expect(() => parseIPv6('2001:db8::1::2')).toThrow(CodecError);
  });
});
