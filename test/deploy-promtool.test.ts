// What a Prometheus server scrapes must pass Prometheus' own linter: the built
// binary runs `watch` on a namespace of this test, and `promtool check metrics`
// reads its live /metrics. build_info says which build, Node.js and kernel run.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { release } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNetns, deleteNetns, ipEndpoints, requireRoot } from './helpers/netns.js';
import { eventually, parseMetrics, tempDir } from './helpers/daemon.js';
import { ensureBuilt, ROOT } from './helpers/build.js';

const promtool = spawnSync('sh', ['-c', 'command -v promtool'], { encoding: 'utf8' }).stdout.trim() || undefined;
// CI installs promtool (Debian's `prometheus` package): there a missing one fails.
const skip = promtool === undefined && process.env.CI !== 'true';

let ns: string | undefined;
let dir: { dir: string; cleanup: () => void } | undefined;
let child: ChildProcess | undefined;

beforeAll(() => {
  if (skip) return;
  requireRoot();
  ensureBuilt();
  ns = createNetns('x17');
  dir = tempDir('x17-promtool');
}, 120_000);
afterAll(() => {
  if (child && child.exitCode === null) child.kill('SIGKILL');
  if (ns) deleteNetns(ns);
  dir?.cleanup();
});

describe.skipIf(skip)('live /metrics', () => {
  it('passes `promtool check metrics` and carries build_info', async () => {
    expect(promtool, 'promtool is missing: apt-get install prometheus').toBeDefined();
    const file = join(dir!.dir, 'mptcp.yaml');
    writeFileSync(file, `version: 1\nnamespaces:\n  - netns: ${ns}\n    limits: { subflows: 2 }\n    endpoints:\n      - { address: 192.0.2.17, flags: [signal] }\n`);
    const c = spawn(process.execPath, [join(ROOT, 'dist/src/cli/bin.js'), 'watch', '-f', file, '--listen', '127.0.0.1:0', '--resync', '1h', '--node', 'test-node'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child = c;
    let out = '';
    c.stdout!.on('data', (b: Buffer) => (out += b.toString()));
    c.stderr!.on('data', (b: Buffer) => (out += b.toString()));
    const listening = await eventually('http listening', () => /"listen":"([^"]+)"/.exec(out)?.[1], 15_000);
    await eventually('converged', () => ipEndpoints(ns!).some((e) => e.address === '192.0.2.17'), 15_000);

    const text = await (await fetch(`http://${listening}/metrics`)).text();
    const lint = spawnSync(promtool!, ['check', 'metrics'], { input: text, encoding: 'utf8' });
    expect(lint.stdout + lint.stderr).toBe('');
    expect(lint.status).toBe(0);

    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    const info = parseMetrics(text).filter((s) => s.name === 'mptcp_reconciler_build_info');
    expect(info).toEqual([{ name: 'mptcp_reconciler_build_info', labels: { version: pkg.version, node_version: process.version, kernel: release() }, value: 1 }]);

    c.kill('SIGTERM');
    await eventually('stopped', () => c.exitCode !== null, 10_000);
    expect(c.exitCode).toBe(0);
  }, 60_000);
});
