// Source routing under `watch`, on one namespace with two uplinks: how long from
// an `ip addr add` on a listed interface to its `from ADDR` rule (and from the
// `ip addr del` to the rule gone), and from a hand-deleted default route in the
// tool's table to the route back. t0 is taken just before spawning `ip`; the
// end is seen by polling our own rule/route dump every 0.5 ms.
// Run: npm run build && node dist/bench/routing.js [--runs 20]
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { withNetns } from '../src/kernel/netns.js';
import { NETLINK_ROUTE, NlSocket } from '../src/kernel/nlsock.js';
import { dumpRoutes, dumpRules } from '../src/kernel/route-rules.js';

const BIN = join(dirname(fileURLToPath(import.meta.url)), '..', 'src', 'cli', 'bin.js');
const now = (): number => Number(process.hrtime.bigint()) / 1e6;
const sleepBuf = new Int32Array(new SharedArrayBuffer(4));
const sleepSync = (ms: number): void => void Atomics.wait(sleepBuf, 0, 0, ms);

function ip(...args: string[]): void {
  const r = spawnSync('ip', args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr}`);
}

function until(t0: number, what: string, done: () => boolean, limitMs = 10_000): number {
  for (;;) {
    if (done()) return now() - t0;
    if (now() - t0 > limitMs) throw new Error(`${what}: not within ${limitMs} ms`);
    sleepSync(0.5);
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  const i = process.argv.indexOf('--runs');
  const runs = i >= 0 ? Number(process.argv[i + 1]) : 20;
  const ns = `mrbench-rt-${process.pid}`;
  const dir = mkdtempSync(join(tmpdir(), 'mr-bench-rt-'));
  let child: ChildProcess | undefined;
  let sock: NlSocket | undefined;
  try {
    ip('netns', 'add', ns);
    for (const l of ['c1', 'c2']) {
      ip('-n', ns, 'link', 'add', l, 'type', 'veth', 'peer', 'name', `${l}p`);
      ip('-n', ns, 'link', 'set', `${l}p`, 'up');
      ip('-n', ns, 'link', 'set', l, 'up');
    }
    ip('-n', ns, 'addr', 'add', '198.51.100.2/24', 'dev', 'c1');
    ip('-n', ns, 'addr', 'add', '203.0.113.2/24', 'dev', 'c2');
    const cfg = join(dir, 'rt.yaml');
    writeFileSync(
      cfg,
      `version: 1\nnamespaces:\n  - netns: ${ns}\n    endpoints:\n      - dev: c1\n        flags: [subflow]\n      - dev: c2\n        flags: [subflow]\n    sourceRouting:\n      c1: { table: 101, gateway: 198.51.100.1 }\n      c2: { table: 102, gateway: 203.0.113.1 }\n`,
    );
    child = spawn(process.execPath, [BIN, 'watch', '-f', cfg, '--log-level', 'warn', '--node', 'bench'], { stdio: 'ignore' });
    sock = withNetns(ns, () => new NlSocket(NETLINK_ROUTE, ns));
    const s = sock;
    const hasRule = (src: string) => dumpRules(s).some((r) => r.src === src && r.table === 102 && r.protocol === 213);
    const hasDefault = () => dumpRoutes(s, new Set([102])).some((r) => r.dstLen === 0 && r.protocol === 213);
    until(now(), 'first pass', () => hasRule('203.0.113.2') && hasDefault(), 30_000);
    const add: number[] = [];
    const del: number[] = [];
    const route: number[] = [];
    for (let r = 0; r < runs; r++) {
      const a = `203.0.113.${10 + r}`;
      let t = now();
      ip('-n', ns, 'addr', 'add', `${a}/24`, 'dev', 'c2');
      add.push(until(t, `rule for ${a}`, () => hasRule(a)));
      t = now();
      ip('-n', ns, 'addr', 'del', `${a}/24`, 'dev', 'c2');
      del.push(until(t, `rule of ${a} gone`, () => !hasRule(a)));
      t = now();
      ip('-n', ns, 'route', 'del', 'default', 'table', '102');
      route.push(until(t, 'default route of table 102 back', hasDefault));
    }
    const f = (xs: number[]) => `${median(xs).toFixed(1)} ms / ${Math.max(...xs).toFixed(1)} ms`;
    console.log(`source routing under watch, ${runs} runs (median / max), load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
    console.log(`| address added → its rule | ${f(add)} |`);
    console.log(`| address removed → its rule gone | ${f(del)} |`);
    console.log(`| default route deleted by hand → back | ${f(route)} |`);
  } finally {
    sock?.close();
    child?.kill('SIGTERM');
    spawnSync('ip', ['netns', 'del', ns]);
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
