// The in-process cold pass alone: reconcileAll over a fleet reset to a
// new namespace's MPTCP state, with cached handles, as the daemon meets a fleet of
// fresh namespaces. Faster to iterate on than the whole `npm run bench`; the same
// fixture and the same iproute2 check after every timed pass.
//
//   npm run build && node dist/bench/cold-pass.js --n 200 --runs 3 [--prof out.cpuprofile]
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { reconcileAll } from '../src/apply/reconcile.js';
import { loadConfig, resolveAll } from '../src/config/index.js';
import { closeAllNamespaces, openNamespace } from '../src/kernel/namespace.js';
import { listNamespaces } from '../src/kernel/netns.js';
import { checkConverged, createFleet, destroyFleet, fleetConfig, resetFleet } from './fixture.js';

const argv = process.argv.slice(2);
const opt = (flag: string): string | undefined => {
  const i = argv.indexOf(flag);
  return i >= 0 ? argv[i + 1] : undefined;
};
const n = Number(opt('--n') ?? 200);
const runs = Number(opt('--runs') ?? 3);
const prof = opt('--prof');
const now = (): number => Number(process.hrtime.bigint()) / 1e6;

const fleet = createFleet(n);
const dir = mkdtempSync(join(tmpdir(), 'mrb-cold-'));
const stop = () => {
  destroyFleet(fleet);
  const left = listNamespaces().filter((ns) => fleet.names.includes(ns));
  if (left.length) console.error(`left after destroy: ${left.length}`);
  rmSync(dir, { recursive: true, force: true });
};
process.once('SIGINT', () => {
  stop();
  process.exit(130);
});
try {
  const cfg = join(dir, 'fleet.yaml');
  writeFileSync(cfg, fleetConfig(fleet));
  const loaded = await loadConfig(cfg, { node: 'bench' });
  if (!loaded.ok) throw new Error(JSON.stringify(loaded.diagnostics));
  const desired = resolveAll(loaded.config, 'bench', listNamespaces());
  // CPU time (user+system) of this process beside wall time: on a shared machine
  // the wall time of a pass swings with the load, its CPU time much less.
  const cpu: number[] = [];
  const pass = async (): Promise<number> => {
    const existing = listNamespaces();
    const c0 = process.cpuUsage();
    const t0 = now();
    const rs = await reconcileAll(desired, { mode: 'enforce', existing, openNamespace, concurrency: 8 });
    const ms = now() - t0;
    const c = process.cpuUsage(c0);
    cpu.push((c.user + c.system) / 1000);
    const bad = rs.filter((r) => !r.converged || r.errors.length > 0);
    if (bad.length) throw new Error(`${bad.length} not converged: ${JSON.stringify(bad[0])}`);
    return ms;
  };
  // Handles opened and the code warmed up, as in a daemon that has run a while.
  await pass();
  for (let i = 0; i < 5; i++) await pass();
  const session = prof ? new Session() : undefined;
  if (session) {
    session.connect();
    await session.post('Profiler.enable');
    await session.post('Profiler.setSamplingInterval', { interval: 100 });
  }
  const times: number[] = [];
  cpu.length = 0;
  for (let r = 0; r < runs; r++) {
    resetFleet(fleet);
    if (session) await session.post('Profiler.start');
    times.push(await pass());
    if (session) {
      const { profile } = await session.post('Profiler.stop');
      writeFileSync(runs > 1 ? prof!.replace(/(\.cpuprofile)?$/, `.${r}.cpuprofile`) : prof!, JSON.stringify(profile));
    }
    const c = checkConverged(fleet);
    if (!c.ok) throw new Error(`not converged per iproute2:\n  ${c.problems.join('\n  ')}`);
  }
  const med = (xs: number[]) => Math.round([...xs].sort((a, b) => a - b)[xs.length >> 1]! * 10) / 10;
  console.log(
    JSON.stringify({
      n,
      coldMs: times.map((t) => Math.round(t * 10) / 10),
      median: med(times),
      cpuMs: cpu.map((t) => Math.round(t * 10) / 10),
      cpuMedian: med(cpu),
      load: loadavg().map((l) => Math.round(l * 100) / 100),
    }),
  );
} finally {
  closeAllNamespaces();
  stop();
}
