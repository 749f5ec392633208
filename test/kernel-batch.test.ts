// mptcp_pm writes batched into one sendmsg (NamespaceKernel.runBatch) against the
// real kernel, iproute2 as the oracle: per-request results in order, each error
// with the kernel's own errno and extack, the rest applied.
import { describe, expect, it } from 'vitest';
import { KernelError, type KernelWrite, type KernelWriteResult } from '../src/kernel/api.js';
import { lib } from '../src/kernel/libc.js';
import { MAX_BATCH, queueWrite, queueWrites, resolveMptcpFamily } from '../src/kernel/mptcp-pm.js';
import { closeAllNamespaces, openNamespace } from '../src/kernel/namespace.js';
import { withNetns } from '../src/kernel/netns.js';
import { NETLINK_GENERIC, type NlRequest, NlSocket, NlWriter } from '../src/kernel/nlsock.js';
import { ip, ipEndpoints, ipLimits, namespacesFor } from './helpers/netns.js';

const ns = namespacesFor('kbt', closeAllNamespaces);
const hex = (s: string) => Buffer.from(s.replace(/[\s|]/g, ''), 'hex').toString('hex');
const add = (address: string, flags: ('subflow' | 'signal' | 'backup')[] = ['subflow'], id?: number): KernelWrite => ({
  op: 'add',
  endpoint: { address, flags, ...(id !== undefined && { id }) },
});
const errorOf = (r: KernelWriteResult | undefined): KernelError => {
  if (!r || r.ok) throw new Error(`expected an error, got ${JSON.stringify(r)}`);
  return r.error;
};
const shown = (n: string) => ipEndpoints(n).map((e) => `${e.id} ${e.address} ${['signal', 'subflow', 'backup'].filter((f) => e[f as 'signal']).join(',')}`);

describe('a batch buffer', () => {
  it('holds the requests back to back, each with its own sequence number; only the last asks for an ack (golden bytes)', () => {
    const w = new NlWriter();
    const fam = { id: 28, version: 1, groups: {} };
    const { reqs, index } = queueWrites(w, fam, [{ op: 'set-limits', limits: { subflows: 8, addAddrAccepted: 8 } }, add('192.0.2.1', ['subflow'])], 'x', () => {
      throw new Error('nothing is refused here');
    });
    const [a, b] = reqs as [NlRequest, NlRequest];
    expect(index).toEqual([0, 1]);
    expect(b.seq).toBe(a.seq + 1);
    expect([a.ackless, b.ackless]).toEqual([true, undefined]);
    const seq = (n: number) => {
      const s = Buffer.alloc(4);
      s.writeUInt32LE(n);
      return s.toString('hex');
    };
    expect(w.bytesWritten().toString('hex')).toBe(
      hex(
        // SET_LIMITS (5), REQUEST only, genl cmd 5 v1, RCV_ADD_ADDRS 8, SUBFLOWS 8
        `2400 0000 1c00 0100 ${seq(a.seq)} 0000 0000 | 05 01 0000 | 0800 0200 08000000 | 0800 0300 08000000 |` +
          // ADD_ADDR (1), REQUEST|ACK: ADDR nest { FAMILY 2, ADDR4 192.0.2.1, FLAGS subflow }
          `3000 0000 1c00 0500 ${seq(b.seq)} 0000 0000 | 01 01 0000 | 1c00 0180 | 0600 0100 0200 0000 | 0800 0300 c0000201 | 0800 0600 02000000`,
      ),
    );
  });
});

describe('runBatch on the kernel', () => {
  it('a duplicate in the middle fails alone with EEXIST and the kernel extack; the others apply in order', async () => {
    const n = ns();
    const k = openNamespace(n);
    const r = await k.runBatch([add('192.0.2.1'), add('198.51.100.1', ['signal']), add('192.0.2.1', ['signal']), add('203.0.113.1')]);
    expect(r.map((x) => x.ok)).toEqual([true, true, false, true]);
    const e = errorOf(r[2]);
    expect(e).toBeInstanceOf(KernelError);
    expect(e).toMatchObject({ op: 'ADD_ADDR 192.0.2.1', netns: n, errno: 17, code: 'EEXIST', extack: 'too many addresses or duplicate one: -17', retryable: false });
    // Ids handed out in request order: the kernel ran them one after another.
    expect(shown(n)).toEqual(['1 192.0.2.1 subflow', '2 198.51.100.1 signal', '3 203.0.113.1 subflow']);
  });

  it('a 9th endpoint fails with ERANGE; the limits after it in the same batch are still set', async () => {
    const n = ns();
    const k = openNamespace(n);
    const eight = Array.from({ length: 8 }, (_, i) => add(`192.0.2.${i + 1}`));
    const r = await k.runBatch([...eight, add('198.51.100.9'), { op: 'set-limits', limits: { subflows: 7, addAddrAccepted: 3 } }]);
    expect(r.map((x) => x.ok)).toEqual([...eight.map(() => true), false, true]);
    expect(errorOf(r[8])).toMatchObject({ code: 'ERANGE', errno: 34, extack: 'too many addresses or duplicate one: -34' });
    expect(ipEndpoints(n).map((e) => e.address)).toEqual(eight.map((w) => (w as { endpoint: { address: string } }).endpoint.address));
    expect(ipLimits(n)).toEqual({ subflows: 7, addAddrAccepted: 3 });
  });

  it('a replace inside one batch: the delete runs before the add that needs its address and id', async () => {
    const n = ns();
    ip('-n', n, 'mptcp', 'endpoint', 'add', '192.0.2.5', 'id', '5', 'subflow');
    ip('-n', n, 'mptcp', 'endpoint', 'add', '198.51.100.6', 'id', '6', 'signal');
    const k = openNamespace(n);
    const r = await k.runBatch([
      { op: 'delete', id: 5 },
      add('192.0.2.5', ['signal', 'backup'], 5),
      { op: 'set-flags', id: 6, backup: true, fullmesh: false },
    ]);
    expect(r).toEqual([{ ok: true }, { ok: true }, { ok: true }]);
    expect(shown(n)).toEqual(['5 192.0.2.5 signal,backup', '6 198.51.100.6 signal,backup']);
  });

  it('writes answered only on failure: a failing last write still settles the ones before it as applied', async () => {
    const n = ns();
    const k = openNamespace(n);
    const r = await k.runBatch([add('192.0.2.1'), add('192.0.2.2'), { op: 'set-limits', limits: { subflows: 9 } }]);
    expect(r.slice(0, 2)).toEqual([{ ok: true }, { ok: true }]);
    expect(errorOf(r[2])).toMatchObject({ code: 'EINVAL', extack: 'limit greater than maximum (8)' });
    expect(ipEndpoints(n).map((e) => e.address)).toEqual(['192.0.2.1', '192.0.2.2']);
    expect(ipLimits(n).subflows).toBe(2);
  });

  it('a write refused before sending (DEL_ADDR id 0) gets its error; the rest of the batch goes', async () => {
    const n = ns();
    const k = openNamespace(n);
    const r = await k.runBatch([add('192.0.2.1'), { op: 'delete', id: 0 }, add('192.0.2.2')]);
    expect(r.map((x) => x.ok)).toEqual([true, false, true]);
    expect(errorOf(r[1])).toMatchObject({ op: 'DEL_ADDR id 0', code: 'EINVAL', extack: expect.stringMatching(/deleted by its id/) });
    expect(ipEndpoints(n).map((e) => e.address)).toEqual(['192.0.2.1', '192.0.2.2']);
  });

  it(`more than ${MAX_BATCH} writes: every one answered, in order (one sendmsg per ${MAX_BATCH})`, async () => {
    const n = ns();
    ip('-n', n, 'mptcp', 'endpoint', 'add', '192.0.2.200', 'id', '200', 'subflow');
    const k = openNamespace(n);
    // 255 deletes: id 200 exists, the others fail with the kernel's "address not found".
    const r = await k.runBatch(Array.from({ length: 255 }, (_, i) => ({ op: 'delete' as const, id: i + 1 })));
    expect(r).toHaveLength(255);
    r.forEach((x, i) => {
      if (i + 1 === 200) expect(x).toEqual({ ok: true });
      else expect(errorOf(x)).toMatchObject({ op: `DEL_ADDR id ${i + 1}`, code: 'EINVAL', extack: 'address not found' });
    });
    expect(ipEndpoints(n)).toEqual([]);
  });
});

describe('acks lost to a full receive queue', () => {
  it('requests whose ack was dropped get ENOBUFS; those answered keep their own result', () => {
    const n = ns();
    const sock = withNetns(n, () => new NlSocket(NETLINK_GENERIC, n));
    try {
      const fam = resolveMptcpFamily(sock);
      // The smallest receive buffer the kernel allows (~4.5 KiB) holds a few acks, not 64.
      const size = Buffer.alloc(4);
      size.writeInt32LE(1);
      expect(lib().setsockopt(sock.fd, 1 /* SOL_SOCKET */, 8 /* SO_RCVBUF */, size, 4)).toBe(0);
      const w = new NlWriter();
      const reqs: NlRequest[] = Array.from({ length: 64 }, (_, i) => queueWrite(w, fam, { op: 'delete', id: i + 1 }, n));
      sock.send(w, 'batch');
      sock.collect(reqs);
      const answered = reqs.filter((q) => q.error?.code === 'EINVAL');
      const lost = reqs.filter((q) => q.error?.code === 'ENOBUFS');
      expect(answered.length).toBeGreaterThan(0);
      expect(lost.length).toBeGreaterThan(0);
      expect(answered.length + lost.length).toBe(64);
      // The kernel queued the first answers and dropped the rest.
      expect(reqs.findIndex((q) => q.error?.code === 'ENOBUFS')).toBe(answered.length);
      expect(lost[0]!.error).toMatchObject({ retryable: true, extack: expect.stringMatching(/may or may not have been applied/) });
      // The socket still works afterwards.
      const after = queueWrite(w.reset(), fam, { op: 'set-limits', limits: { subflows: 4 } }, n);
      sock.send(w, after.op);
      sock.collect([after]);
      expect(after.error).toBeUndefined();
      expect(ipLimits(n).subflows).toBe(4);
    } finally {
      sock.close();
    }
  });
});
