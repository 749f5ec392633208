// The built binary as a service manager runs it: SIGHUP reloads and keeps
// running, SIGTERM exits 0 and leaves the kernel state in place.
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNetns, deleteNetns, ipEndpoints, ipLimits, requireRoot } from './helpers/netns.js';
import { eventually, tempDir } from './helpers/daemon.js';
import { ensureBuilt } from './helpers/build.js';

const root = join(import.meta.dirname, '..');
const bin = join(root, 'dist/src/cli/bin.js');

let ns: string;
let dir: { dir: string; cleanup: () => void };

beforeAll(() => {
  requireRoot();
  // A dist older than src/ would test old code (the global setup builds it once).
  ensureBuilt();
  ns = createNetns('ws');
  dir = tempDir('watchsig');
}, 120_000);
afterAll(() => {
  if (ns) deleteNetns(ns);
  dir?.cleanup();
});

function startBin(file: string): { child: ChildProcess; lines: () => Record<string, unknown>[]; exit: Promise<number | null> } {
  const child = spawn(process.execPath, [bin, 'watch', '-f', file, '--listen', '127.0.0.1:0', '--resync', '1h', '--node', 'test-node'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr!.on('data', (b: Buffer) => (err += b.toString()));
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return {
    child,
    exit,
    lines: () => {
      if (err) throw new Error(`stderr: ${err}`);
      return out
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, unknown>);
    },
  };
}

describe('watch binary', () => {
  it('reloads on SIGHUP, exits 0 on SIGTERM and leaves the kernel state as it was', async () => {
    const file = join(dir.dir, 'mptcp.yaml');
    writeFileSync(
      file,
      `version: 1\nnamespaces:\n  - netns: ${ns}\n    limits: { subflows: 4 }\n    endpoints:\n      - { address: 192.0.2.40, flags: [signal] }\n`,
    );
    const p = startBin(file);
    try {
      await eventually('ready', () => p.lines().some((l) => String(l.msg).includes('ready')), 15_000);
      const listen = p.lines().find((l) => l.msg === 'http listening')!.listen as string;
      expect((await fetch(`http://${listen}/readyz`)).status).toBe(200);
      expect(ipEndpoints(ns).map((e) => e.address)).toEqual(['192.0.2.40']);

      p.child.kill('SIGHUP');
      await eventually('reloaded', () => p.lines().some((l) => l.reason === 'SIGHUP'));
      expect((await fetch(`http://${listen}/healthz`)).status).toBe(200);

      p.child.kill('SIGTERM');
      expect(await p.exit).toBe(0);
      expect(p.lines().some((l) => l.msg === 'stopped')).toBe(true);
      // Nothing is flushed on exit.
      expect(ipEndpoints(ns).map((e) => e.address)).toEqual(['192.0.2.40']);
      expect(ipLimits(ns).subflows).toBe(4);
    } finally {
      if (p.child.exitCode === null) p.child.kill('SIGKILL');
    }
  });

  it('exits 1 with a clear message and no stack trace when the config is invalid', async () => {
    const file = join(dir.dir, 'bad.yaml');
    writeFileSync(file, `version: 1\nnamespaces:\n  - netns: ${ns}\n    limits: { subflows: 42 }\n`);
    const child = spawn(process.execPath, [bin, 'watch', '-f', file, '--listen', '127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stderr.on('data', (b: Buffer) => (err += b.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    expect(code).toBe(1);
    expect(err).toMatch(/bad\.yaml:4:/);
    expect(err).not.toMatch(/\n\s+at /);
  });
});
