// Readiness as a rollout gate: the built `watch` run as user nobody, managing a
// namespace of the test's own, cannot enter it (no CAP_SYS_ADMIN), so every pass
// fails. /readyz must then answer 503 with the reason, so that a DaemonSet
// rollout stops instead of spreading a daemon that cannot reconcile.
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, ensureBuilt } from './helpers/build.js';
import { daemonTestScope, eventually, tempDir } from './helpers/daemon.js';
import { ipEndpoints, requireRoot } from './helpers/netns.js';

const scope = daemonTestScope('y15');
const children: ChildProcess[] = [];

beforeAll(() => {
  requireRoot();
  ensureBuilt();
}, 120_000);
afterAll(async () => {
  for (const c of children) {
    if (c.exitCode === null && c.pid) {
      const gone = new Promise((r) => c.once('exit', r));
      process.kill(c.pid, 'SIGTERM');
      await gone;
    }
  }
  scope.cleanup();
});

describe('readyz of a daemon whose passes keep failing', () => {
  it('answers 503 naming the namespace and the privilege error; /status says the same', async () => {
    const ns = scope.netns();
    const t = tempDir('y15-ready');
    scope.onCleanup(t.cleanup);
    chmodSync(t.dir, 0o755);
    const file = join(t.dir, 'mptcp.yaml');
    writeFileSync(file, `version: 1\nnamespaces:\n  - netns: ${ns}\n    endpoints:\n      - { address: 192.0.2.60, flags: [signal] }\n`, { mode: 0o644 });
    const child = spawn('setpriv', ['--reuid', '65534', '--regid', '65534', '--clear-groups', process.execPath, BIN, 'watch', '-f', file, '--listen', '127.0.0.1:0', '--resync', '200ms', '--node', 'n1'], {
      cwd: '/',
      env: { PATH: process.env.PATH, NODE_NAME: 'n1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    let out = '';
    child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr!.on('data', (b: Buffer) => (out += b.toString()));
    const lines = () => out.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
    const listen = await eventually('http listening', () => lines().find((l) => l.msg === 'http listening')?.listen as string | undefined, 15_000);
    const url = `http://${listen}`;

    const r = await eventually(
      'readyz to give its reason',
      async () => {
        const res = await fetch(`${url}/readyz`);
        const body = await res.text();
        return res.status === 503 && body.includes(ns) ? { status: res.status, body } : undefined;
      },
      15_000,
    );
    expect(r.body).toMatch(/^not ready\n/);
    expect(r.body).toMatch(new RegExp(`${ns}: (every pass failed|last \\d+ passes failed): .*EPERM`));
    const st = (await (await fetch(`${url}/status`)).json()) as { ready: boolean; notReady: string[]; blocked: string[] };
    expect(st.ready).toBe(false);
    expect(st.notReady.join('\n')).toContain(ns);
    expect(st.blocked).toEqual([]);
    expect(ipEndpoints(ns)).toEqual([]); // and it really could not write
    // The daemon itself is alive: liveness stays 200, only readiness says no.
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
  }, 60_000);
});
