// The daemon's loop with a fake apply engine and fake namespaces (real config
// loader, real files, real HTTP): readiness, stop semantics, retry backoff.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startDaemon, type Daemon, type DaemonDeps, type PassResult, type ReconcileCall } from '../src/daemon/daemon.js';
import { realDeps } from '../src/daemon/deps.js';
import type { NamespaceKernel } from '../src/kernel/api.js';
import { createLogger } from '../src/log.js';
import { eventually, metrics, metricValue, tempDir } from './helpers/daemon.js';

const cleanups: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function deferred() {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

function fakeWorld(names: string[], reconcile: (ns: string, o: ReconcileCall) => Promise<PassResult>): DaemonDeps {
  const t = tempDir('fakens');
  cleanups.push(t.cleanup);
  return realDeps({
    listNamespaces: () => ['host', ...names],
    netnsIdentity: (n) => (n === 'host' || names.includes(n) ? { dev: 1, ino: n.length } : undefined),
    openNamespace: (n) => ({ netns: n }) as NamespaceKernel,
    closeNamespace: () => {},
    openEvents: (n) => ({ netns: n, close() {} }),
    reconcile: (k, _d, o) => reconcile(k.netns, o),
    netnsDir: t.dir,
  });
}

function start(names: string[], reconcile: (ns: string, o: ReconcileCall) => Promise<PassResult>, resyncMs = 3_600_000): { d: Daemon; url: () => string } {
  const t = tempDir('loopcfg');
  cleanups.push(t.cleanup);
  const file = join(t.dir, 'c.yaml');
  writeFileSync(file, `version: 1\nnamespaces:\n  - netns: "fake-*"\n    limits: { subflows: 3 }\n`);
  const d = startDaemon({
    file,
    node: 'n',
    mode: 'enforce',
    resyncMs,
    listen: { host: '127.0.0.1', port: 0 },
    logger: createLogger({ level: 'fatal' }),
    deps: fakeWorld(names, reconcile),
    backoff: { initialMs: 30, maxMs: 30 },
  });
  cleanups.push(() => d.stop());
  return { d, url: () => `http://127.0.0.1:${d.address()!.port}` };
}

const ok = (ns: string, extra: Partial<PassResult> = {}): PassResult => ({
  netns: ns,
  operations: [],
  converged: true,
  pending: [],
  errors: [],
  applied: true,
  ...extra,
});

describe('daemon loop', () => {
  it('is healthy at once but ready only after the first pass over every namespace', async () => {
    const gate = deferred();
    const { d, url } = start(['fake-a', 'fake-b'], async (ns) => {
      if (ns === 'fake-b') await gate.promise;
      return ok(ns);
    });
    await eventually('listening', () => d.address());
    await eventually('fake-a passed', () => d.status().namespaces['fake-a']?.passes === 1);
    expect((await fetch(`${url()}/healthz`)).status).toBe(200);
    expect((await fetch(`${url()}/readyz`)).status).toBe(503);
    gate.resolve();
    await d.ready;
    expect((await fetch(`${url()}/readyz`)).status).toBe(200);
  });

  it('stop waits for the pass in flight, tells it to stop between operations, and starts no new one', async () => {
    const inFlight = deferred();
    const release = deferred();
    let passes = 0;
    let sawAbort: boolean | undefined;
    const { d } = start(['fake-a'], async (ns, o) => {
      passes++;
      inFlight.resolve();
      await release.promise;
      sawAbort = o.signal.aborted;
      return ok(ns);
    });
    await inFlight.promise;
    let stopped = false;
    const s = d.stop().then(() => (stopped = true));
    await new Promise((r) => setTimeout(r, 50));
    expect(stopped).toBe(false);
    release.resolve();
    await s;
    expect(sawAbort).toBe(true);
    expect(passes).toBe(1);
  });

  it('retries a retryable kernel error with backoff and reports it until it clears', async () => {
    let n = 0;
    const { d, url } = start(['fake-a'], async (ns) => {
      n++;
      if (n <= 2) return ok(ns, { converged: false, errors: [{ message: 'ADD_ADDR: EBUSY', errno: 'EBUSY', retryable: true }] });
      return ok(ns);
    });
    await d.ready;
    await eventually('recovered', () => n >= 3 && d.status().namespaces['fake-a']?.converged === true);
    const m = await metrics(url());
    expect(metricValue(m, 'mptcp_reconciler_passes_total', { result: 'error' })).toBe(2);
    expect(metricValue(m, 'mptcp_reconciler_converged', { netns: 'fake-a' })).toBe(1);
    expect(d.status().namespaces['fake-a']!.consecutiveFailures).toBe(0);
  });
});
