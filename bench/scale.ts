// Growth with the fleet size (one row per N: whole processes against iproute2,
// and the daemon's start-up, memory and idle cost) and the soak: the daemon under
// steady churn for a while, its RSS sampled, to show whether memory stays bounded.
import { type ChildProcess, spawnSync } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { LAUNCHER, cpuSeconds, heapUsedMb, metricsText, now, passesIn, procStatus, sleep, startDaemon } from './daemon-proc.js';
import { checkConverged, createFleet, destroyFleet, type Fleet, fleetConfig, resetFleet } from './fixture.js';
import { coldApplyScript, convergedCheckScript, runScript } from './iproute2.js';
import { readFloor, type ReadFloor } from './read-floor.js';

const round = (v: number, d = 1) => Math.round(v * 10 ** d) / 10 ** d;
const load1 = () => round(loadavg()[0]!, 2);

function cli(args: string[]): number {
  const t0 = now();
  const r = spawnSync(LAUNCHER, args, { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`${args.join(' ')} exited ${r.status}: ${r.stderr}${r.stdout.slice(-2000)}`);
  return now() - t0;
}

function assertConverged(fleet: Fleet, what: string): void {
  const c = checkConverged(fleet);
  if (!c.ok) throw new Error(`${what}: the fleet is not converged per iproute2:\n  ${c.problems.join('\n  ')}`);
}

export interface GrowthRow {
  n: number;
  cliColdMs: number;
  ipColdMs: number;
  cliCheckMs: number;
  ipCheckMs: number;
  watchReadyMs: number;
  /** VmRSS after the idle window. */
  rssMb: number;
  hwmMb: number;
  heapUsedMb: number;
  idleCpuPercent: number;
  /**
   * A second daemon in the same window that manages no namespace: what the
   * machine's other activity costs any daemon (process exec events, /run/netns
   * changes), not the resync passes.
   */
  baselineCpuPercent: number;
  idleSeconds: number;
  /** The reads a converged resync cannot skip, alone in a loop in this process (bench/read-floor.ts). */
  floor?: ReadFloor;
  /** 1-minute load average when the row started and ended. */
  load: [number, number];
}

export interface ScaleContext {
  dir: string;
  tag: string;
  resyncMs: number;
  log(s: string): void;
  setChild(c: ChildProcess | undefined): void;
  setFleet(f: Fleet | undefined): void;
}

/** One row of the growth table: a fresh fleet of n namespaces, removed afterwards. */
export async function growthRow(n: number, idleSeconds: number, ctx: ScaleContext, warmSeconds = 60): Promise<GrowthRow> {
  const l0 = load1();
  const fleet = createFleet(n, ctx.tag);
  ctx.setFleet(fleet);
  try {
    const cfg = join(ctx.dir, `growth-${n}.yaml`);
    writeFileSync(cfg, fleetConfig(fleet));
    resetFleet(fleet);
    const cliColdMs = cli(['apply', '-f', cfg]);
    assertConverged(fleet, `N=${n} CLI cold apply`);
    const cliCheckMs = cli(['plan', '-f', cfg, '--detailed-exitcode']);
    resetFleet(fleet);
    const ipColdMs = runScript(coldApplyScript(fleet));
    assertConverged(fleet, `N=${n} iproute2 cold apply`);
    const ipCheckMs = runScript(convergedCheckScript(fleet));

    // The daemon from a cold fleet: ready = its first pass over all N converged.
    resetFleet(fleet);
    const started = now();
    const d = await startDaemon(cfg, join(ctx.dir, `growth-${n}.log`), ctx.resyncMs, ctx.setChild);
    try {
      assertConverged(fleet, `N=${n} watch first pass`);
      const none = join(ctx.dir, 'growth-none.yaml');
      writeFileSync(none, 'version: 1\nnamespaces:\n  - netns: "scqbench-none-*"\n    limits: { subflows: 2 }\n');
      const base = await startDaemon(none, join(ctx.dir, 'growth-none.log'), ctx.resyncMs, () => {});
      let c0: number, b0: number, w0: number, secs: number, idleCpuPercent: number, baselineCpuPercent: number;
      try {
        // Past V8's tier-up of the pass code (compiles go on for about 45 s after
        // start, fed by one call per namespace and resync), then the idle window.
        await sleep(Math.max(2 * ctx.resyncMs, warmSeconds * 1000 - (now() - started)));
        c0 = cpuSeconds(d.child.pid!);
        b0 = cpuSeconds(base.child.pid!);
        w0 = now();
        await sleep(idleSeconds * 1000);
        secs = (now() - w0) / 1000;
        idleCpuPercent = ((cpuSeconds(d.child.pid!) - c0) / secs) * 100;
        baselineCpuPercent = ((cpuSeconds(base.child.pid!) - b0) / secs) * 100;
      } finally {
        await base.stop();
      }
      if (d.exited()) throw d.fail(`watch ${d.exited()} while idle`);
      const mem = procStatus(d.child.pid!);
      const heap = heapUsedMb(await metricsText(d.port));
      const row: GrowthRow = {
        n, cliColdMs, ipColdMs, cliCheckMs, ipCheckMs, watchReadyMs: d.readyMs,
        rssMb: mem.rssMb, hwmMb: mem.hwmMb, heapUsedMb: heap, idleCpuPercent, baselineCpuPercent, idleSeconds: secs, load: [l0, load1()],
      };
      await d.stop();
      // The daemon is gone: the fleet is still converged, and only this process reads it.
      row.floor = await readFloor(fleet.names, ctx.resyncMs);
      ctx.log(
        `  N=${n}: cold ${round(cliColdMs)} / ${round(ipColdMs)} ms, check ${round(cliCheckMs)} / ${round(ipCheckMs)} ms, ready ${round(d.readyMs)} ms, ` +
          `RSS ${round(mem.rssMb)} MB (HWM ${round(mem.hwmMb)}, heap ${round(heap)}), idle ${round(idleCpuPercent, 2)} % (no namespaces: ${round(baselineCpuPercent, 2)} %), ` +
          `reads alone ${round(row.floor.percent, 2)} % (kernel ${round(row.floor.kernelPercent, 2)} %) (load ${row.load.join(' -> ')})`,
      );
      return row;
    } finally {
      await d.stop();
    }
  } finally {
    destroyFleet(fleet);
    ctx.setFleet(undefined);
  }
}

export interface SoakSample {
  /** Seconds since the daemon was ready. */
  t: number;
  rssMb: number;
  hwmMb: number;
  heapUsedMb: number;
  cpuSeconds: number;
  load: number;
}

export interface SoakResult {
  n: number;
  minutes: number;
  addressChanges: number;
  endpointDeletes: number;
  passes: number;
  readyMs: number;
  samples: SoakSample[];
}

const EXTRA = '198.51.100.4';
const FIGHT_WINDOW_MS = 6 * 60_000;

function ipQuiet(args: string[]): void {
  const r = spawnSync('ip', args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr.trim()}`);
}

function deleteEndpointByHand(ns: string): boolean {
  const eps = JSON.parse(spawnSync('ip', ['-n', ns, '-j', 'mptcp', 'endpoint', 'show'], { encoding: 'utf8' }).stdout || '[]') as { address: string; id: number }[];
  const victim = eps.find((e) => e.address === '192.0.2.1');
  if (!victim) return false;
  ipQuiet(['-n', ns, 'mptcp', 'endpoint', 'delete', 'id', String(victim.id)]);
  return true;
}

/**
 * The soak: N namespaces under `watch`; every second one namespace's address
 * 198.51.100.4 goes or comes back (its derived endpoint follows), every 5 s an
 * endpoint is deleted by hand (the resync repairs it). RSS is sampled every
 * `sampleSeconds`; at the end the fleet must be converged per iproute2.
 */
export async function soak(n: number, minutes: number, sampleSeconds: number, ctx: ScaleContext): Promise<SoakResult> {
  const fleet = createFleet(n, ctx.tag);
  ctx.setFleet(fleet);
  try {
    const cfg = join(ctx.dir, 'soak.yaml');
    writeFileSync(cfg, fleetConfig(fleet, { derived: true }));
    resetFleet(fleet);
    const d = await startDaemon(cfg, join(ctx.dir, 'soak.log'), ctx.resyncMs, ctx.setChild);
    try {
      const samples: SoakSample[] = [];
      const sample = async (t: number) => {
        const mem = procStatus(d.child.pid!);
        const text = await metricsText(d.port);
        samples.push({ t: round(t), rssMb: round(mem.rssMb), hwmMb: round(mem.hwmMb), heapUsedMb: round(heapUsedMb(text)), cpuSeconds: cpuSeconds(d.child.pid!), load: load1() });
        return text;
      };
      const t0 = now();
      const passes0 = passesIn(await sample(0));
      const gone = new Set<string>();
      let tick = 0;
      let addressChanges = 0;
      let endpointDeletes = 0;
      const lastHit = new Map<string, number>();
      let nextSample = sampleSeconds;
      while ((now() - t0) / 1000 < minutes * 60) {
        tick++;
        const ns = fleet.names[tick % n]!;
        if (gone.delete(ns)) ipQuiet(['-n', ns, 'addr', 'add', `${EXTRA}/24`, 'dev', 'veth1', 'nodad']);
        else {
          ipQuiet(['-n', ns, 'addr', 'del', `${EXTRA}/24`, 'dev', 'veth1']);
          gone.add(ns);
        }
        addressChanges++;
        if (tick % 5 === 0) {
          // A namespace is hit by hand at most once per fight window (5 min): more is a
          // fight, which the daemon answers by backing off, and the soak is about memory.
          const victim = fleet.names[(tick / 5) % n]!;
          if ((lastHit.get(victim) ?? -Infinity) < now() - FIGHT_WINDOW_MS && deleteEndpointByHand(victim)) {
            lastHit.set(victim, now());
            endpointDeletes++;
          }
        }
        if (d.exited()) throw d.fail(`watch ${d.exited()} during the soak`);
        const el = (now() - t0) / 1000;
        if (el >= nextSample) {
          const s = samples.length;
          await sample(el);
          nextSample += sampleSeconds;
          if (s % 10 === 0) ctx.log(`  soak ${round(el / 60)} min: RSS ${samples.at(-1)!.rssMb} MB, heap ${samples.at(-1)!.heapUsedMb} MB (load ${load1()})`);
        }
        await sleep(Math.max(0, tick * 1000 - (now() - t0)));
      }
      for (const ns of gone) ipQuiet(['-n', ns, 'addr', 'add', `${EXTRA}/24`, 'dev', 'veth1', 'nodad']);
      const passes = passesIn(await sample((now() - t0) / 1000)) - passes0;
      // The last hand deletion is repaired by the next resync at the latest.
      await sleep(ctx.resyncMs + 2000);
      assertConverged(fleet, 'soak end');
      return { n, minutes, addressChanges, endpointDeletes, passes, readyMs: d.readyMs, samples };
    } finally {
      await d.stop();
    }
  } finally {
    destroyFleet(fleet);
    ctx.setFleet(undefined);
    rmSync(join(ctx.dir, 'soak.yaml'), { force: true });
  }
}

const BARS = '▁▂▃▄▅▆▇█';

/** The RSS series as one line of block characters, `width` buckets (max per bucket), scaled from lo to hi MB. */
export function sparkline(values: number[], width = 60, lo = Math.min(...values), hi = Math.max(...values)): string {
  if (values.length === 0) return '';
  const per = Math.max(1, Math.ceil(values.length / width));
  let out = '';
  for (let i = 0; i < values.length; i += per) {
    const v = Math.max(...values.slice(i, i + per));
    out += BARS[hi > lo ? Math.min(7, Math.floor(((v - lo) / (hi - lo)) * 8)) : 0];
  }
  return out;
}

/** About `rows` samples spread evenly over the soak, always with the first and the last. */
export function curveRows(samples: SoakSample[], rows = 10): SoakSample[] {
  if (samples.length <= rows) return samples;
  const step = (samples.length - 1) / (rows - 1);
  return Array.from({ length: rows }, (_, i) => samples[Math.round(i * step)]!);
}
