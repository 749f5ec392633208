// Test-only helpers for the watch daemon: an in-process daemon bound to a random
// port with its log lines captured, a bounded poll, and a small parser of the
// Prometheus text exposition format.
import { mkdtempSync, rmSync, writeFileSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDaemon, type Daemon, type DaemonOptions } from '../../src/daemon/daemon.js';
import { realDeps } from '../../src/daemon/deps.js';
import { serveDaemon } from '../../src/cli/commands/watch.js';
import { createLogger } from '../../src/log.js';
import { createNetns, deleteNetns } from './netns.js';
import { parseStrictJson } from './strict-json.js';

export interface TestDaemon {
  daemon: Daemon;
  url: string;
  lines: () => Record<string, unknown>[];
}

export async function startTestDaemon(file: string, o: Partial<DaemonOptions> = {}): Promise<TestDaemon> {
  const raw: string[] = [];
  const logger = createLogger({ level: 'debug', destination: { write: (s: string) => void raw.push(s) } });
  const daemon = startDaemon({
    file,
    node: 'test-node',
    mode: 'enforce',
    resyncMs: 60_000,
    logger,
    deps: realDeps(),
    debounceMs: 20,
    ...o,
  });
  const listening = serveDaemon(daemon, { host: '127.0.0.1', port: 0 }, logger);
  await daemon.ready;
  const a = await listening;
  return {
    daemon,
    url: `http://127.0.0.1:${a.port}`,
    // Every line must be strict JSON: a key twice in a line breaks strict consumers.
    lines: () => raw.join('').split('\n').filter(Boolean).map((l) => parseStrictJson(l) as Record<string, unknown>),
  };
}

export { eventually } from './wait.js';

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses the Prometheus text format (0.0.4): comments skipped, labels unescaped. */
export function parseMetrics(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$/.exec(line);
    if (!m) throw new Error(`bad exposition line: ${line}`);
    const labels: Record<string, string> = {};
    if (m[2]) {
      for (const l of m[2].matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
        labels[l[1]!] = l[2]!.replace(/\\n/g, '\n').replace(/\\"/g, '"').replace(/\\\\/g, '\\');
      }
    }
    const v = m[3]!;
    out.push({ name: m[1]!, labels, value: v === '+Inf' ? Infinity : v === '-Inf' ? -Infinity : Number(v) });
  }
  return out;
}

export async function metrics(url: string): Promise<Sample[]> {
  const r = await fetch(`${url}/metrics`);
  if (r.status !== 200) throw new Error(`/metrics: HTTP ${r.status}`);
  return parseMetrics(await r.text());
}

export function metricValue(samples: Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  const s = samples.find((x) => x.name === name && Object.entries(labels).every(([k, v]) => x.labels[k] === v));
  return s?.value;
}

export function tempDir(prefix: string): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), `mr-${prefix}-`));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** An editor's atomic save: write a temp file next to it, then rename over. */
export function atomicWrite(path: string, text: string): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, text);
  renameSync(tmp, path);
}

/**
 * What one daemon test file makes (namespaces, temp config files, running
 * daemons), so each file only says when to undo it: stopDaemons() after each
 * test, cleanup() after all.
 */
export function daemonTestScope(prefix: string) {
  const namespaces: string[] = [];
  const cleanups: (() => void)[] = [];
  const running: TestDaemon[] = [];
  const scope = {
    /** A fresh namespace with lo up, deleted by cleanup(). */
    netns(p = prefix): string {
      return scope.track(createNetns(p));
    },
    /** A namespace made some other way, deleted by cleanup() too. */
    track(name: string): string {
      namespaces.push(name);
      return name;
    },
    onCleanup(fn: () => void): void {
      cleanups.push(fn);
    },
    /** `text` written to mptcp.yaml in a fresh temp dir. */
    configFile(text: string): string {
      const t = tempDir(prefix);
      cleanups.push(t.cleanup);
      const f = join(t.dir, 'mptcp.yaml');
      writeFileSync(f, text);
      return f;
    },
    async start(file: string, o: Partial<DaemonOptions> = {}): Promise<TestDaemon> {
      const d = await startTestDaemon(file, o);
      running.push(d);
      return d;
    },
    async stopDaemons(): Promise<void> {
      await Promise.all(running.splice(0).map((d) => d.daemon.stop()));
    },
    namespaces(): readonly string[] {
      return namespaces;
    },
    cleanup(): void {
      for (const n of namespaces.splice(0)) deleteNetns(n);
      for (const c of cleanups.splice(0)) c();
    },
  };
  return scope;
}
