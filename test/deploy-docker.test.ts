// deploy/Dockerfile: no container engine runs here, so the file is checked as
// text, and its runtime stage is replayed in a temporary directory: the
// production-only install, then the CLI and every built module must load.
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const DOCKERFILE = join(ROOT, 'deploy/Dockerfile');

// Node's Active LTS on 2026-11-23: 26 (LTS since 2026-10-28; 24 moved to
// maintenance on 2026-10-20). Change it together with the FROM lines.
const ACTIVE_LTS_MAJOR = 26;

interface Instruction {
  cmd: string;
  args: string;
  stage: number;
}

/** Instructions in order, with line continuations joined and comments dropped. */
function parseDockerfile(src: string): Instruction[] {
  const out: Instruction[] = [];
  let stage = -1;
  let pending = '';
  for (const raw of src.split('\n')) {
    const line = raw.trim();
    if (pending === '' && (line === '' || line.startsWith('#'))) continue;
    if (pending !== '' && line.startsWith('#')) continue;
    if (line.endsWith('\\')) {
      pending += `${line.slice(0, -1)} `;
      continue;
    }
    const full = (pending + line).trim();
    pending = '';
    const m = /^(\w+)\s+([\s\S]*)$/.exec(full);
    if (!m) throw new Error(`not an instruction: ${full}`);
    const cmd = m[1]!.toUpperCase();
    if (cmd === 'FROM') stage++;
    out.push({ cmd, args: m[2]!.trim(), stage });
  }
  return out;
}

const steps = parseDockerfile(readFileSync(DOCKERFILE, 'utf8'));
const froms = steps.filter((s) => s.cmd === 'FROM');
const finalStage = froms.length - 1;
const final = steps.filter((s) => s.stage === finalStage);

describe('Dockerfile', () => {
  it('is multi-stage: a named build stage and a runtime stage', () => {
    expect(froms.length).toBeGreaterThanOrEqual(2);
    expect(froms[0]!.args).toMatch(/\s+AS\s+build$/i);
  });

  it(`uses the slim image of Node ${ACTIVE_LTS_MAJOR} (the Active LTS) in every stage`, () => {
    for (const f of froms) expect(f.args).toMatch(new RegExp(`^node:${ACTIVE_LTS_MAJOR}-[a-z]*-?slim(\\s|$)`));
  });

  it('is the major the runtime parity run tests under (scripts/node-parity.sh)', () => {
    const r = spawnSync('bash', [join(ROOT, 'scripts/node-parity.sh'), '--print-major'], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe(String(ACTIVE_LTS_MAJOR));
  });

  it('compiles everything tsconfig.build.json includes in the build stage', () => {
    const include = (JSON.parse(readFileSync(join(ROOT, 'tsconfig.build.json'), 'utf8')) as { include: string[] }).include;
    const copied = steps.filter((s) => s.stage === 0 && s.cmd === 'COPY').map((s) => s.args);
    for (const dir of include) expect(copied.some((c) => new RegExp(`(^|\\s)${dir}(\\s|$)`).test(c)), dir).toBe(true);
    expect(steps.some((s) => s.stage === 0 && s.cmd === 'RUN' && /\bnpm ci\b/.test(s.args))).toBe(true);
  });

  it('copies every script that `prepare` runs into the build stage (npm ci runs prepare there)', () => {
    const prepare = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts.prepare!;
    const scripts = [...prepare.matchAll(/\bnode\s+(\S+)/g)].map((m) => m[1]!);
    expect(scripts).toContain('scripts/bundle.mjs');
    const copied = steps.filter((s) => s.stage === 0 && s.cmd === 'COPY').flatMap((s) => s.args.split(/\s+/).slice(0, -1));
    for (const f of scripts) expect(copied.some((c) => f === c || f.startsWith(`${c.replace(/\/$/, '')}/`)), f).toBe(true);
  });

  it('installs production dependencies only in the runtime stage, without scripts (no tsc there)', () => {
    const installs = final.filter((s) => s.cmd === 'RUN' && /\bnpm (ci|install)\b/.test(s.args));
    expect(installs).toHaveLength(1);
    expect(installs[0]!.args).toMatch(/npm ci\b.*--omit=dev/);
    expect(installs[0]!.args).toMatch(/--ignore-scripts/);
    expect(final.some((s) => s.cmd === 'COPY' && /--from=build\s+\S*dist/.test(s.args))).toBe(true);
  });

  it('runs the CLI as its entrypoint (exec form, the entry the package bin runs for watch)', () => {
    const entry = final.find((s) => s.cmd === 'ENTRYPOINT')!;
    const argv = JSON.parse(entry.args) as string[];
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { bin: Record<string, string> };
    // The package bin is a shell launcher that runs the daemon from bin.js (a
    // start-up snapshot only pays for one-shot commands); the image, whose main
    // work is `watch`, starts bin.js itself.
    const launcher = readFileSync(join(ROOT, pkg.bin['mptcp-reconciler']!), 'utf8');
    expect(launcher).toMatch(/watch \| demo\) exec node "\$cli"/);
    expect(launcher).toContain('cli=$root/dist/src/cli/bin.js');
    expect(argv[0]).toBe('node');
    expect(argv[1]).toBe('/app/dist/src/cli/bin.js');
    expect(final.find((s) => s.cmd === 'WORKDIR')?.args).toBe('/app');
  });

  it('states its user and carries the OCI labels', () => {
    expect(final.some((s) => s.cmd === 'USER')).toBe(true);
    const labels = final.filter((s) => s.cmd === 'LABEL').map((s) => s.args).join(' ');
    for (const key of ['title', 'description', 'version', 'licenses']) expect(labels).toContain(`org.opencontainers.image.${key}=`);
  });

  it('has a build context that contains every file it copies', () => {
    const ignore = readFileSync(join(ROOT, 'deploy/Dockerfile.dockerignore'), 'utf8');
    const allowed = ignore
      .split('\n')
      .filter((l) => l.startsWith('!'))
      .map((l) => l.slice(1).replace(/\/\*\*$/, ''));
    for (const s of steps.filter((x) => x.cmd === 'COPY' && !x.args.startsWith('--from'))) {
      const sources = s.args.split(/\s+/).slice(0, -1);
      for (const src of sources) {
        expect(allowed, `COPY ${src}`).toContain(src);
        expect(existsSync(join(ROOT, src)), src).toBe(true);
      }
    }
  });
});

describe('runtime stage, replayed locally', () => {
  // The runtime stage's steps in a temp dir: package files, `npm ci --omit=dev
  // --ignore-scripts` (from the npm cache that the project's own `npm ci` filled),
  // the compiled dist/src. Then it must work without any devDependency.
  let app: string;
  const dist = join(ROOT, 'dist/src');

  beforeAll(() => {
    if (!existsSync(join(dist, 'cli/bin.js'))) throw new Error('dist/src/cli/bin.js is missing: run `npm ci` (or npm run build) first');
    app = mkdtempSync(join(tmpdir(), 'deploy-image-'));
    for (const f of ['package.json', 'package-lock.json']) cpSync(join(ROOT, f), join(app, f));
    const install = final.find((s) => s.cmd === 'RUN' && /\bnpm ci\b/.test(s.args))!;
    const npmArgs = install.args.split('&&')[0]!.trim().split(/\s+/).slice(1);
    const r = spawnSync('npm', [...npmArgs, '--prefer-offline'], { cwd: app, encoding: 'utf8', env: { ...process.env, NODE_ENV: 'production' } });
    if (r.status !== 0) throw new Error(`npm ${npmArgs.join(' ')} failed:\n${r.stderr}`);
    cpSync(dist, join(app, 'dist/src'), { recursive: true });
    cpSync(join(ROOT, 'deploy/kubernetes/base/fleet.yaml'), join(app, 'fleet.yaml'));
  }, 120_000);

  afterAll(() => {
    if (app) rmSync(app, { recursive: true, force: true });
  });

  const run = (args: string[]) => spawnSync(process.execPath, args, { cwd: app, encoding: 'utf8' });

  it('has no devDependency installed', () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { devDependencies: Record<string, string> };
    for (const dev of Object.keys(pkg.devDependencies)) expect(existsSync(join(app, 'node_modules', dev)), dev).toBe(false);
  });

  it('runs `--help` and `validate` through the entrypoint', () => {
    const help = run(['dist/src/cli/bin.js', '--help']);
    expect(help.status, help.stderr).toBe(0);
    expect(help.stdout).toContain('Usage: mptcp-reconciler');
    const v = run(['dist/src/cli/bin.js', 'validate', '-f', 'fleet.yaml']);
    expect(v.status, v.stderr).toBe(0);
  });

  it('loads every built module, native addons included, with production dependencies only', () => {
    const walk = (d: string): string[] =>
      readdirSync(d, { withFileTypes: true }).flatMap((e) =>
        e.isDirectory() ? walk(join(d, e.name)) : e.name.endsWith('.js') ? [join(d, e.name)] : [],
      );
    // bin.js runs the CLI when imported; it is covered by the test above.
    const modules = walk(join(app, 'dist/src'))
      .filter((f) => !f.endsWith('/cli/bin.js'))
      .map((f) => `./${relative(app, f)}`);
    expect(modules.length).toBeGreaterThan(5);
    const script = `
      const failed = [];
      for (const m of ${JSON.stringify(modules)}) {
        try { await import(m); } catch (e) { failed.push(m + ': ' + e.message); }
      }
      const koffi = (await import('koffi')).default;
      const netlink = await import('netlink');
      if (typeof koffi.load !== 'function' || typeof netlink.createRtNetlink !== 'function') failed.push('native addons');
      console.log(JSON.stringify(failed));
      process.exit(0);
    `;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: app, encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout.trim().split('\n').at(-1)!)).toEqual([]);
  });
});
