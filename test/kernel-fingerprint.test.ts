// The read fingerprint decides whether a resync re-plans: two reads that differ
// must never produce the same bytes, and two equal reads always must.
import { describe, expect, it } from 'vitest';
import { FingerprintBuilder } from '../src/kernel/fingerprint.js';

const fp = (...parts: (string | number)[]) => {
  const b = new FingerprintBuilder();
  for (const p of parts) {
    if (typeof p === 'number') b.u32(p);
    else b.str(p);
  }
  return b;
};

describe('read fingerprint', () => {
  it('tells strings apart by their boundaries, not only their bytes', () => {
    expect(fp('a', 'bc').equals(fp('ab', 'c').snapshot())).toBe(false);
    expect(fp('', 'abc').equals(fp('abc', '').snapshot())).toBe(false);
    expect(fp('kernel').equals(fp('kernel').snapshot())).toBe(true);
  });

  it('encodes ASCII, non-ASCII and long strings the same way whichever path writes them', () => {
    const long = 'x'.repeat(200);
    for (const s of ['veth0', 'strict', 'é', 'ab\u00ffc', long, `${long}é`]) {
      const b = fp(s).snapshot().bytes;
      const text = Buffer.from(s, 'utf8');
      expect(Buffer.from(b).readUInt32LE(0)).toBe(text.length);
      expect(Buffer.from(b.subarray(4)).equals(text)).toBe(true);
    }
    expect(fp('é').equals(fp('e').snapshot())).toBe(false);
  });

  it('grows past its first buffer without losing what came before', () => {
    const parts = Array.from({ length: 2000 }, (_, i) => `value-${i}`);
    const a = fp(...parts);
    const b = fp(...parts);
    expect(a.equals(b.snapshot())).toBe(true);
    parts[1999] = 'value-x';
    expect(fp(...parts).equals(a.snapshot())).toBe(false);
  });
});
