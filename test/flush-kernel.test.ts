// Removing every endpoint with one FLUSH_ADDRS, on the real kernel, checked with
// ip(8) and nstat(8): the kernel's id counter restarts (the next `ip mptcp
// endpoint add` gets id 1), and a peer with a live connection receives no RM_ADDR,
// where deleting the same endpoint one by one sends it one.
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { executeOperations } from '../src/apply/executor.js';
import { reconcileNamespace, type ReconcileOptions } from '../src/apply/reconcile.js';
import type { DesiredNamespace } from '../src/core/model.js';
import { planNamespace } from '../src/core/plan.js';
import { main } from '../src/cli/main.js';
import { captureIO } from './helpers/io.js';
import { KernelError, type KernelWrite, type KernelWriteResult, type NamespaceKernel } from '../src/kernel/api.js';
import { closeAllNamespaces, openNamespace } from '../src/kernel/namespace.js';
import { killPeers, mptcpClient, mptcpServer, waitFor } from './helpers/mptcp-peer.js';
import { ip, ipEndpoints, namespacesFor, sh, veth } from './helpers/netns.js';

const ns = namespacesFor('y16', () => closeAllNamespaces());
const procs: ChildProcess[] = [];
const dir = mkdtempSync(join(tmpdir(), 'mr-flush-'));
afterAll(() => {
  killPeers(procs);
  rmSync(dir, { recursive: true, force: true });
});

const enforce: ReconcileOptions = { mode: 'enforce', signal: new AbortController().signal };
type DesiredEndpoint = NonNullable<DesiredNamespace['endpoints']>[number];
const sub = (address: string, dev: string): DesiredEndpoint => ({ address, dev, flags: ['subflow'] });
function desired(netns: string, endpoints: DesiredEndpoint[]): DesiredNamespace {
  return { netns, mptcp: {}, limits: {}, endpoints, rpFilter: {}, prune: true, conflicts: 'fail' };
}

/** One MPTCP counter of a namespace, absolute, read without touching nstat's history. */
function counter(netns: string, name: string): number {
  const out = sh('ip', ['netns', 'exec', netns, 'nstat', '-saz', name]);
  const m = new RegExp(`^${name}\\s+(\\d+)`, 'm').exec(out);
  if (!m) throw new Error(`nstat in ${netns} printed no ${name}:\n${out}`);
  return Number(m[1]);
}

/**
 * A client namespace with two subflow endpoints (192.0.2.3 and .4) that joined a
 * live connection to the server at 192.0.2.1; returns both namespace names.
 */
async function joinedConnection(): Promise<{ s: string; c: string }> {
  const s = ns();
  const c = ns();
  veth(s, 'v0', c, 'v1');
  ip('-n', s, 'link', 'set', 'v0', 'up');
  ip('-n', c, 'link', 'set', 'v1', 'up');
  ip('-n', s, 'addr', 'add', '192.0.2.1/24', 'dev', 'v0');
  for (const a of ['192.0.2.2', '192.0.2.3', '192.0.2.4']) ip('-n', c, 'addr', 'add', `${a}/24`, 'dev', 'v1', 'nodad');
  ip('-n', s, 'mptcp', 'limits', 'set', 'subflows', '4', 'add_addr_accepted', '0');
  ip('-n', c, 'mptcp', 'limits', 'set', 'subflows', '4', 'add_addr_accepted', '0');
  ip('-n', c, 'mptcp', 'endpoint', 'add', '192.0.2.3', 'dev', 'v1', 'subflow');
  ip('-n', c, 'mptcp', 'endpoint', 'add', '192.0.2.4', 'dev', 'v1', 'subflow');
  await mptcpServer(s, '192.0.2.1', 8080, 1, procs);
  await mptcpClient(c, '192.0.2.1', 8080, procs);
  // Both endpoints' subflows joined: the server saw two MP_JOIN SYNs.
  await waitFor('two joined subflows', () => (counter(s, 'MPTcpExtMPJoinSynRx') >= 2 ? true : undefined));
  return { s, c };
}

describe('removing every endpoint', () => {
  it('is one FLUSH_ADDRS: the next endpoint ip adds gets id 1, the plan still lists a delete per endpoint', async () => {
    const n = ns();
    for (const a of ['192.0.2.1', '192.0.2.2', '192.0.2.3']) ip('-n', n, 'mptcp', 'endpoint', 'add', a, 'subflow');
    expect(ipEndpoints(n).map((e) => e.id)).toEqual([1, 2, 3]);
    // plan says so in both outputs; the JSON keeps `op: delete`.
    const file = join(dir, 'empty.yaml');
    writeFileSync(file, `version: 1\nnamespaces:\n  - netns: ${n}\n    endpoints: []\n`);
    const text = captureIO({ env: { NODE_NAME: 'y16-node' }, cwd: dir });
    expect(await main(['plan', '-f', file], text.io)).toBe(0);
    expect(text.out().match(/delete endpoint id \d \(192\.0\.2\.\d\), flushed together/g)).toHaveLength(3);
    const json = captureIO({ env: { NODE_NAME: 'y16-node' }, cwd: dir });
    expect(await main(['plan', '-f', file, '-o', 'json'], json.io)).toBe(0);
    const doc = JSON.parse(json.out()) as { namespaces: { operations: { op: string; via?: string }[] }[] };
    expect(doc.namespaces[0]!.operations.map((o) => [o.op, o.via])).toEqual([
      ['delete', 'flush'],
      ['delete', 'flush'],
      ['delete', 'flush'],
    ]);
    const r = await reconcileNamespace(openNamespace(n), desired(n, []), enforce);
    expect(r.converged).toBe(true);
    expect(r.operations.map((o) => [o.op, o.op === 'delete' && o.via, o.result])).toEqual([
      ['delete', 'flush', 'ok'],
      ['delete', 'flush', 'ok'],
      ['delete', 'flush', 'ok'],
    ]);
    expect(ipEndpoints(n)).toEqual([]);
    // One DEL_ADDR per endpoint would leave the counter at 3 and give id 4 here.
    ip('-n', n, 'mptcp', 'endpoint', 'add', '198.51.100.1', 'subflow');
    expect(ipEndpoints(n).map((e) => [e.address, e.id])).toEqual([['198.51.100.1', 1]]);
  });

  it('while a connection uses them sends the peer no RM_ADDR; deleting one endpoint by itself sends one', async () => {
    const one = await joinedConnection();
    const all = await joinedConnection();
    expect(counter(one.s, 'MPTcpExtRmAddr')).toBe(0);
    expect(counter(all.s, 'MPTcpExtRmAddr')).toBe(0);

    // Keeping 192.0.2.4 deletes 192.0.2.3 alone: one DEL_ADDR.
    const r1 = await reconcileNamespace(openNamespace(one.c), desired(one.c, [sub('192.0.2.4', 'v1')]), enforce);
    expect(r1.operations.map((o) => [o.op, o.op === 'delete' ? o.via : undefined])).toEqual([['delete', undefined]]);
    const r2 = await reconcileNamespace(openNamespace(all.c), desired(all.c, []), enforce);
    expect(r2.operations.map((o) => [o.op, o.op === 'delete' ? o.via : undefined])).toEqual([
      ['delete', 'flush'],
      ['delete', 'flush'],
    ]);
    expect(r1.converged && r2.converged).toBe(true);
    expect(ipEndpoints(all.c)).toEqual([]);

    await waitFor('the RM_ADDR of the single delete', () => (counter(one.s, 'MPTcpExtRmAddr') >= 1 ? true : undefined));
    // The subflows of the flushed endpoints are closed (the server sees them go)...
    await waitFor('the flushed subflows to close', () => {
      const joins = sh('ip', ['netns', 'exec', all.c, 'ss', '-Htn', 'state', 'established', 'src', '192.0.2.3']);
      return joins.trim() === '' ? true : undefined;
    });
    // ...and, read after the RM_ADDR above already arrived, none was sent for them.
    expect(counter(all.s, 'MPTcpExtRmAddr')).toBe(0);
  });

  it('a failed FLUSH is reported on each delete as one error, the adds after it are not run, nothing changes', async () => {
    const n = ns();
    for (const a of ['192.0.2.1', '192.0.2.2']) ip('-n', n, 'mptcp', 'endpoint', 'add', a, 'subflow');
    const before = ipEndpoints(n);
    // The real handle, with the kernel's answer to FLUSH_ADDRS replaced by a refusal.
    const sent: string[] = [];
    const refuse = (w: KernelWrite): KernelWriteResult | undefined =>
      w.op === 'flush' ? { ok: false, error: new KernelError({ op: 'FLUSH_ADDRS', netns: n, errno: 1, code: 'EPERM', retryable: false }) } : undefined;
    const k = new Proxy(openNamespace(n), {
      get(target, prop, recv) {
        if (prop === 'runBatch') {
          return async (writes: readonly KernelWrite[]) => {
            sent.push(...writes.map((w) => w.op));
            const forced = writes.map(refuse);
            const answers = await target.runBatch(writes.filter((_, i) => forced[i] === undefined));
            let next = 0;
            return forced.map((f) => f ?? answers[next++]!);
          };
        }
        const v = Reflect.get(target, prop, recv) as unknown;
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    }) as NamespaceKernel;
    // 192.0.2.2 becomes a signal endpoint: its add depends on the FLUSH.
    const r = await reconcileNamespace(k, desired(n, [{ address: '192.0.2.2', flags: ['signal'] }]), enforce);
    expect(sent).toEqual(['flush']);
    expect(r.operations.map((o) => [o.op, o.result])).toEqual([
      ['delete', 'failed'],
      ['delete', 'failed'],
      ['add', 'skipped'],
    ]);
    expect(r.operations.slice(0, 2).every((o) => o.error === `FLUSH_ADDRS in netns ${n}: EPERM`)).toBe(true);
    expect(r.errors.map((e) => e.message)).toEqual([`FLUSH_ADDRS in netns ${n}: EPERM`]);
    expect(r.converged).toBe(false);
    expect(ipEndpoints(n)).toEqual(before);
  });

  it('a plan whose deletes no longer cover every endpoint read goes one DEL_ADDR at a time', async () => {
    const n = ns();
    for (const a of ['192.0.2.1', '192.0.2.2']) ip('-n', n, 'mptcp', 'endpoint', 'add', a, 'subflow');
    const k = openNamespace(n);
    const live = await k.readLive();
    const ops = planNamespace(desired(n, []), live).operations;
    // Only the first delete is run (a list cut short): a FLUSH would take both.
    const done = await executeOperations(k, ops.slice(0, 1), live);
    expect(done.results.map((o) => o.result)).toEqual(['ok']);
    expect(ipEndpoints(n).map((e) => e.address)).toEqual(['192.0.2.2']);
  });
});
