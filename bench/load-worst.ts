// `validate` on the worst inputs known for the config loader, next to `validate`
// on a plain 1 MiB config: every step of loading must stay linear, so none of
// them may take more than twice the plain file. Each input is just under the
// 1 MiB file cap. Measured two ways: the whole process (`node bin.js validate`,
// what CI runs on a pull request) and the parse alone in-process (without the
// loader's cache, so every run parses).
//
//   npm run build && node dist/bench/load-worst.js [--runs 5]
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MAX_FILE_BYTES, parseConfigText } from '../src/config/index.js';

const here = dirname(fileURLToPath(import.meta.url));
const BIN = join(resolve(here, '..', '..'), 'dist', 'src', 'cli', 'bin.js');
const LIMIT = MAX_FILE_BYTES - 1024;

/** Repeats `unit(i)` until the text would pass LIMIT. */
function fill(head: string, unit: (i: number) => string, tail = ''): string {
  const parts = [head];
  let size = head.length + tail.length;
  for (let i = 0; ; i++) {
    const u = unit(i);
    if (size + u.length > LIMIT) break;
    parts.push(u);
    size += u.length;
  }
  parts.push(tail);
  return parts.join('');
}

export function plainInput(): string {
  return fill('version: 1\nnamespaces:\n', (i) => `  - netns: ns-${i}\n    limits: { subflows: 2, addAddrAccepted: 2 }\n    endpoints:\n      - { address: 192.0.2.${(i % 250) + 1}, flags: [subflow] }\n`);
}

export function worstInputs(): { name: string; text: string }[] {
  const half = Math.floor(LIMIT / 2);
  return [
    { name: 'comment lines, then the config', text: fill('', (i) => `# comment ${i}\n`, 'version: 1\nnamespaces: []\n') },
    { name: 'a banner of # lines only', text: fill('', () => `${'#'.repeat(40)}\n`) },
    { name: 'one mapping with ~50k keys', text: fill('version: 1\nnamespaces:\n  - netns: host\n    rpFilter:\n', (i) => `      e${i}: 2\n`) },
    { name: 'a duplicate key in every entry', text: fill('version: 1\nnamespaces:\n', (i) => `  - netns: n${i}\n    netns: n${i}\n`) },
    { name: 'an unknown key in every entry', text: fill('version: 1\nnamespaces:\n', (i) => `  - netns: n${i}\n    bogus: 1\n`) },
    { name: 'a !!set tag in every entry', text: fill('version: 1\nnamespaces:\n', () => '  - !!set { netns }\n') },
    { name: 'an alias in every entry', text: fill('version: 1\nx: &a { subflows: 2 }\nnamespaces:\n', (i) => `  - { netns: n${i}, limits: *a }\n`) },
    { name: 'flow lists nested 500k deep', text: `version: 1\nnamespaces: ${'['.repeat(half - 20)}${']'.repeat(half - 20)}\n` },
    { name: 'block lists nested 500k deep', text: `version: 1\nnamespaces:\n${'- '.repeat(half - 20)}x\n` },
    { name: 'mappings indented 1400 deep', text: `version: 1\nnamespaces:\n${fill('', (i) => `${' '.repeat(i + 2)}k:\n`)}` },
  ];
}

const now = (): number => Number(process.hrtime.bigint()) / 1e6;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export interface LoadWorstRow {
  name: string;
  bytes: number;
  /** What validate said: "valid" or the first error code. */
  outcome: string;
  processMs: number;
  parseMs: number;
}

export interface LoadWorstResult {
  plain: LoadWorstRow;
  worst: LoadWorstRow[];
  /** The largest worst/plain ratio over both measurements. */
  maxRatio: number;
}

function measure(name: string, text: string, dir: string, runs: number): LoadWorstRow {
  const file = join(dir, `${name.replace(/[^a-z0-9]+/gi, '-')}.yaml`);
  writeFileSync(file, text);
  const proc: number[] = [];
  const parse: number[] = [];
  let outcome = '';
  for (let r = 0; r < runs; r++) {
    const t0 = now();
    const p = spawnSync(process.execPath, [BIN, 'validate', '-f', file], { encoding: 'utf8', timeout: 120_000 });
    proc.push(now() - t0);
    if (p.status === null) throw new Error(`${name}: validate did not finish (${p.signal ?? p.error?.message})`);
    const t1 = now();
    const res = parseConfigText(text, file);
    parse.push(now() - t1);
    outcome = res.config ? 'valid' : (res.diagnostics.find((d) => d.severity === 'error')?.code ?? 'invalid');
  }
  return { name, bytes: Buffer.byteLength(text), outcome, processMs: median(proc), parseMs: median(parse) };
}

export function loadWorstBench(runs: number, log: (s: string) => void): LoadWorstResult {
  const dir = mkdtempSync(join(tmpdir(), 'mrbench-load-'));
  try {
    const plain = measure('plain 1 MiB config', plainInput(), dir, runs);
    if (plain.outcome !== 'valid') throw new Error(`the plain input is not valid: ${plain.outcome}`);
    log(`  load: plain ${plain.bytes} bytes: validate ${plain.processMs.toFixed(1)} ms, parse ${plain.parseMs.toFixed(1)} ms`);
    const worst = worstInputs().map((w) => {
      const row = measure(w.name, w.text, dir, runs);
      log(`  load: ${w.name} (${row.outcome}): validate ${row.processMs.toFixed(1)} ms, parse ${row.parseMs.toFixed(1)} ms`);
      return row;
    });
    const maxRatio = Math.max(...worst.flatMap((w) => [w.processMs / plain.processMs, w.parseMs / plain.parseMs]));
    return { plain, worst, maxRatio };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const i = process.argv.indexOf('--runs');
  const runs = i >= 0 ? Number(process.argv[i + 1]) : 5;
  const r = loadWorstBench(runs, (s) => process.stdout.write(`${s}\n`));
  const fmt = (x: LoadWorstRow) =>
    `| ${x.name} | ${x.bytes} | ${x.outcome} | ${x.processMs.toFixed(1)} ms | ${(x.processMs / r.plain.processMs).toFixed(2)}× | ${x.parseMs.toFixed(1)} ms | ${(x.parseMs / r.plain.parseMs).toFixed(2)}× |`;
  process.stdout.write(`\n| input | bytes | validate says | validate (process) | vs plain | parse (in-process) | vs plain |\n| --- | --- | --- | --- | --- | --- | --- |\n`);
  for (const x of [r.plain, ...r.worst]) process.stdout.write(`${fmt(x)}\n`);
  process.stdout.write(`\nworst ratio ${r.maxRatio.toFixed(2)}× (limit 2×): ${r.maxRatio <= 2 ? 'met' : 'MISSED'}\n`);
}

/** Rows and the target for `npm run bench`'s table (run.ts). */
export function loadWorstReport(r: LoadWorstResult): {
  rows: { what: string; ours: string; baseline: string; ratio: string }[];
  target: { name: string; value: number; unit: string; limit: number; met: boolean };
} {
  const worstProc = r.worst.reduce((a, b) => (b.processMs > a.processMs ? b : a));
  const ratio = Math.round(r.maxRatio * 100) / 100;
  return {
    rows: [
      { what: 'validate, plain 1 MiB config (process / parse)', ours: `${r.plain.processMs.toFixed(1)} ms / ${r.plain.parseMs.toFixed(1)} ms`, baseline: '', ratio: '' },
      { what: `validate, slowest of ${r.worst.length} worst-case 1 MiB inputs (${worstProc.name})`, ours: `${worstProc.processMs.toFixed(1)} ms`, baseline: '', ratio: `${ratio}× plain at most` },
    ],
    target: { name: 'validate on worst-case inputs vs a plain 1 MiB config', value: ratio, unit: '×', limit: 2, met: ratio <= 2 },
  };
}
