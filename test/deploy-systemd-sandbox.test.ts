// The systemd unit's sandbox, measured rather than only read: its
// `systemd-analyze security` exposure stays at or under the score recorded in
// docs/deploy.md, and the system calls a live daemon makes (strace) are all
// allowed by the unit's SystemCallFilter, so the filter cannot break the service.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ensureBuilt, ROOT } from './helpers/build.js';
import { eventually, tempDir } from './helpers/daemon.js';
import { createNetns, deleteNetns, ip, ipEndpoints, requireRoot } from './helpers/netns.js';

const UNIT = join(ROOT, 'deploy/systemd/mptcp-reconciler.service');
const unitText = readFileSync(UNIT, 'utf8');
const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
// CI installs systemd and strace: there a missing one fails instead of skipping.
const ci = process.env.CI === 'true';

const cleanups: (() => void)[] = [];
afterAll(() => {
  for (const c of cleanups.splice(0).reverse()) c();
});

describe.skipIf(!has('systemd-analyze') && !ci)('systemd-analyze security', () => {
  it('scores the unit at or under the exposure recorded in docs/deploy.md', () => {
    const doc = readFileSync(join(ROOT, 'docs/deploy.md'), 'utf8');
    const recorded = /Recorded exposure: \*\*(\d+\.\d)\*\*/.exec(doc)?.[1];
    expect(recorded, 'docs/deploy.md records the score as "Recorded exposure: **N.N**"').toBeDefined();
    const dir = mkdtempSync(join(tmpdir(), 'x17-unit-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const copy = join(dir, 'mptcp-reconciler.service');
    writeFileSync(copy, unitText);
    const r = spawnSync('systemd-analyze', ['security', '--offline=yes', '--no-pager', copy], { encoding: 'utf8' });
    const score = /Overall exposure level for \S+: (\d+\.\d)/.exec(r.stdout)?.[1];
    expect(score, r.stdout + r.stderr).toBeDefined();
    expect(Number(score)).toBeLessThanOrEqual(Number(recorded));
  });
});

/** The names of the system calls in a group, nested groups expanded, as this systemd defines them. */
function syscallGroup(group: string, seen = new Set<string>()): Set<string> {
  const out = new Set<string>();
  if (seen.has(group)) return out;
  seen.add(group);
  const r = spawnSync('systemd-analyze', ['syscall-filter', '--no-pager', group], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`systemd-analyze syscall-filter ${group}: ${r.stderr}`);
  for (const line of r.stdout.split('\n').slice(1)) {
    const w = line.trim();
    if (!w || w.startsWith('#')) continue;
    for (const s of w.startsWith('@') ? syscallGroup(w, seen) : [w]) out.add(s);
  }
  return out;
}

/** What the unit's SystemCallFilter= lines allow: the allow list, then each `~` line removed. */
function allowedByUnit(): Set<string> {
  const lines = [...unitText.matchAll(/^SystemCallFilter=(.*)$/gm)].map((m) => m[1]!.trim());
  expect(lines[0]!.startsWith('~')).toBe(false);
  const allowed = new Set<string>();
  for (const line of lines) {
    const deny = line.startsWith('~');
    for (const item of (deny ? line.slice(1) : line).split(/\s+/)) {
      for (const s of item.startsWith('@') ? syscallGroup(item) : [item]) {
        if (deny) allowed.delete(s);
        else allowed.add(s);
      }
    }
  }
  return allowed;
}

// Calls the daemon makes that the filter answers with EPERM (SystemCallErrorNumber),
// each one known to be harmless.
const TOLERATED: Record<string, string> = {
  pkey_alloc: 'V8 asks for a memory protection key and runs without one',
};

describe.skipIf((!has('strace') || !has('systemd-analyze')) && !ci)('system calls of a live daemon', () => {
  it('are all allowed by the unit\'s SystemCallFilter', async () => {
    requireRoot();
    const bin = ensureBuilt();
    const ns = createNetns('x17');
    cleanups.push(() => deleteNetns(ns));
    // The trace is written outside the config's directory, which the daemon watches.
    const cfg = tempDir('x17-cfg');
    const out = tempDir('x17-trace');
    cleanups.push(cfg.cleanup, out.cleanup);
    const file = join(cfg.dir, 'mptcp.yaml');
    writeFileSync(
      file,
      `version: 1\nnamespaces:\n  - netns: ${ns}\n    mptcp: { addAddrTimeout: 60 }\n    limits: { subflows: 2 }\n    rpFilter: { lo: loose }\n    endpoints:\n      - { address: 192.0.2.17, flags: [signal] }\n`,
    );
    const trace = join(out.dir, 'trace');
    const child = spawn('strace', ['-f', '-qq', '-o', trace, process.execPath, bin, 'watch', '-f', file, '--listen', '127.0.0.1:0', '--resync', '200ms', '--node', 'test-node'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
    let log = '';
    child.stdout!.on('data', (b: Buffer) => (log += b.toString()));
    child.stderr!.on('data', (b: Buffer) => (log += b.toString()));
    const daemonPid = () => Number(readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8').trim().split(/\s+/)[0]);
    try {
      const listen = await eventually('http listening', () => /"listen":"([^"]+)"/.exec(log)?.[1], 30_000);
      await eventually('converged', () => ipEndpoints(ns).some((e) => e.address === '192.0.2.17'), 15_000);
      // A repair, the HTTP endpoints and a reload: the paths a service takes.
      ip('-n', ns, 'mptcp', 'endpoint', 'flush');
      await eventually('repaired', () => ipEndpoints(ns).some((e) => e.address === '192.0.2.17'), 15_000);
      for (const p of ['/healthz', '/readyz', '/metrics', '/status']) expect((await fetch(`http://${listen}${p}`)).status).toBe(200);
      process.kill(daemonPid(), 'SIGHUP');
      await eventually('reloaded', () => log.includes('SIGHUP'), 15_000);
      process.kill(daemonPid(), 'SIGTERM');
      await exited;
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
    const used = new Set<string>();
    for (const m of readFileSync(trace, 'utf8').matchAll(/^\d+\s+(?:<\.\.\. )?([a-z0-9_]+)[( ]/gm)) used.add(m[1]!);
    expect(used.has('setns'), 'the trace covers the namespace switches').toBe(true);
    const allowed = allowedByUnit();
    const refused = [...used].filter((s) => !allowed.has(s) && !(s in TOLERATED)).sort();
    expect(refused).toEqual([]);
  }, 90_000);
});
