// The raw input of one read, kept as bytes so that the next read can tell with
// one memcmp whether anything changed. A converged daemon re-reads every
// namespace each resync and nearly always finds the same bytes; decoding them
// into objects, planning and verifying again only to learn "nothing to do" was
// most of such a pass. Netlink replies are copied as received, except what
// differs between two identical reads: the sequence number and port id of each
// message. (A reply with counters or countdowns, such as an address's cache
// info, would never compare equal: zero those with defer's `scrub`.)
import type { LiveFingerprint } from './api.js';
import type { NlRequest } from './nlsock.js';

type Decode = NonNullable<NlRequest['onMessage']>;

/**
 * Collects one read's bytes. Section tags are below 16, the smallest netlink
 * message length, so a tag can never be taken for the start of a message.
 */
export class FingerprintBuilder {
  private buf = Buffer.alloc(4096);
  private len = 0;
  // Messages whose decoding waits until the bytes are known to have changed: the
  // first `count` entries of these arrays. They are overwritten, never emptied
  // (length = 0 frees the backing stores, and every read would grow them anew).
  private count = 0;
  private readonly offs: number[] = [];
  private readonly lens: number[] = [];
  private readonly types: number[] = [];
  private readonly decoders: Decode[] = [];

  reset(): this {
    this.len = 0;
    this.count = 0;
    return this;
  }

  private ensure(n: number): void {
    if (this.len + n <= this.buf.length) return;
    const next = Buffer.alloc(Math.max(this.buf.length * 2, this.len + n));
    this.buf.copy(next, 0, 0, this.len);
    this.buf = next;
  }

  u32(v: number): this {
    this.ensure(4);
    this.buf.writeUInt32LE(v >>> 0, this.len);
    this.len += 4;
    return this;
  }

  /** Length-prefixed, so that "a"+"bc" and "ab"+"c" differ. */
  str(s: string): this {
    // Sysctl values and interface names are short ASCII: copied a char at a time,
    // which costs less than the two native calls below (a resync writes several).
    if (s.length <= 64) {
      this.ensure(4 + s.length);
      const b = this.buf;
      let at = this.len + 4;
      let i = 0;
      for (; i < s.length; i++) {
        const c = s.charCodeAt(i);
        if (c > 0x7f) break;
        b[at++] = c;
      }
      if (i === s.length) {
        b.writeUInt32LE(s.length, this.len);
        this.len = at;
        return this;
      }
    }
    const n = Buffer.byteLength(s);
    this.u32(n);
    this.ensure(n);
    this.buf.write(s, this.len);
    this.len += n;
    return this;
  }

  /**
   * Makes `req` copy each reply message here instead of decoding it; decodeAll()
   * runs the original decoder on the copies. `scrub` clears volatile fields.
   */
  defer(req: NlRequest, scrub?: (buf: Buffer, off: number, len: number) => void): NlRequest {
    const decode = req.onMessage;
    if (!decode) return req;
    req.onMessage = (src, off, len, type) => {
      this.ensure(len);
      const at = this.len;
      src.copy(this.buf, at, off, off + len);
      // nlmsg_seq and nlmsg_pid: new for every request.
      this.buf.writeUInt32LE(0, at + 8);
      this.buf.writeUInt32LE(0, at + 12);
      scrub?.(this.buf, at, len);
      this.len += len;
      const i = this.count++;
      this.offs[i] = at;
      this.lens[i] = len;
      this.types[i] = type;
      this.decoders[i] = decode;
    };
    return req;
  }

  equals(fp: LiveFingerprint | undefined): boolean {
    if (!fp || fp.bytes.length !== this.len) return false;
    return this.buf.compare(fp.bytes, 0, fp.bytes.length, 0, this.len) === 0;
  }

  /** Runs the decoders of the deferred messages, in the order they arrived. */
  decodeAll(): void {
    for (let i = 0; i < this.count; i++) this.decoders[i]!(this.buf, this.offs[i]!, this.lens[i]!, this.types[i]!);
  }

  /** A copy that later reads of the same handle can be compared with. */
  snapshot(): LiveFingerprint {
    return { bytes: Buffer.from(this.buf.subarray(0, this.len)) };
  }
}
