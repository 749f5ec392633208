// The built CLI as users run it: `node dist/src/cli/bin.js demo` (the README's
// first command) and `plan --live` as an unprivileged user. Both need dist/, so
// this file builds it when it is older than the sources.
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../src/cli/main.js';
import { BIN, ROOT, ensureBuilt } from './helpers/build.js';
import { createNetns, deleteNetns, ip, ipEndpoints, ipLimits, requireRoot, sh } from './helpers/netns.js';
import { captureIO } from './helpers/io.js';

requireRoot();
const root = ROOT;
const bin = BIN;

function hostState(): string {
  const sysctls = sh('sysctl', ['-a', '--pattern', '^net\\.mptcp\\.']).split('\n').filter((l) => !l.includes('available_')).sort();
  return [ip('-j', 'mptcp', 'endpoint', 'show'), ip('mptcp', 'limits'), sysctls.join('\n'), sh('sysctl', ['-a', '--pattern', 'rp_filter$'])].join('\n--\n');
}

function demoNamespaces(): string[] {
  return ip('netns', 'list')
    .split('\n')
    .map((l) => l.split(' ')[0]!)
    .filter((n) => /^mrdemo-[0-9a-f]{6}-(srv|cli)$/.test(n));
}

beforeAll(() => ensureBuilt(), 300_000);

describe('demo (built bin)', () => {
  it('runs the whole cycle, repairs the drift, and leaves no namespace and an untouched host', () => {
    const before = hostState();
    const demosBefore = demoNamespaces();
    const r = spawnSync(process.execPath, [bin, 'demo'], { cwd: root, encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const tag = /mrdemo-([0-9a-f]{6})-srv/.exec(r.stdout)?.[1];
    expect(tag).toBeDefined();
    // plan showed the changes, apply converged, the drift was seen (exit 2) and repaired.
    expect(r.stdout).toMatch(/== 6\.[\s\S]*set-flags id \d+ \(198\.51\.100\.2 dev veth-srv\): backup true -> false[\s\S]*\(exit 2\)/);
    expect(r.stdout).toMatch(/== 7\.[\s\S]*converged and verified[\s\S]*no changes[\s\S]*\(exit 0\)/);
    expect(r.stdout).toContain(`what \`ip -n mrdemo-${tag}-cli mptcp endpoint delete id`);
    expect(demoNamespaces().filter((n) => n.includes(tag!))).toEqual([]);
    expect(demoNamespaces()).toEqual(demosBefore);
    expect(hostState()).toBe(before);
  }, 120_000);

  it('removes its namespaces when interrupted', async () => {
    const child = spawn(process.execPath, [bin, 'demo'], { cwd: root });
    let out = '';
    let err = '';
    let tag: string | undefined;
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const code = await new Promise<number | null>((resolve) => {
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /(mrdemo-([0-9a-f]{6}))-srv: veth-srv/.exec(out);
        if (m && !tag) {
          tag = m[2];
          // The namespaces exist now (they are announced after creation).
          child.kill('SIGTERM');
        }
      });
      child.on('exit', (c) => resolve(c));
    });
    expect(tag).toBeDefined();
    // Either it was stopped (143, and says so) or it had already finished; never a leftover.
    if (code === 143) expect(err).toContain('interrupted by SIGTERM');
    else expect(code).toBe(0);
    expect(demoNamespaces().filter((n) => n.includes(tag!))).toEqual([]);
  }, 120_000);
  it('still cleans up when its reader goes away (stdout closed, as with `| head`)', async () => {
    const before = demoNamespaces();
    const child = spawn(process.execPath, [bin, 'demo'], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const code = await new Promise<number | null>((resolve) => {
      child.stdout.once('data', () => child.stdout.destroy());
      child.on('exit', (c) => resolve(c));
    });
    expect(err).not.toMatch(/\n\s+at /);
    expect(code).toBe(0);
    expect(demoNamespaces()).toEqual(before);
  }, 120_000);
});

describe('plan --live (built bin, unprivileged)', () => {
  const made: string[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'mr-live-'));
  afterAll(() => {
    for (const n of made) deleteNetns(n);
    rmSync(dir, { recursive: true, force: true });
  });

  it('plans against a saved show -o json as nobody, the same as against the kernel as root', async () => {
    const a = createNetns('live');
    made.push(a);
    ip('-n', a, 'mptcp', 'endpoint', 'add', '192.0.2.70', 'subflow');
    ip('-n', a, 'mptcp', 'endpoint', 'add', '203.0.113.70', 'signal');
    const t = captureIO({ env: { NODE_NAME: 'n1' }, cwd: dir });
    expect(await main(['show', '--netns', a, '-o', 'json'], t.io)).toBe(0);
    chmodSync(dir, 0o755);
    const snap = join(dir, 'snap.json');
    writeFileSync(snap, t.out(), { mode: 0o644 });
    const cfg = join(dir, 'cfg.yaml');
    writeFileSync(
      cfg,
      `version: 1
namespaces:
  - netns: ${a}
    limits: { subflows: 4 }
    endpoints:
      - { address: 192.0.2.70, flags: [subflow, backup] }
`,
      { mode: 0o644 },
    );

    const r = spawnSync(
      'setpriv',
      ['--reuid', '65534', '--regid', '65534', '--clear-groups', process.execPath, bin, 'plan', '-f', cfg, '--live', snap, '-o', 'json', '--detailed-exitcode'],
      { cwd: dir, encoding: 'utf8', env: { PATH: process.env.PATH, NODE_NAME: 'n1' } },
    );
    expect(r.stderr).toBe('');
    expect(r.status).toBe(2);
    const doc = JSON.parse(r.stdout) as { node: string; namespaces: { netns: string; operations: { op: string; disruptive: boolean }[] }[] };
    expect(doc.node).toBe('n1');
    const ops = doc.namespaces[0]!.operations.map((o) => [o.op, o.disruptive]);
    expect(ops).toEqual([
      ['set-limits', false],
      ['delete', true],
      ['set-flags', false],
    ]);

    // The same plan as root against the kernel.
    const t2 = captureIO({ env: { NODE_NAME: 'n1' }, cwd: dir });
    expect(await main(['plan', '-f', cfg, '-o', 'json', '--detailed-exitcode'], t2.io)).toBe(2);
    const kernelPlan = JSON.parse(t2.out()) as typeof doc;
    expect(kernelPlan.namespaces.find((n) => n.netns === a)!.operations).toEqual(doc.namespaces[0]!.operations);

    // Nothing changed in the namespace.
    expect(ipEndpoints(a).map((e) => e.address).sort()).toEqual(['192.0.2.70', '203.0.113.70']);
    expect(ipLimits(a).subflows).toBe(2);
  }, 60_000);

  it('says so when the snapshot is not a show -o json', () => {
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, '{"node": 1}', { mode: 0o644 });
    const cfg = join(dir, 'cfg2.yaml');
    writeFileSync(cfg, 'version: 1\nnamespaces: []\n', { mode: 0o644 });
    const r = spawnSync('setpriv', ['--reuid', '65534', '--regid', '65534', '--clear-groups', process.execPath, bin, 'plan', '-f', cfg, '--live', bad], {
      cwd: dir,
      encoding: 'utf8',
    });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/--live .*bad\.json: live snapshot: node/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });
});
