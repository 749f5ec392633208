// The command users run, bin/mptcp-reconciler: one-shot commands start from the
// V8 start-up snapshot that the build makes (src/cli/snapshot.ts), and must say
// and do exactly what dist/src/cli/bin.js says and does; the launcher takes the
// blob only when it belongs to this node and to the current build.
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, ROOT, ensureBuilt } from './helpers/build.js';
import { ipEndpoints, ipLimits, namespacesFor } from './helpers/netns.js';

const LAUNCHER = join(ROOT, 'bin/mptcp-reconciler');
const BLOB = join(ROOT, 'dist/snapshot', `cli-${process.version}.blob`);
const newNamespace = namespacesFor('suP');
let dir: string;

beforeAll(() => {
  ensureBuilt();
  // dist/ may have been built by another node (scripts/node-parity.sh runs the
  // suite under the image's): its blob is then added beside that one.
  if (!existsSync(BLOB) || statSync(BLOB).mtimeMs <= statSync(BIN).mtimeMs) {
    spawnSync(process.execPath, [join(ROOT, 'scripts/bundle.mjs'), '--snapshot-only'], { cwd: ROOT, stdio: 'ignore' });
  }
  dir = mkdtempSync(join(tmpdir(), 'cli-snapshot-'));
}, 300_000);

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

function run(cmd: string, args: string[], opts: { cwd?: string; env?: Record<string, string> } = {}): Run {
  const r = spawnSync(cmd, args, { cwd: opts.cwd ?? dir, env: { ...process.env, ...opts.env }, encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}
const launcher = (args: string[], opts?: Parameters<typeof run>[2]) => run(LAUNCHER, args, opts);
const fromSnapshot = (args: string[], opts?: Parameters<typeof run>[2]) =>
  run(process.execPath, ['--snapshot-blob', BLOB, '--', ...args], opts);
const plain = (args: string[], opts?: Parameters<typeof run>[2]) => run(process.execPath, [BIN, ...args], opts);

function file(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

describe('the start-up snapshot', () => {
  it('exists for this node, newer than the bin it belongs to', () => {
    expect(existsSync(BLOB)).toBe(true);
    expect(statSync(BLOB).mtimeMs).toBeGreaterThan(statSync(BIN).mtimeMs);
    // and the link to the node that made it, which the launcher compares with its own
    expect(realpathSync(BLOB.replace(/\.blob$/, '.made-by'))).toBe(realpathSync(process.execPath));
  });

  it('answers the read-only commands exactly as bin.js does, with the caller’s argv, cwd and environment', () => {
    file('good.yaml', 'version: 1\nnamespaces:\n  - netns: host\n    limits: { subflows: 2 }\n    endpoints:\n      - { dev: eth0, flags: [subflow] }\n');
    file('bad.yaml', 'version: 1\nnamespaces:\n  - netns: host\n    endpoints:\n      - { adress: 192.0.2.1, flags: [signal, fullmesh] }\n');
    copyFileSync(join(ROOT, 'examples/fleet.yaml'), join(dir, 'fleet.yaml'));
    const cases: { args: string[]; env?: Record<string, string> }[] = [
      { args: ['--version'] },
      { args: ['--help'] },
      { args: ['plan', '--help'] },
      { args: ['validate', '-f', 'good.yaml'] },
      { args: ['validate', '-f', 'bad.yaml'] },
      { args: ['validate', '--fle', 'good.yaml'] },
      { args: ['validate', '-f', 'missing.yaml'] },
      { args: ['render', '-f', 'fleet.yaml'], env: { NODE_NAME: 'edge-7' } },
      { args: ['render', '-f', 'fleet.yaml'], env: { NODE_NAME: 'gw-1' } },
    ];
    for (const c of cases) {
      const want = plain(c.args, { env: c.env });
      expect(fromSnapshot(c.args, { env: c.env }), c.args.join(' ')).toEqual(want);
      expect(launcher(c.args, { env: c.env }), c.args.join(' ')).toEqual(want);
    }
    expect(plain(['validate', '-f', 'bad.yaml']).stderr).toContain('bad.yaml:5:9: error');
    expect(plain(['render', '-f', 'fleet.yaml'], { env: { NODE_NAME: 'edge-7' } }).stdout).toContain('wwan0');
  });

  it('plans, applies and shows a real namespace like bin.js (the native addons load at run time)', () => {
    const ns = newNamespace();
    const cfg = file(
      'ns.yaml',
      `version: 1\nnamespaces:\n  - netns: ${ns}\n    limits: { subflows: 3, addAddrAccepted: 1 }\n    endpoints:\n      - { address: 192.0.2.7, flags: [signal] }\n`,
    );
    const before = plain(['plan', '-f', cfg, '--detailed-exitcode']);
    expect(before.status).toBe(2);
    expect(launcher(['plan', '-f', cfg, '--detailed-exitcode'])).toEqual(before);
    expect(launcher(['plan', '-f', cfg, '-o', 'json'])).toEqual(plain(['plan', '-f', cfg, '-o', 'json']));

    const applied = launcher(['apply', '-f', cfg]);
    expect(applied.stderr).toBe('');
    expect(applied.status).toBe(0);
    expect(ipLimits(ns)).toMatchObject({ subflows: 3, addAddrAccepted: 1 });
    expect(ipEndpoints(ns).map((e) => [e.address, e.signal])).toEqual([['192.0.2.7', true]]);

    const converged = launcher(['plan', '-f', cfg, '--detailed-exitcode']);
    expect(converged).toEqual(plain(['plan', '-f', cfg, '--detailed-exitcode']));
    expect(converged.status).toBe(0);
    const shown = launcher(['show', '--netns', ns, '-o', 'json']);
    expect(shown).toEqual(plain(['show', '--netns', ns, '-o', 'json']));
    writeFileSync(join(dir, 'live.json'), shown.stdout);
    expect(launcher(['plan', '-f', cfg, '--live', 'live.json'])).toEqual(plain(['plan', '-f', cfg, '--live', 'live.json']));
  });
});

describe('what a one-shot command leaves out of its start', () => {
  it('prints package.json’s version, carried from the build, in every form', () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    const want = `mptcp-reconciler ${pkg.version} (node ${process.version}, `;
    for (const r of [fromSnapshot(['--version']), launcher(['--version']), plain(['--version'])]) {
      expect(r.status).toBe(0);
      expect(r.stdout.startsWith(want), r.stdout).toBe(true);
    }
  });

  // strace, as the oracle of which files the process opens.
  function opened(args: string[], env: Record<string, string>): { run: Run; files: string[] } {
    const log = join(dir, `strace-${Math.random().toString(16).slice(2)}.txt`);
    const r = run('strace', ['-f', '-qq', '-e', 'trace=openat', '-o', log, LAUNCHER, ...args], { env });
    const files = [...readFileSync(log, 'utf8').matchAll(/openat\([^"]*"([^"]+)"[^=]*= \d+/g)].map((m) => m[1]!);
    rmSync(log);
    return { run: r, files };
  }

  it('plans a real namespace with koffi opened from the file the build recorded, and without the CA file', () => {
    const ns = newNamespace();
    const cfg = file('koffi.yaml', `version: 1\nnamespaces:\n  - netns: ${ns}\n    limits: { subflows: 5 }\n`);
    const ca = file('extra-ca.pem', readFileSync('/etc/ssl/certs/ca-certificates.crt', 'utf8'));
    const env = { NODE_EXTRA_CA_CERTS: ca };
    const { run: r, files } = opened(['plan', '-f', cfg, '--detailed-exitcode'], env);
    expect(r).toEqual(plain(['plan', '-f', cfg, '--detailed-exitcode'], { env }));
    expect(r.status).toBe(2);
    expect(files.filter((f) => f.endsWith('/koffi.node'))).toHaveLength(1);
    // koffi's JavaScript loader (and the package.json lookups of its resolution) never ran.
    expect(files.filter((f) => /node_modules\/koffi\//.test(f))).toEqual([]);
    expect(files).not.toContain(ca);
    expect(files).not.toContain(join(ROOT, 'package.json'));
  });
});

describe('bin/mptcp-reconciler chooses the blob', () => {
  // A copy of the package's layout whose dist/src is the real one, so the blob can
  // be replaced: a blob that is not a snapshot makes node abort, which shows
  // whether the launcher handed it over.
  function layout(blobName: string, blobAge: 'newer' | 'older'): string {
    const root = mkdtempSync(join(dir, 'pkg-'));
    mkdirSync(join(root, 'bin'));
    mkdirSync(join(root, 'dist/snapshot'), { recursive: true });
    copyFileSync(LAUNCHER, join(root, 'bin/mptcp-reconciler'));
    symlinkSync(join(ROOT, 'dist/src'), join(root, 'dist/src'));
    const blob = join(root, 'dist/snapshot', blobName);
    writeFileSync(blob, 'not a snapshot');
    const binTime = statSync(BIN).mtime.getTime() / 1000;
    const t = blobAge === 'newer' ? binTime + 60 : binTime - 60;
    utimesSync(blob, t, t);
    return root;
  }
  const version = ['--version'];

  it('hands over the blob named after this node when it is newer than bin.js', () => {
    const r = run(join(layout(`cli-${process.version}.blob`, 'newer'), 'bin/mptcp-reconciler'), version);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/snapshot/i);
  });

  it('runs bin.js when the blob is older than bin.js (tsc or a build ran since)', () => {
    const r = run(join(layout(`cli-${process.version}.blob`, 'older'), 'bin/mptcp-reconciler'), version);
    expect(r).toEqual(plain(version));
  });

  it('runs bin.js when the blob was made by another node', () => {
    const r = run(join(layout('cli-v0.0.1.blob', 'newer'), 'bin/mptcp-reconciler'), version);
    expect(r).toEqual(plain(version));
  });

  it('recognises the node that made a blob by the link beside it, without asking its version', () => {
    // The blob's name says another version: only the link can have chosen it.
    const root = layout('cli-v0.0.1.blob', 'newer');
    symlinkSync(realpathSync(process.execPath), join(root, 'dist/snapshot/cli-v0.0.1.made-by'));
    const r = run(join(root, 'bin/mptcp-reconciler'), version);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/snapshot/i);
  });

  it('asks the version when the link beside a blob is another binary', () => {
    const root = layout('cli-v0.0.1.blob', 'newer');
    symlinkSync('/bin/sh', join(root, 'dist/snapshot/cli-v0.0.1.made-by'));
    expect(run(join(root, 'bin/mptcp-reconciler'), version)).toEqual(plain(version));
  });

  it('runs watch and demo from bin.js even with a usable blob', () => {
    const r = run(join(layout(`cli-${process.version}.blob`, 'newer'), 'bin/mptcp-reconciler'), ['watch', '--help']);
    expect(r).toEqual(plain(['watch', '--help']));
  });

  it('works through a symlink, as npm links it onto the PATH', () => {
    const link = join(dir, 'mptcp-reconciler');
    symlinkSync(LAUNCHER, link);
    expect(run(link, ['validate', '--help'])).toEqual(plain(['validate', '--help']));
    expect(run(link, version)).toEqual(plain(version));
  });
});
