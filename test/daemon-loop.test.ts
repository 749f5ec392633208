// The daemon's loop with a fake apply engine and fake namespaces (real config
// loader, real files, real HTTP): readiness, stop semantics, retry backoff.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { serveDaemon } from '../src/cli/commands/watch.js';
import { startDaemon, type Daemon, type DaemonDeps, type PassResult, type ReconcileCall } from '../src/daemon/daemon.js';
import { KernelError } from '../src/kernel/api.js';
import { realDeps } from '../src/daemon/deps.js';
import type { NamespaceKernel } from '../src/kernel/api.js';
import { createLogger } from '../src/log.js';
import { eventually, metrics, metricValue, tempDir } from './helpers/daemon.js';
import { parseStrictJson } from './helpers/strict-json.js';

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

function start(
  names: string[],
  reconcile: (ns: string, o: ReconcileCall) => Promise<PassResult>,
  resyncMs = 3_600_000,
  over: Partial<DaemonDeps> = {},
): { d: Daemon; url: () => string; lines: () => Record<string, unknown>[] } {
  const t = tempDir('loopcfg');
  cleanups.push(t.cleanup);
  const file = join(t.dir, 'c.yaml');
  writeFileSync(file, `version: 1\nnamespaces:\n  - netns: "fake-*"\n    limits: { subflows: 3 }\n`);
  const raw: string[] = [];
  const logger = createLogger({ level: 'info', destination: { write: (s: string) => void raw.push(s) } });
  const d = startDaemon({
    file,
    node: 'n',
    mode: 'enforce',
    resyncMs,
    logger,
    deps: { ...fakeWorld(names, reconcile), ...over },
    backoff: { initialMs: 30, maxMs: 30 },
  });
  let port: number | undefined;
  void serveDaemon(d, { host: '127.0.0.1', port: 0 }, logger).then((a) => (port = a.port));
  cleanups.push(() => d.stop());
  return {
    d,
    url: () => `http://127.0.0.1:${port}`,
    lines: () => raw.join('').split('\n').filter(Boolean).map((l) => parseStrictJson(l) as Record<string, unknown>),
  };
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
    await eventually('listening', async () => (await fetch(`${url()}/healthz`).catch(() => undefined))?.status === 200);
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

  it('reports the hash the loader computed from the bytes it parsed, when it gives one', async () => {
    const { d } = start(['fake-a'], async (ns) => ok(ns), 3_600_000, {
      loadConfig: async (path, node) => {
        const r = await realDeps().loadConfig(path, node);
        // A made-up sha256 that no re-read of the files could give.
        return r.ok ? { ...r, hash: 'ab'.repeat(32) } : r;
      },
    });
    await d.ready;
    expect(d.status().config.hash).toBe('ab'.repeat(6));
    await d.reload('SIGHUP');
    expect(d.status().config).toMatchObject({ hash: 'ab'.repeat(6), generation: 1 });
  });

  it('logs an expected kernel error as one line without a stack, and a bug with its stack; every line is strict JSON', async () => {
    let n = 0;
    const { d, lines } = start(['fake-a', 'fake-b'], async (ns) => {
      if (ns === 'fake-a' && n++ === 0) throw new KernelError({ op: 'open netns', netns: ns, errno: 2, code: 'ENOENT', extack: 'no such namespace in /run/netns', retryable: false });
      if (ns === 'fake-b' && n++ < 3) throw new TypeError('a bug');
      return ok(ns);
    });
    await d.ready;
    await eventually('both converged', () => d.status().namespaces['fake-a']?.converged && d.status().namespaces['fake-b']?.converged);
    const failed = lines().filter((l) => l.msg === 'pass failed');
    const a = failed.find((l) => l.netns === 'fake-a')!;
    expect(a).toMatchObject({ errno: 'ENOENT', op: 'open netns' });
    expect(typeof a.err).toBe('string');
    const b = failed.find((l) => l.netns === 'fake-b')!;
    expect((b.err as { stack?: string }).stack).toMatch(/TypeError: a bug/);
  });
});
