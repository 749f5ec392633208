// The growth table and the soak's RSS curve as text for the terminal and for
// bench/README.md, with the targets judged. Either part may come from an earlier
// run (kept in results.json) when this run left it out.
import type { GrowthRow, SoakResult, SoakSample } from './scale.js';
import { curveRows, sparkline } from './scale.js';

export interface ScaleReport {
  growth: { date: string; resyncMs: number; rows: GrowthRow[] } | null;
  soak: ({ date: string; resyncMs: number } & SoakResult) | null;
}

export interface ScaleTarget {
  name: string;
  value: number;
  unit: string;
  limit: number;
  atLeast?: boolean;
  met: boolean;
  note?: string;
}

const r1 = (v: number, d = 1) => Math.round(v * 10 ** d) / 10 ** d;
const ratio = (base: number, ours: number) => `${r1(base / ours, base < ours ? 2 : 1)}×`;

export function scaleTargets(rep: ScaleReport): ScaleTarget[] {
  const out: ScaleTarget[] = [];
  const t = (name: string, value: number, unit: string, limit: number, atLeast = false, note?: string) =>
    out.push({ name, value: r1(value, 2), unit, limit, ...(atLeast ? { atLeast } : {}), met: atLeast ? value >= limit : value <= limit, ...(note ? { note } : {}) });
  for (const row of rep.growth?.rows ?? []) {
    if (row.n === 50) {
      t('N=50 cold apply vs iproute2 (faster)', row.ipColdMs / row.cliColdMs, '×', 1, true);
      t('N=50 converged check vs iproute2 (faster)', row.ipCheckMs / row.cliCheckMs, '×', 1, true);
    }
    if (row.n >= 200) {
      t(`N=${row.n} cold apply vs iproute2`, row.ipColdMs / row.cliColdMs, '×', 5, true);
      t(`N=${row.n} converged check vs iproute2`, row.ipCheckMs / row.cliCheckMs, '×', 5, true);
    }
    if (row.n === 800) {
      t('N=800 watch ready', row.watchReadyMs, 'ms', 1500, false, `load ${row.load.join(' -> ')}`);
      t('N=800 idle CPU (resync 5 s)', row.idleCpuPercent, '%', 1, false, `load ${row.load.join(' -> ')}; a daemon managing no namespace used ${r1(row.baselineCpuPercent ?? NaN, 2)} % in the same window`);
      t('N=800 RSS', row.rssMb, 'MB', 100);
    }
  }
  const s = rep.soak;
  if (s) {
    const last = s.samples.at(-1)!;
    const short = s.minutes < 30 ? `a ${s.minutes}-minute soak; the target is for 30 minutes (--soak-minutes 30)` : undefined;
    t(`soak N=${s.n}: RSS at the end`, last.rssMb, 'MB', 96, false, short);
    t(`soak N=${s.n}: RSS high-water mark`, last.hwmMb, 'MB', 96, false, short);
  }
  return out;
}

export function growthMarkdown(rep: ScaleReport): string {
  const g = rep.growth;
  if (!g) return '';
  const rows = g.rows.map(
    (r) =>
      `| ${r.n} | ${r1(r.cliColdMs, 0)} / ${r1(r.ipColdMs, 0)} ms (${ratio(r.ipColdMs, r.cliColdMs)}) | ${r1(r.cliCheckMs, 0)} / ${r1(r.ipCheckMs, 0)} ms (${ratio(r.ipCheckMs, r.cliCheckMs)}) ` +
      `| ${r1(r.watchReadyMs, 0)} ms | ${r1(r.rssMb)} MB (HWM ${r1(r.hwmMb)}, heap ${r1(r.heapUsedMb)}) | ${r1(r.idleCpuPercent, 2)} % (${r1(r.baselineCpuPercent ?? NaN, 2)} %) ` +
      `| ${r.floor ? `${r1(r.floor.percent, 2)} % (kernel ${r1(r.floor.kernelPercent, 2)} %)` : ''} | ${r1((r.ipCheckMs / g.resyncMs) * 100, 0)} % | ${r.load.join(' → ')} |`,
  );
  return `Growth (${g.date}; \`watch --resync ${g.resyncMs}ms\`; ratios are iproute2's time over ours; idle CPU
over ${r1(g.rows[0]?.idleSeconds ?? 0, 0)} s, beside it a second daemon managing no namespace in the same window, which pays
only for the machine's other activity: exec events of every process, /run/netns changes. *Reads alone*: the
reads a converged resync cannot skip (endpoint dump, limits, path manager, /run/netns identity), in a tight loop
in the bench process, as a share of one core at this N and resync: the floor under the idle CPU, with its kernel
(system) part. *iproute2 every resync*: the \`ip -j\` check loop run as often, as a share of one core):

| N | cold apply: ours / \`ip -batch\` loop | converged check: \`plan\` / \`ip -j\` loop | watch ready | RSS after idle | idle CPU (a daemon with no namespace) | reads alone (kernel) | iproute2 every resync | load (1 min) |
| --- | --- | --- | --- | --- | --- | --- | --- | --- |
${rows.join('\n')}
`;
}

export function soakMarkdown(rep: ScaleReport): string {
  const s = rep.soak;
  if (!s) return '';
  const rss = s.samples.map((x: SoakSample) => x.rssMb);
  const lo = Math.min(...rss);
  const hi = Math.max(...rss);
  const rows = curveRows(s.samples, 11).map((x) => `| ${r1(x.t / 60)} | ${x.rssMb} | ${x.hwmMb} | ${x.heapUsedMb} | ${r1(x.cpuSeconds)} | ${x.load} |`);
  return `Soak (${s.date}): N=${s.n}, ${s.minutes} min, an address change every second (${s.addressChanges}),
an endpoint deleted by hand every 5 s (${s.endpointDeletes}), ${s.passes} passes; ready after ${r1(s.readyMs, 0)} ms.
RSS every ${s.samples.length > 1 ? r1(s.samples[1]!.t - s.samples[0]!.t, 0) : 0} s, ${lo} → ${hi} MB:

\`${lo} MB ${sparkline(rss, 60, lo, hi)} ${hi} MB\`

| minute | VmRSS MB | VmHWM MB | V8 heap used MB | CPU s (total) | load |
| --- | --- | --- | --- | --- | --- |
${rows.join('\n')}
`;
}

export function targetsMarkdown(targets: ScaleTarget[]): string {
  if (targets.length === 0) return '';
  const rows = targets.map((t) => `| ${t.name} | ${t.value} ${t.unit} | ${t.atLeast ? '≥' : '≤'} ${t.limit} ${t.unit} | ${t.met ? 'met' : '**missed**'} | ${t.note ?? ''} |`);
  return `| target (growth and soak) | value | limit | | note |
| --- | --- | --- | --- | --- |
${rows.join('\n')}
`;
}

export function scaleReport(rep: ScaleReport): { markdown: string; targets: ScaleTarget[] } {
  const targets = scaleTargets(rep);
  return { markdown: [growthMarkdown(rep), soakMarkdown(rep), targetsMarkdown(targets)].filter(Boolean).join('\n'), targets };
}
