// `npm run bench`: our CLI, the in-process pass and the watch daemon against the
// iproute2 baseline on a fleet of N throwaway namespaces. Every timed run is
// followed by an iproute2 check of the whole fleet, so a fast wrong answer fails
// the bench instead of winning it.
//
//   npm run bench -- --n 200 --runs 3 --idle 60
//   (or BENCH_N, BENCH_RUNS, BENCH_IDLE; --skip-watch for the one-shot parts only,
//   --skip-cli for the in-process passes without the whole-process and iproute2 runs)
//   Growth and soak: --growth 1,50,200,800 --growth-idle 30 --growth-warm 60 --soak-n 200
//   --soak-minutes 2 --soak-sample 5 (BENCH_GROWTH, BENCH_SOAK_MINUTES); --skip-detail,
//   --skip-growth, --skip-soak leave that part out and keep its figures from the
//   previous results.json, so the 30-minute soak can run on its own.
import { type ChildProcess, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { reconcileAll } from '../src/apply/reconcile.js';
import { PassMemo } from '../src/apply/pass-memo.js';
import { loadConfig, resolveAll } from '../src/config/index.js';
import type { DesiredNamespace } from '../src/core/model.js';
import { closeAllNamespaces, openNamespace } from '../src/kernel/namespace.js';
import { listNamespaces } from '../src/kernel/netns.js';
import { LAUNCHER, cpuSeconds, metricsText, now, passesIn, procStatus, ROOT, sleep, startDaemon } from './daemon-proc.js';
import { checkConverged, createFleet, destroyFleet, type Fleet, fleetConfig, resetFleet } from './fixture.js';
import { coldApplyScript, convergedCheckScript, runScript } from './iproute2.js';
import { loadWorstBench, loadWorstReport } from './load-worst.js';
import { type GrowthRow, growthRow, type ScaleContext, soak, type SoakResult } from './scale.js';
import { type ScaleReport, scaleReport } from './scale-report.js';

interface Args {
  n: number;
  runs: number;
  idleSeconds: number;
  resyncMs: number;
  skipWatch: boolean;
  /** Only the in-process passes of the one-shot part (no CLI processes, no iproute2 baseline). */
  skipCli: boolean;
  out: string;
  growth: number[];
  growthIdleSeconds: number;
  growthWarmSeconds: number;
  soakN: number;
  soakMinutes: number;
  soakSampleSeconds: number;
  skipDetail: boolean;
  skipGrowth: boolean;
  skipSoak: boolean;
  /** Start of the namespace names (a random part follows, unique to the run). */
  tag: string;
}

function parseArgs(argv: string[]): Args {
  const get = (flag: string, env: string, dflt: number): number => {
    const i = argv.indexOf(flag);
    const raw = i >= 0 ? argv[i + 1] : process.env[env];
    if (raw === undefined) return dflt;
    const v = Number(raw);
    if (!Number.isInteger(v) || v < 1) throw new Error(`${flag} ${raw}: expected a positive integer`);
    return v;
  };
  const outIdx = argv.indexOf('--out');
  const str = (flag: string, env: string): string | undefined => {
    const i = argv.indexOf(flag);
    return i >= 0 ? argv[i + 1] : process.env[env];
  };
  const growthRaw = str('--growth', 'BENCH_GROWTH') ?? '1,50,200,800';
  const growth = growthRaw.split(',').map(Number);
  if (growth.some((v) => !Number.isInteger(v) || v < 1)) throw new Error(`--growth ${growthRaw}: expected positive integers separated by commas`);
  const tag = str('--tag', 'BENCH_TAG') ?? 'mrb';
  if (!/^[A-Za-z][A-Za-z0-9]{0,5}$/.test(tag)) throw new Error(`--tag ${tag}: expected 1-6 letters or digits, starting with a letter`);
  return {
    growth,
    growthIdleSeconds: get('--growth-idle', 'BENCH_GROWTH_IDLE', 30),
    growthWarmSeconds: get('--growth-warm', 'BENCH_GROWTH_WARM', 60),
    soakN: get('--soak-n', 'BENCH_SOAK_N', 200),
    soakMinutes: get('--soak-minutes', 'BENCH_SOAK_MINUTES', 2),
    soakSampleSeconds: get('--soak-sample', 'BENCH_SOAK_SAMPLE', 5),
    skipDetail: argv.includes('--skip-detail'),
    skipGrowth: argv.includes('--skip-growth'),
    skipSoak: argv.includes('--skip-soak'),
    tag,
    n: get('--n', 'BENCH_N', 200),
    runs: get('--runs', 'BENCH_RUNS', 3),
    idleSeconds: get('--idle', 'BENCH_IDLE', 60),
    resyncMs: 5000,
    skipWatch: argv.includes('--skip-watch'),
    skipCli: argv.includes('--skip-cli'),
    out: outIdx >= 0 ? resolve(argv[outIdx + 1]!) : join(ROOT, 'bench'),
  };
}

const sleepBuf = new Int32Array(new SharedArrayBuffer(4));
/** Blocks without spinning, so a poll loop leaves the CPU to the daemon it measures. */
const sleepSync = (ms: number): void => void Atomics.wait(sleepBuf, 0, 0, ms);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function round(v: number, digits = 1): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}

function assertConverged(fleet: Fleet, what: string, want?: { subflows: number; addAddrAccepted: number }): void {
  const c = checkConverged(fleet, want);
  if (!c.ok) throw new Error(`${what}: the fleet is not converged per iproute2:\n  ${c.problems.join('\n  ')}`);
}

function cli(args: string[]): { ms: number; status: number | null; stderr: string; stdout: string } {
  const t0 = now();
  const r = spawnSync(LAUNCHER, args, { encoding: 'utf8', maxBuffer: 64 << 20 });
  return { ms: now() - t0, status: r.status, stderr: r.stderr, stdout: r.stdout };
}

function ip(args: string[]): string {
  const r = spawnSync('ip', args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr.trim()}`);
  return r.stdout;
}

function ipEndpoints(ns: string): { address: string; id: number; dev?: string }[] {
  return JSON.parse(ip(['-n', ns, '-j', 'mptcp', 'endpoint', 'show']) || '[]') as { address: string; id: number }[];
}

/** Polls (our own netlink, every 0.5 ms) until `done` holds; the elapsed ms since t0, or throws after `timeoutMs`. */
async function pollUntil(t0: number, timeoutMs: number, what: string, done: () => Promise<boolean>): Promise<number> {
  for (;;) {
    if (await done()) return now() - t0;
    if (now() - t0 > timeoutMs) throw new Error(`${what}: not seen within ${timeoutMs} ms`);
    sleepSync(0.5);
  }
}

async function hasEndpoint(ns: string, address: string): Promise<boolean> {
  return (await openNamespace(ns).dumpEndpoints()).some((e) => e.address === address);
}

// ---------------------------------------------------------------- one-shot parts

interface OneShotRun {
  cliColdMs: number;
  cliConvergedPlanMs: number;
  cliConvergedApplyMs: number;
  ipColdMs: number;
  ipCheckMs: number;
  passColdOpenMs: number;
  passColdMs: number;
  passConvergedOpenMs: number;
  passConvergedMs: number;
  /** Converged passes that cannot use the previous pass's memo (a new desired object each time). */
  passConvergedFullMs: number;
}

async function desiredFor(cfgPath: string): Promise<DesiredNamespace[]> {
  const loaded = await loadConfig(cfgPath, { node: 'bench' });
  if (!loaded.ok) throw new Error(`bench config invalid: ${JSON.stringify(loaded.diagnostics)}`);
  return resolveAll(loaded.config, 'bench', listNamespaces());
}

// The memo a daemon owns for its lifetime; the in-process passes share it as the daemon's would.
const memo = new PassMemo();
const passMemoStats = memo.stats;

async function timedPass(desired: DesiredNamespace[], what: string): Promise<number> {
  const existing = listNamespaces();
  const t0 = now();
  const results = await reconcileAll(desired, { mode: 'enforce', existing, openNamespace, concurrency: 8, memo });
  const ms = now() - t0;
  const bad = results.filter((r) => !r.converged || r.errors.length > 0);
  if (bad.length) throw new Error(`${what}: ${bad.length} namespaces not converged: ${JSON.stringify(bad[0])}`);
  return ms;
}

type ProcessRuns = Pick<OneShotRun, 'cliColdMs' | 'cliConvergedPlanMs' | 'cliConvergedApplyMs' | 'ipColdMs' | 'ipCheckMs'>;

function processRuns(fleet: Fleet, cfgPath: string, log: (s: string) => void): ProcessRuns {
  // Our CLI, a whole process each time.
  resetFleet(fleet);
  const cold = cli(['apply', '-f', cfgPath]);
  if (cold.status !== 0) throw new Error(`apply (cold) exited ${cold.status}: ${cold.stderr}${cold.stdout.slice(-2000)}`);
  assertConverged(fleet, 'CLI cold apply');
  const plan = cli(['plan', '-f', cfgPath, '--detailed-exitcode']);
  if (plan.status !== 0) throw new Error(`plan --detailed-exitcode on a converged fleet exited ${plan.status}: ${plan.stderr}`);
  const apply = cli(['apply', '-f', cfgPath]);
  if (apply.status !== 0) throw new Error(`apply (converged) exited ${apply.status}: ${apply.stderr}`);
  assertConverged(fleet, 'CLI converged apply');
  log(`  cli: cold apply ${round(cold.ms)} ms, converged plan ${round(plan.ms)} ms, converged apply ${round(apply.ms)} ms`);

  // The iproute2 baseline, same work.
  resetFleet(fleet);
  const ipCold = runScript(coldApplyScript(fleet));
  assertConverged(fleet, 'iproute2 cold apply');
  const ipCheck = runScript(convergedCheckScript(fleet));
  log(`  iproute2: cold ${round(ipCold)} ms, check ${round(ipCheck)} ms`);
  return { cliColdMs: cold.ms, cliConvergedPlanMs: plan.ms, cliConvergedApplyMs: apply.ms, ipColdMs: ipCold, ipCheckMs: ipCheck };
}

async function oneShotRun(fleet: Fleet, cfgPath: string, desired: DesiredNamespace[], log: (s: string) => void, skipCli: boolean): Promise<OneShotRun> {
  const procs: ProcessRuns = skipCli
    ? { cliColdMs: NaN, cliConvergedPlanMs: NaN, cliConvergedApplyMs: NaN, ipColdMs: NaN, ipCheckMs: NaN }
    : processRuns(fleet, cfgPath, log);

  // In-process, as the daemon runs it: first with handles opened inside the timing, then cached.
  resetFleet(fleet);
  closeAllNamespaces();
  const passColdOpen = await timedPass(desired, 'in-process cold pass (opening handles)');
  assertConverged(fleet, 'in-process cold pass (opening handles)');
  // Steady state as in a long-running daemon: handles cached, the same desired
  // objects every pass (as between two config edits), and the code warmed up by a
  // few passes first; the median of 10 passes after that. Every pass reads the
  // kernel; one that finds the bytes of the previous converged pass is answered
  // from its memo, hence the iproute2 check after them.
  for (let i = 0; i < 5; i++) await timedPass(desired, 'in-process converged pass (warm-up)');
  const hits0 = passMemoStats.hits;
  const passConvergedSteady: number[] = [];
  for (let i = 0; i < 10; i++) passConvergedSteady.push(await timedPass(desired, 'in-process converged pass'));
  assertConverged(fleet, 'in-process converged passes');
  const hits = passMemoStats.hits - hits0;
  // The same without the memo: new desired objects (copied outside the timing) each pass.
  const fresh = () => desired.map((d) => structuredClone(d));
  for (let i = 0; i < 5; i++) await timedPass(fresh(), 'in-process converged full pass (warm-up)');
  const passConvergedFull: number[] = [];
  for (let i = 0; i < 10; i++) {
    const d = fresh();
    passConvergedFull.push(await timedPass(d, 'in-process converged full pass'));
  }
  resetFleet(fleet);
  const passCold = await timedPass(desired, 'in-process cold pass (cached handles)');
  assertConverged(fleet, 'in-process cold pass (cached handles)');
  closeAllNamespaces();
  const passConvergedOpen = await timedPass(desired, 'in-process converged pass (opening handles)');
  const passConverged = median(passConvergedSteady);
  const passConvergedFullMs = median(passConvergedFull);
  log(
    `  in-process: cold ${round(passCold)} ms (incl. open ${round(passColdOpen)}), converged ${round(passConverged)} ms (${hits}/${10 * desired.length} namespace passes from the memo; without it ${round(passConvergedFullMs)} ms; incl. open ${round(passConvergedOpen)})`,
  );
  return {
    ...procs,
    passColdOpenMs: passColdOpen,
    passColdMs: passCold,
    passConvergedOpenMs: passConvergedOpen,
    passConvergedMs: passConverged,
    passConvergedFullMs,
  };
}

// ---------------------------------------------------------------- watch daemon

interface WatchRun {
  driftRepairMs: number;
  addrEventMs: number;
  addrRemovedMs: number;
  editFirstMs: number;
  editAllMs: number;
}

interface WatchResult {
  readyMs: number;
  runs: WatchRun[];
  idle: { seconds: number; cpuPercent: number; passes: number }[];
  vmRssMb: number;
  vmHwmMb: number;
}

async function watchBench(fleet: Fleet, dir: string, args: Args, log: (s: string) => void, setChild: (c: ChildProcess | undefined) => void): Promise<WatchResult> {
  const cfg = join(dir, 'watch.yaml');
  let subflows = 8;
  writeFileSync(cfg, fleetConfig(fleet, { derived: true, subflows }));
  resetFleet(fleet);
  const d = await startDaemon(cfg, join(dir, 'watch.log'), args.resyncMs, setChild);
  const { child, port, readyMs, fail } = d;
  const exited = d.exited;

  try {
    log(`  watch: ready after ${round(readyMs)} ms`);
    assertConverged(fleet, 'watch first pass');

    const runs: WatchRun[] = [];
    for (let r = 0; r < args.runs; r++) {
      const ns = fleet.names[(r * 7) % fleet.names.length]!;
      // Drift: endpoints change without any notification, so only the resync finds it.
      const victim = ipEndpoints(ns).find((e) => e.address === '192.0.2.1');
      if (!victim) throw new Error(`${ns}: no endpoint 192.0.2.1 to delete`);
      let t = now();
      ip(['-n', ns, 'mptcp', 'endpoint', 'delete', 'id', String(victim.id)]);
      const drift = await pollUntil(t, args.resyncMs + 2000, 'drift repair', () => hasEndpoint(ns, '192.0.2.1'));
      if (!ipEndpoints(ns).some((e) => e.address === '192.0.2.1')) throw new Error('drift repair not confirmed by ip');

      // Address events: the kernel holds at most 8 endpoints, so one of veth1's
      // addresses goes away (its derived endpoint must follow) and comes back.
      const extra = '198.51.100.4';
      t = now();
      ip(['-n', ns, 'addr', 'del', `${extra}/24`, 'dev', 'veth1']);
      const addrGone = await pollUntil(t, args.resyncMs + 2000, 'address removal', async () => !(await hasEndpoint(ns, extra)));
      if (ipEndpoints(ns).some((e) => e.address === extra)) throw new Error('address removal not confirmed by ip');
      t = now();
      ip(['-n', ns, 'addr', 'add', `${extra}/24`, 'dev', 'veth1', 'nodad']);
      const addr = await pollUntil(t, args.resyncMs + 2000, 'address event', () => hasEndpoint(ns, extra));
      if (!ipEndpoints(ns).some((e) => e.address === extra && e.dev === 'veth1')) throw new Error('address event endpoint not confirmed by ip');

      // Config edit: atomic save (write + rename), the change must reach every namespace.
      subflows = subflows === 8 ? 7 : 8;
      const tmp = join(dir, `.watch.yaml.${r}`);
      writeFileSync(tmp, fleetConfig(fleet, { derived: true, subflows }));
      const ks = fleet.names.map((n) => openNamespace(n));
      const left = new Set(ks);
      let first = 0;
      t = now();
      renameSync(tmp, cfg);
      const all = await pollUntil(t, 10_000, 'config edit', async () => {
        for (const k of left) {
          if ((await k.readLive({ limits: true })).limits.subflows === subflows) {
            left.delete(k);
            if (!first) first = now() - t;
          }
        }
        return left.size === 0;
      });
      assertConverged(fleet, 'watch after config edit', { subflows, addAddrAccepted: 8 });
      const run = { driftRepairMs: drift, addrEventMs: addr, addrRemovedMs: addrGone, editFirstMs: first, editAllMs: all };
      log(`  watch run ${r + 1}: drift ${round(drift)} ms, address->endpoint ${round(addr)} ms (removal ${round(addrGone)}), edit->first ${round(first)} ms, all ${round(all)} ms`);
      runs.push(run);
    }
    if (subflows !== 8) {
      // Back to the fleet's standard state for the idle measurement.
      subflows = 8;
      writeFileSync(join(dir, '.watch.yaml.end'), fleetConfig(fleet, { derived: true, subflows }));
      renameSync(join(dir, '.watch.yaml.end'), cfg);
      await sleep(1000);
    }
    assertConverged(fleet, 'watch before idle');

    // Idle: nothing changes, the resync timer still passes over every namespace.
    await sleep(2000);
    const idle: WatchResult['idle'] = [];
    for (let r = 0; r < args.runs; r++) {
      const c0 = cpuSeconds(child.pid!);
      const p0 = passesIn(await metricsText(port));
      const w0 = now();
      await sleep(args.idleSeconds * 1000);
      const secs = (now() - w0) / 1000;
      const c1 = cpuSeconds(child.pid!);
      const p1 = passesIn(await metricsText(port));
      if (exited()) throw fail(`watch ${exited()} while idle`);
      idle.push({ seconds: secs, cpuPercent: ((c1 - c0) / secs) * 100, passes: p1 - p0 });
      log(`  idle window ${r + 1}: cpu ${round(((c1 - c0) / secs) * 100, 2)} % over ${round(secs)} s, ${p1 - p0} passes`);
    }
    const mem = procStatus(child.pid!);
    assertConverged(fleet, 'watch after idle');
    return { readyMs, runs, idle, vmRssMb: mem.rssMb, vmHwmMb: mem.hwmMb };
  } finally {
    await d.stop();
  }
}

// ---------------------------------------------------------------- report

interface Target {
  name: string;
  value: number;
  unit: string;
  limit: number;
  /** true: value must be at least limit. */
  atLeast?: boolean;
  note?: string;
}

function machine() {
  const cpu = cpus();
  return {
    nproc: cpu.length,
    cpuModel: cpu[0]?.model ?? 'unknown',
    kernel: release(),
    node: process.version,
    date: new Date().toISOString(),
  };
}

function writeReadme(outDir: string, res: DetailResults, scaleMd: string): void {
  const m = res.machine;
  const rows = res.table.map((r) => `| ${r.what} | ${r.ours} | ${r.baseline} | ${r.ratio} |`);
  const trows = res.targets.map((t) => `| ${t.name} | ${t.value} ${t.unit} | ${t.atLeast ? '≥' : '≤'} ${t.limit} ${t.unit} | ${t.met ? 'met' : '**missed**'} |`);
  const text = `\`npm run bench\` (builds first) creates N throwaway namespaces (a veth pair, 8
documentation addresses each), measures, checks every result with iproute2, and
removes them. Options: \`-- --n 200 --runs 3 --idle 60 --skip-watch --skip-cli\` (or
BENCH_N, BENCH_RUNS, BENCH_IDLE) for the detailed part; \`--growth 1,50,200,800
--growth-idle 30 --growth-warm 60\` for the growth table (the idle window starts once the daemon has run
\`--growth-warm\` seconds, past V8's tier-up of the pass code); \`--soak-n 200 --soak-minutes 30 --soak-sample 5\`
for the soak (default 2 minutes); \`--skip-detail --skip-growth --skip-soak\` keep that
part's figures from the previous run. Raw figures: [results.json](results.json).

Work per namespace: 8 subflow endpoints, limits 8/8, rp_filter loose on 2
interfaces. Figures are medians of ${res.params.runs} runs at N=${res.params.n}.

- *CLI* is a whole process: \`bin/mptcp-reconciler apply -f cfg\` (the package bin, from the start-up snapshot; cold), and
  \`plan --detailed-exitcode\` for the converged check (\`apply\` on a converged
  fleet is listed too).
- *iproute2* is a shell loop: \`ip -n NS -batch\` + \`ip netns exec NS sh -c 'echo >rp_filter'\`
  (cold), and \`ip -n NS -j mptcp endpoint show\` + \`ip -n NS mptcp limits\` (check).
- *in-process pass* is \`reconcileAll\` over the fleet inside the bench process, as
  the daemon runs it: "cached" reuses the namespace handles (the daemon's steady
  state; the targets refer to it), "incl. open" opens them inside the timing.
- *watch* is the built binary (\`watch --resync ${res.params.resyncMs}ms\`); t0 is taken just before
  spawning the \`ip\` command that makes the change (so \`ip\`'s own start-up is
  included), and the end is seen by polling our own netlink dump every 0.5 ms,
  then confirmed with \`ip\`. Config edit: atomic rename of an edited file
  (limits.subflows 8 <-> 7); "all" is the change visible in all N namespaces.
- Idle CPU: utime+stime of the daemon from /proc/PID/stat over ${res.params.idleSeconds} s windows,
  only the resync passes running.

Machine: ${m.nproc} CPUs, ${m.cpuModel}, Linux ${m.kernel}, Node ${m.node}, ${m.date}
(load average at start ${res.load.start.join(' ')}, at end ${res.load.end.join(' ')}).

| measurement | ours | iproute2 | ratio |
| --- | --- | --- | --- |
${rows.join('\n')}

| target (N=${res.params.n}) | value | limit | |
| --- | --- | --- | --- |
${trows.join('\n')}
${scaleMd ? `\n${scaleMd}` : ''}`;
  // Only the part between the markers is generated; notes around it are kept.
  const path = join(outDir, 'README.md');
  const START = '<!-- results:start (written by npm run bench) -->';
  const END = '<!-- results:end -->';
  let prev = '';
  try {
    prev = readFileSync(path, 'utf8');
  } catch {
    /* first run */
  }
  const a = prev.indexOf(START);
  const b = prev.indexOf(END);
  const block = `${START}\n${text}${END}`;
  writeFileSync(path, a >= 0 && b > a ? `${prev.slice(0, a)}${block}${prev.slice(b + END.length)}` : `${block}\n`);
}

type DetailResults = ReturnType<typeof buildResults>;

function buildResults(args: Args, one: OneShotRun[], watch: WatchResult | undefined, load: { start: number[]; end: number[] }) {
  const med = (k: keyof OneShotRun) => median(one.map((r) => r[k]));
  const o = {
    cliColdMs: med('cliColdMs'),
    cliConvergedPlanMs: med('cliConvergedPlanMs'),
    cliConvergedApplyMs: med('cliConvergedApplyMs'),
    ipColdMs: med('ipColdMs'),
    ipCheckMs: med('ipCheckMs'),
    passColdOpenMs: med('passColdOpenMs'),
    passColdMs: med('passColdMs'),
    passConvergedOpenMs: med('passConvergedOpenMs'),
    passConvergedMs: med('passConvergedMs'),
    passConvergedFullMs: med('passConvergedFullMs'),
  };
  const ms = (v: number) => `${round(v)} ms`;
  const table = [
    { what: 'cold apply, whole process', ours: ms(o.cliColdMs), baseline: ms(o.ipColdMs), ratio: `${round(o.ipColdMs / o.cliColdMs)}× faster` },
    { what: 'converged check, whole process (plan --detailed-exitcode)', ours: ms(o.cliConvergedPlanMs), baseline: ms(o.ipCheckMs), ratio: `${round(o.ipCheckMs / o.cliConvergedPlanMs)}× faster` },
    { what: 'converged apply, whole process', ours: ms(o.cliConvergedApplyMs), baseline: ms(o.ipCheckMs), ratio: `${round(o.ipCheckMs / o.cliConvergedApplyMs)}× faster` },
    { what: 'in-process pass, cold (cached handles)', ours: ms(o.passColdMs), baseline: '', ratio: '' },
    { what: 'in-process pass, cold (incl. opening handles)', ours: ms(o.passColdOpenMs), baseline: '', ratio: '' },
    { what: 'in-process pass, converged (cached handles)', ours: ms(o.passConvergedMs), baseline: '', ratio: '' },
    { what: 'in-process pass, converged, each a new desired object (no memo)', ours: ms(o.passConvergedFullMs), baseline: '', ratio: '' },
    { what: 'in-process pass, converged (incl. opening handles)', ours: ms(o.passConvergedOpenMs), baseline: '', ratio: '' },
  ];
  const targets: Target[] = [
    { name: 'CLI cold apply vs iproute2', value: round(o.ipColdMs / o.cliColdMs), unit: '×', limit: 5, atLeast: true },
    { name: 'CLI converged check vs iproute2', value: round(o.ipCheckMs / o.cliConvergedPlanMs), unit: '×', limit: 5, atLeast: true },
    { name: 'in-process pass, cold (cached handles)', value: round(o.passColdMs), unit: 'ms', limit: 65 },
    { name: 'in-process pass, converged (cached handles)', value: round(o.passConvergedMs), unit: 'ms', limit: 10 },
  ];
  let w: Record<string, number> | undefined;
  if (watch) {
    const wm = (k: keyof WatchRun) => median(watch.runs.map((r) => r[k]));
    w = {
      readyMs: watch.readyMs,
      driftRepairMedianMs: wm('driftRepairMs'),
      driftRepairMaxMs: Math.max(...watch.runs.map((r) => r.driftRepairMs)),
      addrEventMs: wm('addrEventMs'),
      addrRemovedMs: wm('addrRemovedMs'),
      editFirstMs: wm('editFirstMs'),
      editAllMs: wm('editAllMs'),
      idleCpuPercent: median(watch.idle.map((i) => i.cpuPercent)),
      vmRssMb: watch.vmRssMb,
      vmHwmMb: watch.vmHwmMb,
    };
    table.push(
      { what: 'watch: start until ready (first pass over all)', ours: ms(w.readyMs!), baseline: '', ratio: '' },
      { what: 'watch: drift repaired (median / max)', ours: `${ms(w.driftRepairMedianMs!)} / ${ms(w.driftRepairMaxMs!)}`, baseline: '', ratio: '' },
      { what: 'watch: address added → endpoint', ours: ms(w.addrEventMs!), baseline: '', ratio: '' },
      { what: 'watch: address removed → endpoint gone', ours: ms(w.addrRemovedMs!), baseline: '', ratio: '' },
      { what: 'watch: config edit → first namespace / all N', ours: `${ms(w.editFirstMs!)} / ${ms(w.editAllMs!)}`, baseline: '', ratio: '' },
      { what: 'watch: idle CPU', ours: `${round(w.idleCpuPercent!, 2)} %`, baseline: '', ratio: '' },
      { what: 'watch: VmRSS / VmHWM', ours: `${round(w.vmRssMb!)} / ${round(w.vmHwmMb!)} MB`, baseline: '', ratio: '' },
    );
    targets.push(
      { name: 'daemon RSS (VmRSS)', value: round(w.vmRssMb!), unit: 'MB', limit: 80 },
      { name: 'daemon idle CPU', value: round(w.idleCpuPercent!, 2), unit: '%', limit: 0.5 },
      { name: 'address event → endpoint', value: round(w.addrEventMs!), unit: 'ms', limit: 50 },
      { name: 'config edit → converged (all N)', value: round(w.editAllMs!), unit: 'ms', limit: 200 },
      { name: 'drift repaired (max over runs)', value: round(w.driftRepairMaxMs!), unit: 'ms', limit: args.resyncMs + 50 },
    );
  }
  return {
    machine: machine(),
    load,
    params: { n: args.n, runs: args.runs, idleSeconds: args.idleSeconds, resyncMs: args.resyncMs },
    medians: { ...o, ...(w ?? {}) },
    runs: { oneShot: one, watch: watch ?? null },
    // --skip-cli leaves the whole-process rows unmeasured (NaN): not shown.
    table: table.filter((r) => !r.ours.includes('NaN')),
    targets: targets.filter((t) => !Number.isNaN(t.value)).map((t) => ({ ...t, met: t.atLeast ? t.value >= t.limit : t.value <= t.limit })),
  };
}

// ---------------------------------------------------------------- main

function previousResults(out: string): (Partial<DetailResults> & { scale?: ScaleReport }) | undefined {
  try {
    return JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as Partial<DetailResults> & { scale?: ScaleReport };
  } catch {
    return undefined;
  }
}

async function detailPart(args: Args, dir: string, log: (s: string) => void, ctx: ScaleContext): Promise<DetailResults> {
  const load = { start: loadavg().map((v) => round(v, 2)), end: [] as number[] };
  log(`bench: N=${args.n}, ${args.runs} runs, load average ${load.start.join(' ')}`);
  if (load.start[0]! > 0.5) log('  note: the machine is not quiet (load > 0.5); figures may be distorted');
  const t = now();
  const fleet = createFleet(args.n, args.tag);
  ctx.setFleet(fleet);
  try {
    log(`  fleet of ${args.n} namespaces created in ${round(now() - t)} ms (prefix ${fleet.prefix})`);
    const cfgPath = join(dir, 'fleet.yaml');
    writeFileSync(cfgPath, fleetConfig(fleet));
    const desired = await desiredFor(cfgPath);
    if (desired.length !== args.n) throw new Error(`config resolved to ${desired.length} namespaces, expected ${args.n}`);
    const one: OneShotRun[] = [];
    for (let r = 0; r < args.runs; r++) {
      log(`run ${r + 1}/${args.runs}`);
      one.push(await oneShotRun(fleet, cfgPath, desired, log, args.skipCli));
    }
    closeAllNamespaces();
    let watch: WatchResult | undefined;
    if (!args.skipWatch) {
      log('watch');
      watch = await watchBench(fleet, dir, args, log, ctx.setChild);
    }
    log('load: validate on worst-case inputs');
    const loadWorst = loadWorstReport(loadWorstBench(args.runs, log));
    load.end = loadavg().map((v) => round(v, 2));
    const res = buildResults(args, one, watch, load);
    res.table.push(...loadWorst.rows);
    res.targets.push(loadWorst.target);
    return res;
  } finally {
    closeAllNamespaces();
    destroyFleet(fleet);
    ctx.setFleet(undefined);
  }
}

async function scalePart(args: Args, prev: ScaleReport | undefined, log: (s: string) => void, ctx: ScaleContext): Promise<ScaleReport> {
  const rep: ScaleReport = { growth: prev?.growth ?? null, soak: prev?.soak ?? null };
  if (!args.skipGrowth) {
    log(`growth: N = ${args.growth.join(', ')}`);
    const rows: GrowthRow[] = [];
    for (const n of args.growth) rows.push(await growthRow(n, args.growthIdleSeconds, ctx, args.growthWarmSeconds));
    rep.growth = { date: new Date().toISOString(), resyncMs: args.resyncMs, rows };
  }
  if (!args.skipSoak) {
    log(`soak: N=${args.soakN}, ${args.soakMinutes} min`);
    const s: SoakResult = await soak(args.soakN, args.soakMinutes, args.soakSampleSeconds, ctx);
    rep.soak = { date: new Date().toISOString(), resyncMs: args.resyncMs, ...s };
  }
  return rep;
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  const log = (s: string) => process.stdout.write(`${s}\n`);
  const dir = mkdtempSync(join(tmpdir(), 'mrbench-'));
  let fleet: Fleet | undefined;
  let child: ChildProcess | undefined;
  let cleaned = false;
  const cleanup = () => {
    if (cleaned) return;
    cleaned = true;
    if (child?.pid && child.exitCode === null) child.kill('SIGKILL');
    closeAllNamespaces();
    if (fleet) destroyFleet(fleet);
    rmSync(dir, { recursive: true, force: true });
  };
  const onSignal = (sig: NodeJS.Signals) => {
    log(`\n${sig}: removing the bench namespaces`);
    cleanup();
    process.exit(130);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const ctx: ScaleContext = { dir, tag: args.tag, resyncMs: args.resyncMs, log, setChild: (c) => (child = c), setFleet: (f) => (fleet = f) };
  try {
    const prev = previousResults(args.out);
    let res: DetailResults | undefined;
    if (!args.skipDetail) res = await detailPart(args, dir, log, ctx);
    else if (prev?.table && prev.targets && prev.machine && prev.params && prev.load) res = prev as DetailResults;
    const scale = await scalePart(args, prev?.scale, log, ctx);
    const sc = scaleReport(scale);
    if (res) {
      log('');
      for (const row of res.table) log(`${row.what.padEnd(56)} ${row.ours.padStart(22)} ${row.baseline.padStart(10)} ${row.ratio}`);
      log('');
      for (const tg of res.targets) log(`${tg.met ? 'met    ' : 'MISSED '} ${tg.name}: ${tg.value} ${tg.unit} (${tg.atLeast ? '≥' : '≤'} ${tg.limit})`);
    }
    log(`\n${sc.markdown}`);
    const { scale: _old, scaleTargets: _oldT, ...detail } = (res ?? {}) as DetailResults & { scale?: unknown; scaleTargets?: unknown };
    writeFileSync(join(args.out, 'results.json'), `${JSON.stringify({ ...detail, scale, scaleTargets: sc.targets }, null, 2)}\n`);
    if (res) writeReadme(args.out, res, sc.markdown);
    log(`\nwritten: ${join(args.out, 'results.json')}${res ? `, ${join(args.out, 'README.md')}` : ''}`);
    return 0;
  } finally {
    cleanup();
  }
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`bench failed: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
