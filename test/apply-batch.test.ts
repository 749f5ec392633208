// The apply engine's batched path (NamespaceKernel.runBatch) on the real kernel:
// which writes share a sendmsg, per-operation results and errors in the planner's
// order, dependencies and stop requests across batches. iproute2 is the oracle;
// "someone else" is iproute2 acting just before a batch goes out.
import { describe, expect, it } from 'vitest';
import { reconcileNamespace, type ReconcileOptions } from '../src/apply/reconcile.js';
import type { DesiredNamespace } from '../src/core/model.js';
import type { KernelWrite, NamespaceKernel } from '../src/kernel/api.js';
import { closeAllNamespaces, openNamespace } from '../src/kernel/namespace.js';
import { ip, ipEndpoints, ipLimits, namespacesFor, nsSysctl, veth } from './helpers/netns.js';

const ns = namespacesFor('abt', closeAllNamespaces);
const enforce: ReconcileOptions = { mode: 'enforce' };

function desired(netns: string, over: Partial<DesiredNamespace>): DesiredNamespace {
  return { netns, mptcp: {}, limits: {}, endpoints: undefined, rpFilter: {}, prune: true, conflicts: 'fail', ...over };
}

/** The real handle; `before` runs just before each batch is sent, and every batch is recorded. */
function spy(k: NamespaceKernel, before?: (writes: readonly KernelWrite[], call: number) => void) {
  const batches: string[][] = [];
  const kernel = new Proxy(k, {
    get(target, prop, recv) {
      if (prop === 'runBatch') {
        return async (writes: readonly KernelWrite[]) => {
          before?.(writes, batches.length);
          batches.push(writes.map((w) => (w.op === 'add' ? `add ${w.endpoint.address}` : w.op === 'set-limits' || w.op === 'flush' ? w.op : `${w.op} ${w.id}`)));
          return target.runBatch(writes);
        };
      }
      const v = Reflect.get(target, prop, recv) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
  return { kernel, batches };
}

type DesiredEndpoint = NonNullable<DesiredNamespace['endpoints']>[number];
const sub = (address: string, dev?: string): DesiredEndpoint => ({ address, flags: ['subflow'], ...(dev && { dev }) });

describe('a cold pass', () => {
  it('sends the limits and all endpoint adds in one batch, with dev resolved to its ifindex; rp_filter through /proc/sys', async () => {
    const n = ns();
    veth(n, 'v0', undefined, 'v1');
    const addrs = [1, 2, 3, 4].map((i) => `192.0.2.${i}`);
    for (const a of addrs) ip('-n', n, 'addr', 'add', `${a}/24`, 'dev', 'v0');
    const { kernel, batches } = spy(openNamespace(n));
    const r = await reconcileNamespace(
      kernel,
      desired(n, { limits: { subflows: 8, addAddrAccepted: 8 }, endpoints: addrs.map((a) => sub(a, 'v0')), rpFilter: { v0: 'loose', v1: 'loose' } }),
      enforce,
    );
    expect(r.converged).toBe(true);
    expect(r.operations.map((o) => `${o.op} ${o.result}`)).toEqual(['set-limits ok', ...addrs.map(() => 'add ok'), 'set-rp-filter ok', 'set-rp-filter ok']);
    expect(batches).toEqual([['set-limits', ...addrs.map((a) => `add ${a}`)]]);
    expect(ipEndpoints(n).map((e) => `${e.address} ${e.dev}`)).toEqual(addrs.map((a) => `${a} v0`));
    expect(ipLimits(n)).toEqual({ subflows: 8, addAddrAccepted: 8 });
    expect(nsSysctl(n, 'net.ipv4.conf.v1.rp_filter')).toBe('2');
  });
});

describe('a failing request in the middle of a batch', () => {
  it('a 9th endpoint: exactly that add fails with ERANGE and the kernel extack; the writes around it apply', async () => {
    const n = ns();
    const { kernel, batches } = spy(openNamespace(n), (_w, call) => {
      // Someone else fills the table to 6 between plan and apply: the planner's third add is the 9th.
      // (With ids of its own: the planner names the id of every add, and a clash there would be EBUSY.)
      if (call === 0) for (let i = 1; i <= 6; i++) ip('-n', n, 'mptcp', 'endpoint', 'add', `203.0.113.${i}`, 'id', String(100 + i), 'signal');
    });
    const r = await reconcileNamespace(
      kernel,
      desired(n, { limits: { subflows: 5 }, endpoints: [sub('192.0.2.1'), sub('192.0.2.2'), sub('192.0.2.3')], rpFilter: { lo: 'strict' } }),
      enforce,
    );
    expect(batches).toEqual([['set-limits', 'add 192.0.2.1', 'add 192.0.2.2', 'add 192.0.2.3']]);
    expect(r.operations.map((o) => `${o.op} ${o.result}`)).toEqual(['set-limits ok', 'add ok', 'add ok', 'add failed', 'set-rp-filter ok']);
    expect(r.operations[3]!.error).toMatch(/ADD_ADDR 192.0.2.3 id 3 in netns .*: ERANGE \(too many addresses or duplicate one: -34\)/);
    expect(r.errors).toEqual([
      expect.objectContaining({ op: 'ADD_ADDR 192.0.2.3 id 3', errno: 'ERANGE', extack: 'too many addresses or duplicate one: -34', retryable: false }),
    ]);
    expect(r.converged).toBe(false);
    expect(ipEndpoints(n).map((e) => e.address)).toEqual(['192.0.2.1', '192.0.2.2', ...[1, 2, 3, 4, 5, 6].map((i) => `203.0.113.${i}`)]);
    expect(ipLimits(n).subflows).toBe(5);
    expect(nsSysctl(n, 'net.ipv4.conf.lo.rp_filter')).toBe('1');
  });

  it('an add that lost a race (EEXIST) is noted on that operation alone, and the pass converges', async () => {
    const n = ns();
    const { kernel } = spy(openNamespace(n), (_w, call) => {
      if (call === 0) ip('-n', n, 'mptcp', 'endpoint', 'add', '192.0.2.2', 'id', '50', 'subflow');
    });
    const r = await reconcileNamespace(kernel, desired(n, { endpoints: [sub('192.0.2.1'), sub('192.0.2.2'), sub('192.0.2.3')] }), enforce);
    expect(r.converged).toBe(true);
    expect(r.errors).toEqual([]);
    expect(r.operations.map((o) => o.result)).toEqual(['ok', 'ok', 'ok']);
    expect(r.operations.map((o) => o.note)).toEqual([undefined, expect.stringMatching(/already as desired after: .*EEXIST/), undefined]);
    expect(ipEndpoints(n).map((e) => e.address).sort()).toEqual(['192.0.2.1', '192.0.2.2', '192.0.2.3']);
  });
});

describe('dependencies across batches', () => {
  it('the add half of a replace goes in a later batch, and is skipped when its delete failed', async () => {
    const n = ns();
    ip('-n', n, 'mptcp', 'endpoint', 'add', '192.0.2.63', 'id', '3', 'subflow');
    // An endpoint that stays: the delete goes as DEL_ADDR, not as a FLUSH of everything.
    ip('-n', n, 'mptcp', 'endpoint', 'add', '203.0.113.1', 'id', '40', 'subflow');
    const { kernel, batches } = spy(openNamespace(n), (_w, call) => {
      // Someone else re-creates the endpoint under another id: DEL_ADDR id 3 finds nothing, yet the address is still there.
      if (call === 0) {
        ip('-n', n, 'mptcp', 'endpoint', 'del', 'id', '3');
        ip('-n', n, 'mptcp', 'endpoint', 'add', '192.0.2.63', 'id', '9', 'subflow');
      }
    });
    const r = await reconcileNamespace(
      kernel,
      desired(n, { limits: { subflows: 4 }, endpoints: [sub('198.51.100.1'), { address: '192.0.2.63', flags: ['signal'] }, sub('203.0.113.1')] }),
      enforce,
    );
    // set-limits, the delete and the independent add share a batch; the dependent add never went out.
    expect(batches).toEqual([['set-limits', 'delete 3', 'add 198.51.100.1']]);
    expect(r.operations.map((o) => `${o.op} ${o.result}`)).toEqual(['set-limits ok', 'delete failed', 'add ok', 'add skipped']);
    expect(r.operations[3]!.error).toMatch(/depends on operation 2 \(delete 192.0.2.63 id 3\)/);
    expect(r.errors).toEqual([expect.objectContaining({ op: 'DEL_ADDR id 3', errno: 'EINVAL', extack: 'address not found' })]);
    expect(ipEndpoints(n).map((e) => `${e.address} ${e.subflow ? 'subflow' : 'signal'}`).sort()).toEqual(['192.0.2.63 subflow', '198.51.100.1 subflow', '203.0.113.1 subflow']);
    expect(ipLimits(n).subflows).toBe(4);
  });

  it('a replace applies across two batches; a stop request during the first still finishes the add half, nothing after', async () => {
    const n = ns();
    ip('-n', n, 'mptcp', 'endpoint', 'add', '192.0.2.64', 'subflow');
    ip('-n', n, 'mptcp', 'endpoint', 'add', '203.0.113.1', 'subflow'); // stays: no FLUSH
    const stop = new AbortController();
    const { kernel, batches } = spy(openNamespace(n), () => stop.abort());
    const r = await reconcileNamespace(
      kernel,
      desired(n, { endpoints: [{ address: '192.0.2.64', flags: ['signal'] }, sub('203.0.113.1')], rpFilter: { lo: 'loose' } }),
      { mode: 'enforce', signal: stop.signal },
    );
    expect(batches).toEqual([['delete 1'], ['add 192.0.2.64']]);
    expect(r.operations.map((o) => `${o.op} ${o.result}`)).toEqual(['delete ok', 'add ok', 'set-rp-filter skipped']);
    expect(ipEndpoints(n).map((e) => [e.address, !!e.signal])).toEqual([['192.0.2.64', true], ['203.0.113.1', false]]);
    expect(nsSysctl(n, 'net.ipv4.conf.lo.rp_filter')).not.toBe('2');
  });
});
