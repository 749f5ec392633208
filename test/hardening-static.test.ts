// What the product can do to a machine, checked on its source and its HTTP surface:
// no process is ever started (no child_process, no exec* / system through the FFI),
// and the HTTP listener is read-only and on loopback unless told otherwise.
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { startHttpServer } from '../src/http/server.js';
import { cli } from './helpers/hardening.js';

const srcDir = join(import.meta.dirname, '..', 'src');
function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : /\.[cm]?[jt]s$/.test(e.name) ? [join(dir, e.name)] : [],
  );
}
const files = sources(srcDir).map((f) => ({ name: relative(srcDir, f), text: readFileSync(f, 'utf8') }));

describe('no shelling out', () => {
  it('finds the sources (the checks below are not vacuous)', () => {
    expect(files.map((f) => f.name)).toEqual(expect.arrayContaining(['cli/commands/demo.ts', 'kernel/netns-admin.ts', 'daemon/daemon.ts']));
  });

  it('no module in src/ (the demo included) imports child_process, cluster or worker_threads, or evaluates code', () => {
    const bad = /(?:from|import|require)\s*\(?\s*['"](?:node:)?(?:child_process|cluster|worker_threads)['"]|\b(?:execSync|execFileSync|spawnSync)\s*\(|\beval\s*\(|new\s+Function\s*\(/;
    const found = files.filter((f) => bad.test(f.text)).map((f) => f.name);
    expect(found).toEqual([]);
  });

  it('the C functions bound through koffi are syscalls on sockets, namespaces and mounts only', () => {
    const allowed = new Set(['setns', 'socket', 'bind', 'setsockopt', 'getsockopt', 'getsockname', 'send', 'recv', 'close', 'unshare', 'mount', 'umount2']);
    const bound = files.flatMap((f) => [...f.text.matchAll(/\.func\(\s*['"`][^'"`(]*?\b(\w+)\s*\(/g)].map((m) => `${f.name}: ${m[1]}`));
    expect(bound.length).toBeGreaterThan(5);
    expect(bound.filter((b) => !allowed.has(b.split(': ')[1]!))).toEqual([]);
  });
});

describe('HTTP surface', () => {
  it('answers GET and HEAD only: every other method is 405 and never reaches a handler', async () => {
    let calls = 0;
    const srv = await startHttpServer(
      { host: '127.0.0.1', port: 0 },
      {
        healthy: () => (calls++, true),
        ready: () => (calls++, true),
        registry: new Registry(),
        status: () => (calls++, {}),
      },
    );
    try {
      const base = `http://127.0.0.1:${srv.address.port}`;
      for (const path of ['/healthz', '/readyz', '/metrics', '/status', '/']) {
        for (const method of ['POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS']) {
          const r = await fetch(`${base}${path}`, { method, body: method === 'OPTIONS' ? undefined : '{"mode":"enforce"}' });
          expect(r.status, `${method} ${path}`).toBe(405);
          expect(r.headers.get('allow')).toBe('GET, HEAD');
        }
      }
      expect(calls).toBe(0);
      expect((await fetch(`${base}/healthz`)).status).toBe(200);
    } finally {
      await srv.close();
    }
  });

  it('listens on loopback unless --listen says otherwise', async () => {
    const r = await cli(['watch', '--help']);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/--listen <addr:port>[^\n]*\n?[^\n]*default: "127\.0\.0\.1:9808"/);
  });
});
