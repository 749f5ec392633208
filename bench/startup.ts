// Whole-process cost of the one-shot CLI against iproute2, at several fleet
// sizes: what a user waits for when typing `mptcp-reconciler plan`. Each
// command runs as users start it, through the package bin (bin/mptcp-reconciler,
// which starts from the V8 start-up snapshot), beside `node dist/src/cli/bin.js`
// (the ES modules, what `npm run bench`'s table runs) and `node -e 0` (Node's
// own boot on this machine). Commands of one row take turns run by run, so
// load from elsewhere hits them alike; medians of wall time, and the children's
// CPU time (user+sys, from /proc/self/stat) per run.
//
//   npx tsc -p tsconfig.build.json && node scripts/bundle.mjs
//   node dist/bench/startup.js --n 1,50,200 --runs 7
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkConverged, createFleet, destroyFleet, type Fleet, fleetConfig, resetFleet } from './fixture.js';
import { coldApplyScript, convergedCheckScript } from './iproute2.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const BIN = join(ROOT, 'dist/src/cli/bin.js');
const LAUNCHER = join(ROOT, 'bin/mptcp-reconciler');
const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1]! : dflt;
}
const SIZES = arg('--n', '1,50,200').split(',').map(Number);
const RUNS = Number(arg('--runs', '7'));

/** CPU time of waited-for children so far (utime+stime fields 16-17 of /proc/self/stat), ms. */
function childrenCpuMs(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(f[13]) + Number(f[14])) * 1000) / CLK_TCK;
}

interface Cmd {
  label: string;
  argv: string[];
  /** Exit codes that count as success. */
  ok: number[];
  /** Runs before each timed run, untimed (the cold rows reset the fleet). */
  before?: () => void;
  env?: NodeJS.ProcessEnv;
}
interface Figure {
  label: string;
  wallMs: number;
  cpuMs: number;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function measure(cmds: Cmd[], runs: number, after?: () => void): Figure[] {
  const wall = cmds.map(() => [] as number[]);
  const cpu = cmds.map(() => [] as number[]);
  for (let r = -1; r < runs; r++) {
    cmds.forEach((c, i) => {
      c.before?.();
      const c0 = childrenCpuMs();
      const t0 = process.hrtime.bigint();
      const p = spawnSync(c.argv[0]!, c.argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8', env: c.env ?? process.env });
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      const cms = childrenCpuMs() - c0;
      if (!c.ok.includes(p.status ?? -1)) throw new Error(`${c.argv.join(' ')}: exit ${p.status}\n${p.stderr}`);
      after?.();
      // Run -1 warms the page cache and is not counted.
      if (r >= 0) {
        wall[i]!.push(ms);
        cpu[i]!.push(cms);
      }
    });
  }
  return cmds.map((c, i) => ({ label: c.label, wallMs: median(wall[i]!), cpuMs: cpu[i]!.reduce((a, b) => a + b, 0) / runs }));
}

const fmt = (f: Figure) => `${f.wallMs.toFixed(1)} ms (CPU ${f.cpuMs.toFixed(0)})`;
const bootCell = (r: Figure[]) => (r[1] ? `${fmt(r[0]!)}; without NODE_EXTRA_CA_CERTS ${fmt(r[1])}` : fmt(r[0]!));

function oneSize(fleet: Fleet, cfg: string, runs: number): Record<string, Figure[]> {
  const n = fleet.names.length;
  const node = (args: string[]) => [process.execPath, BIN, ...args];
  const ours = (args: string[]) => [LAUNCHER, ...args];
  const mustConverge = () => {
    const c = checkConverged(fleet);
    if (!c.ok) throw new Error(`not converged per iproute2:\n  ${c.problems.join('\n  ')}`);
  };
  const reset = () => resetFleet(fleet);
  const rows: Record<string, Figure[]> = {};
  // The launcher drops NODE_EXTRA_CA_CERTS (Node parses that file at boot; no
  // command speaks TLS): where it is set, Node's boot is shown both ways.
  const { NODE_EXTRA_CA_CERTS: ca, ...withoutCa } = process.env;
  rows.boot = measure(
    [
      { label: 'node -e 0', argv: [process.execPath, '-e', '0'], ok: [0] },
      ...(ca ? [{ label: 'node -e 0 without CA', argv: [process.execPath, '-e', '0'], ok: [0], env: withoutCa }] : []),
    ],
    runs,
  );
  rows.validate = measure(
    [
      { label: 'launcher', argv: ours(['validate', '-f', cfg]), ok: [0] },
      { label: 'bin.js', argv: node(['validate', '-f', cfg]), ok: [0] },
    ],
    runs,
  );
  rows.cold = measure(
    [
      { label: 'launcher', argv: ours(['apply', '-f', cfg]), ok: [0], before: reset },
      { label: 'bin.js', argv: node(['apply', '-f', cfg]), ok: [0], before: reset },
      { label: 'iproute2', argv: ['bash', coldApplyScript(fleet)], ok: [0], before: reset },
    ],
    runs,
    n <= 50 ? mustConverge : undefined,
  );
  mustConverge();
  rows.check = measure(
    [
      { label: 'launcher', argv: ours(['plan', '-f', cfg, '--detailed-exitcode']), ok: [0] },
      { label: 'bin.js', argv: node(['plan', '-f', cfg, '--detailed-exitcode']), ok: [0] },
      { label: 'iproute2', argv: ['bash', convergedCheckScript(fleet)], ok: [0] },
    ],
    runs,
  );
  return rows;
}

function main(): void {
  const tmp = mkdtempSync(join(tmpdir(), 'suP-startup-'));
  const results: { n: number; rows: Record<string, Figure[]>; load: number[] }[] = [];
  try {
    for (const n of SIZES) {
      const fleet = createFleet(n, 'suP');
      try {
        const cfg = join(tmp, `fleet-${n}.yaml`);
        writeFileSync(cfg, fleetConfig(fleet));
        const load0 = loadavg()[0]!;
        const rows = oneSize(fleet, cfg, RUNS);
        results.push({ n, rows, load: [load0, loadavg()[0]!] });
        console.error(`N=${n} done (load ${load0.toFixed(2)} -> ${loadavg()[0]!.toFixed(2)})`);
      } finally {
        destroyFleet(fleet);
      }
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  const pick = (r: Figure[], l: string) => r.find((f) => f.label === l)!;
  const lines = [
    `Medians of ${RUNS} runs (wall ms; CPU = mean user+sys ms of the process). Node ${process.version}, ${new Date().toISOString()}.`,
    '',
    '| N | node -e 0 | validate: launcher / bin.js | cold apply: launcher / bin.js / iproute2 | ratio | converged check: launcher / bin.js / iproute2 | ratio | load avg |',
    '| --- | --- | --- | --- | --- | --- | --- | --- |',
    ...results.map(({ n, rows, load }) => {
      const c = rows.cold!;
      const k = rows.check!;
      const ratio = (r: Figure[]) => `${(pick(r, 'iproute2').wallMs / pick(r, 'launcher').wallMs).toFixed(1)}×`;
      return `| ${n} | ${bootCell(rows.boot!)} | ${fmt(pick(rows.validate!, 'launcher'))} / ${fmt(pick(rows.validate!, 'bin.js'))} | ${fmt(pick(c, 'launcher'))} / ${fmt(pick(c, 'bin.js'))} / ${fmt(pick(c, 'iproute2'))} | ${ratio(c)} | ${fmt(pick(k, 'launcher'))} / ${fmt(pick(k, 'bin.js'))} / ${fmt(pick(k, 'iproute2'))} | ${ratio(k)} | ${load.map((l) => l.toFixed(2)).join(' → ')} |`;
    }),
  ];
  console.log(lines.join('\n'));
  writeFileSync(join(ROOT, 'bench', 'startup-results.json'), `${JSON.stringify({ node: process.version, runs: RUNS, results }, null, 1)}\n`);
}

main();
