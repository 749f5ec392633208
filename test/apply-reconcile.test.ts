// reconcileNamespace / reconcileAll on the real kernel. Races with "someone else"
// are made real by running iproute2 inside a kernel call (the other writer wins
// between plan and apply); iproute2 is also the oracle.
import { afterAll, describe, expect, it } from 'vitest';
import { reconcileAll, reconcileNamespace, type ReconcileOptions } from '../src/apply/reconcile.js';
import type { DesiredNamespace } from '../src/core/model.js';
import { declaredScope, decide } from '../src/conflicts/index.js';
import { KernelError, type KernelWrite, type KernelWriteResult, type NamespaceKernel } from '../src/kernel/api.js';
import { closeNamespace, openNamespace } from '../src/kernel/namespace.js';
import { createNetns, deleteNetns, ip, ipEndpoints, ipLimits, nsSysctl, requireRoot, uniqueName } from './helpers/netns.js';

requireRoot();
const made: string[] = [];
afterAll(() => {
  for (const n of made) {
    closeNamespace(n);
    deleteNetns(n);
  }
});

function ns(): string {
  const n = createNetns('rc');
  made.push(n);
  return n;
}

function desired(netns: string, over: Partial<DesiredNamespace>): DesiredNamespace {
  return { netns, mptcp: {}, limits: {}, endpoints: undefined, rpFilter: {}, prune: true, conflicts: 'fail', ...over };
}

/**
 * The real handle; `hook` sees each mptcp_pm write just before its batch goes to
 * the kernel, and may answer it instead of the kernel (a forced error).
 */
function beforeWrites(k: NamespaceKernel, hook: (w: KernelWrite) => KernelWriteResult | void): NamespaceKernel {
  return new Proxy(k, {
    get(target, prop, recv) {
      if (prop === 'runBatch') {
        return async (writes: readonly KernelWrite[]) => {
          const forced = writes.map((w) => hook(w) ?? undefined);
          const answers = await target.runBatch(writes.filter((_, i) => forced[i] === undefined));
          let next = 0;
          return forced.map((f) => f ?? answers[next++]!);
        };
      }
      const v = Reflect.get(target, prop, recv) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

const enforce: ReconcileOptions = { mode: 'enforce' };

describe('reconcileNamespace', () => {
  it('an add that loses a race to an identical endpoint (EEXIST) is fine because verify converges', async () => {
    const a = ns();
    const real = openNamespace(a);
    const k = beforeWrites(real, (w) => {
      // The racer's own id: the planner names the id of every add, and a clash there would be EBUSY.
      if (w.op === 'add') ip('-n', a, 'mptcp', 'endpoint', 'add', w.endpoint.address, 'id', '50', ...w.endpoint.flags);
    });
    const r = await reconcileNamespace(k, desired(a, { endpoints: [{ address: '192.0.2.60', flags: ['signal'] }] }), enforce);
    expect(r.converged).toBe(true);
    expect(r.errors).toEqual([]);
    expect(r.operations[0]!.result).toBe('ok');
    expect(r.operations[0]!.note).toMatch(/EEXIST/);
    expect(ipEndpoints(a).map((e) => [e.address, e.signal])).toEqual([['192.0.2.60', true]]);
  });

  it('an add that loses a race to a different endpoint is a failure named by verify', async () => {
    const a = ns();
    const real = openNamespace(a);
    const k = beforeWrites(real, (w) => {
      if (w.op === 'add') ip('-n', a, 'mptcp', 'endpoint', 'add', w.endpoint.address, 'id', '50', 'subflow');
    });
    const r = await reconcileNamespace(k, desired(a, { endpoints: [{ address: '192.0.2.61', flags: ['signal'] }] }), enforce);
    expect(r.converged).toBe(false);
    expect(r.operations[0]!.result).toBe('failed');
    expect(r.errors[0]!.errno).toBe('EEXIST');
    expect(r.firstDifference).toMatch(/192\.0\.2\.61/);
  });

  it('a replace whose delete finds the endpoint already gone still adds it', async () => {
    const a = ns();
    ip('-n', a, 'mptcp', 'endpoint', 'add', '192.0.2.62', 'id', '9', 'subflow');
    ip('-n', a, 'mptcp', 'endpoint', 'add', '203.0.113.1', 'id', '40', 'subflow'); // stays: DEL_ADDR, no FLUSH
    const real = openNamespace(a);
    const k = beforeWrites(real, (w) => {
      if (w.op === 'delete') ip('-n', a, 'mptcp', 'endpoint', 'delete', 'id', String(w.id));
    });
    const r = await reconcileNamespace(k, desired(a, { endpoints: [{ address: '192.0.2.62', flags: ['signal'] }, { address: '203.0.113.1', flags: ['subflow'] }] }), enforce);
    expect(r.operations.map((o) => [o.op, o.result])).toEqual([
      ['delete', 'ok'],
      ['add', 'ok'],
    ]);
    expect(r.operations[0]!.note).toMatch(/already gone/);
    expect(r.converged).toBe(true);
    expect(ipEndpoints(a).map((e) => [e.address, !!e.signal, !!e.subflow])).toEqual([['192.0.2.62', true, false], ['203.0.113.1', false, true]]);
  });

  it('skips the add half of a replace whose delete failed, and keeps going with independent operations', async () => {
    const a = ns();
    ip('-n', a, 'mptcp', 'endpoint', 'add', '192.0.2.63', 'subflow');
    ip('-n', a, 'mptcp', 'endpoint', 'add', '203.0.113.1', 'id', '40', 'subflow'); // stays: DEL_ADDR, no FLUSH
    const real = openNamespace(a);
    const k = beforeWrites(real, (w) => {
      if (w.op === 'delete') return { ok: false, error: new KernelError({ op: 'DEL_ADDR id 1', netns: a, errno: 16, code: 'EBUSY', retryable: true }) };
    });
    const r = await reconcileNamespace(
      k,
      desired(a, { endpoints: [{ address: '192.0.2.63', flags: ['signal'] }, { address: '203.0.113.1', flags: ['subflow'] }], rpFilter: { lo: 'loose' } }),
      enforce,
    );
    const byOp = Object.fromEntries(r.operations.map((o) => [o.op, o]));
    expect(byOp.delete!.result).toBe('failed');
    expect(byOp.add!.result).toBe('skipped');
    expect(byOp.add!.error).toMatch(/depends on operation/);
    expect(byOp['set-rp-filter']!.result).toBe('ok');
    expect(nsSysctl(a, 'net.ipv4.conf.lo.rp_filter')).toBe('2');
    expect(r.errors.map((e) => e.errno)).toEqual(['EBUSY']);
    expect(r.converged).toBe(false);
    expect(ipEndpoints(a).map((e) => [e.address, !!e.subflow])).toEqual([['192.0.2.63', true], ['203.0.113.1', true]]);
  });

  it('a stop request during a replace finishes both halves and nothing after', async () => {
    const a = ns();
    ip('-n', a, 'mptcp', 'endpoint', 'add', '192.0.2.64', 'subflow');
    ip('-n', a, 'mptcp', 'endpoint', 'add', '203.0.113.1', 'id', '40', 'subflow'); // stays: DEL_ADDR, no FLUSH
    const stop = new AbortController();
    const real = openNamespace(a);
    const k = beforeWrites(real, (w) => {
      if (w.op === 'delete') stop.abort(); // SIGTERM arrives while the delete is in flight
    });
    const r = await reconcileNamespace(
      k,
      desired(a, { endpoints: [{ address: '192.0.2.64', flags: ['signal'] }, { address: '203.0.113.1', flags: ['subflow'] }], rpFilter: { lo: 'loose' } }),
      { mode: 'enforce', signal: stop.signal },
    );
    expect(r.operations.map((o) => [o.op, o.result])).toEqual([
      ['delete', 'ok'],
      ['add', 'ok'],
      ['set-rp-filter', 'skipped'],
    ]);
    expect(ipEndpoints(a).map((e) => [e.address, !!e.signal])).toEqual([['192.0.2.64', true], ['203.0.113.1', false]]);
    expect(nsSysctl(a, 'net.ipv4.conf.lo.rp_filter')).not.toBe('2');
  });

  it('observe mode plans and reports drift but writes nothing', async () => {
    const a = ns();
    const r = await reconcileNamespace(openNamespace(a), desired(a, { limits: { subflows: 7 } }), { mode: 'observe' });
    expect(r.operations.map((o) => o.op)).toEqual(['set-limits']);
    expect(r.applied).toBe(false);
    expect(r.converged).toBe(false);
    expect(r.firstDifference).toMatch(/subflows/);
    expect(ipLimits(a).subflows).toBe(2);
  });

  it('a blocking conflict changes nothing and names the manager, evidence and fix', async () => {
    const a = ns();
    const r = await reconcileNamespace(openNamespace(a), desired(a, { limits: { subflows: 7 } }), {
      mode: 'enforce',
      conflictGate: ({ netns, desired: d }) =>
        decide(
          d.conflicts,
          [{ manager: 'NetworkManager', kind: 'process', active: true, pid: 812, detail: 'adds endpoints', managesEndpoints: true, managesLimits: true, fix: 'set connection.mptcp-flags=disabled' }],
          undefined,
          { netns, scope: declaredScope(d) },
        ),
    });
    expect(r.converged).toBe(false);
    expect(r.operations[0]!.result).toBe('skipped');
    expect(r.errors[0]!.message).toMatch(/not changed \(conflicts: fail\).*NetworkManager \(pid 812\)[\s\S]*fix: set connection.mptcp-flags=disabled/);
    expect(r.conflicts.map((c) => c.manager)).toEqual(['NetworkManager']);
    expect(ipLimits(a).subflows).toBe(2);
  });
});

describe('reconcileAll', () => {
  it('one namespace failing or missing never stops another', async () => {
    const a = ns();
    const b = ns();
    const missing = uniqueName('gone');
    const results = await reconcileAll(
      [desired(a, { limits: { subflows: 5 } }), desired(missing, { limits: { subflows: 5 } }), desired(b, { limits: { subflows: 6 } })],
      {
        mode: 'enforce',
        existing: [a, b],
        openNamespace: (name) => {
          if (name === a) throw new KernelError({ op: 'open netns', netns: a, errno: 1, code: 'EPERM', retryable: false });
          return openNamespace(name);
        },
      },
    );
    expect(results.map((r) => [r.netns, r.converged])).toEqual([
      [a, false],
      [missing, false],
      [b, true],
    ]);
    expect(results[0]!.errors[0]).toMatchObject({ errno: 'EPERM', op: 'open netns' });
    expect(results[1]!.errors[0]!.message).toBe(`netns ${missing}: not found in /run/netns; will be configured when it appears`);
    expect(ipLimits(b).subflows).toBe(6);
    expect(ipLimits(a).subflows).toBe(2);
  });
});
