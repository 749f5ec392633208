// The watch daemon as the bench runs it: the built binary with the NODE_OPTIONS of
// the systemd unit, and what /proc and its /metrics say about it.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { createWriteStream, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
// dist/bench/*.js -> repo root is two levels up.
export const ROOT = resolve(here, '..', '..');
export const BIN = join(ROOT, 'dist', 'src', 'cli', 'bin.js');
/** What users run for one-shot commands (the package bin): it starts from the V8 start-up snapshot when one fits. */
export const LAUNCHER = join(ROOT, 'bin', 'mptcp-reconciler');

/** The daemon runs with the NODE_OPTIONS of the systemd unit (the image sets the same; a test keeps them equal). */
export const DAEMON_NODE_OPTIONS = ((): string => {
  const unit = join(ROOT, 'deploy', 'systemd', 'mptcp-reconciler.service');
  const m = /^Environment="NODE_OPTIONS=([^"]*)"$/m.exec(readFileSync(unit, 'utf8'));
  if (!m) throw new Error(`${unit}: no Environment="NODE_OPTIONS=..." line`);
  return m[1]!;
})();

export const now = (): number => Number(process.hrtime.bigint()) / 1e6;
export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => (typeof a === 'object' && a ? res(a.port) : rej(new Error('no port'))));
    });
  });
}

export function procStatus(pid: number): { rssMb: number; hwmMb: number; anonMb: number; fileMb: number } {
  const s = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(s)?.[1] ?? NaN);
  return { rssMb: kb('VmRSS') / 1024, hwmMb: kb('VmHWM') / 1024, anonMb: kb('RssAnon') / 1024, fileMb: kb('RssFile') / 1024 };
}

const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

/** utime + stime of a process, in seconds. */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the ")" of comm: state is field 3, utime 14, stime 15.
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / CLK_TCK;
}

export async function metricsText(port: number): Promise<string> {
  return (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
}

export function passesIn(text: string): number {
  let sum = 0;
  for (const m of text.matchAll(/^mptcp_reconciler_passes_total\{[^}]*\} (\d+)/gm)) sum += Number(m[1]);
  return sum;
}

/** V8's used heap (all spaces) per prom-client's default metrics, in MB. */
export function heapUsedMb(text: string): number {
  const m = /^nodejs_heap_size_used_bytes (\d+(?:\.\d+)?)/m.exec(text);
  return m ? Number(m[1]) / 1048576 : NaN;
}

export interface DaemonProc {
  child: ChildProcess;
  port: number;
  /** ms from spawn until /readyz answered 200. */
  readyMs: number;
  exited(): string | undefined;
  fail(what: string): Error;
  stop(): Promise<void>;
}

/** Spawns `watch` on `cfg` and waits for /readyz 200 (polled every 10 ms). */
export async function startDaemon(cfg: string, logPath: string, resyncMs: number, setChild: (c: ChildProcess | undefined) => void): Promise<DaemonProc> {
  const port = await freePort();
  const out = createWriteStream(logPath);
  const t0 = now();
  const child = spawn(
    process.execPath,
    [BIN, 'watch', '-f', cfg, '--listen', `127.0.0.1:${port}`, '--resync', `${resyncMs}ms`, '--log-level', 'warn', '--node', 'bench'],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NODE_OPTIONS: DAEMON_NODE_OPTIONS } },
  );
  setChild(child);
  child.stdout!.pipe(out);
  child.stderr!.pipe(out);
  let exited: string | undefined;
  child.on('exit', (code, sig) => (exited = `exited ${code ?? sig}`));
  const fail = (what: string) => new Error(`${what}; daemon log ${logPath}:\n${readFileSync(logPath, 'utf8').slice(-3000)}`);
  let stopping: Promise<void> | undefined;
  const stop = () => (stopping ??= stopNow());
  const stopNow = async () => {
    child.kill('SIGTERM');
    await new Promise<void>((r) => (exited ? r() : child.once('exit', () => r())));
    setChild(undefined);
    out.end();
  };
  try {
    for (;;) {
      if (exited) throw fail(`watch ${exited} before it was ready`);
      try {
        if ((await fetch(`http://127.0.0.1:${port}/readyz`)).status === 200) break;
      } catch {
        /* not listening yet */
      }
      if (now() - t0 > 180_000) throw fail('watch not ready within 180 s');
      await sleep(10);
    }
  } catch (e) {
    await stop();
    throw e;
  }
  return { child, port, readyMs: now() - t0, exited: () => exited, fail, stop };
}
