// Fuzzing of config input: the shipped examples mutated (byte flips, line
// deletions and duplications, key renames, value swaps, truncation, inserted
// junk) and config-shaped YAML generated from scratch. Properties, for every case:
// `validate` and `apply` never throw or print a stack trace; an invalid file
// exits 1 with file:line:column (or a whole-file message naming the file, for a
// file that is not text at all), and then `apply` opens no namespace and the
// namespace the file names is byte-identical per iproute2. A valid mutant may be
// applied, but only to that throwaway namespace: a second one stays untouched.
// Seeded and bounded; FUZZ_SEED and FUZZ_RUNS override; FUZZ_STATS=1 prints the
// whole-file (unpositioned) refusals seen, by message.
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { stringify } from 'yaml';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { cli, nsState, STACK_FRAME, type CliRun } from './helpers/hardening.js';
import { createNetns, deleteNetns, requireRoot } from './helpers/netns.js';

const opened = vi.hoisted(() => [] as string[]);
vi.mock('../src/kernel/namespace.js', async (importOriginal) =>
  (await import('./helpers/open-spy.js')).recordOpens(await importOriginal<typeof import('../src/kernel/namespace.js')>(), opened),
);

requireRoot();
const SEED = Number(process.env.FUZZ_SEED ?? 20261123);
const RUNS = Number(process.env.FUZZ_RUNS ?? 150);
const examplesDir = join(import.meta.dirname, '..', 'examples');
const dir = mkdtempSync(join(tmpdir(), 'mr-fuzz-'));
let ns: string;
let bystander: string;
let bystanderBefore: string;
let seeds: { name: string; text: string }[];

beforeAll(() => {
  ns = createNetns('fz');
  bystander = createNetns('fzb');
  bystanderBefore = nsState(bystander);
  // Every entry names the throwaway namespace; `--netns` below also restricts apply to it.
  seeds = readdirSync(examplesDir)
    .filter((f) => f.endsWith('.yaml'))
    .sort()
    .map((f) => ({ name: f, text: readFileSync(join(examplesDir, f), 'utf8').replace(/^(\s*-?\s*netns:\s*)("[^"]*"|\S+)/gm, `$1${ns}`) }));
});
afterAll(() => {
  deleteNetns(ns);
  deleteNetns(bystander);
  rmSync(dir, { recursive: true, force: true });
});
beforeEach(() => {
  opened.length = 0;
});

// ---- mutations -------------------------------------------------------------

const KEYS = ['version', 'namespaces', 'netns', 'nodes', 'mptcp', 'limits', 'endpoints', 'address', 'dev', 'port', 'id', 'flags', 'family', 'rpFilter', 'prune', 'conflicts', 'subflows', 'addAddrAccepted', 'enabled', 'pathManager', '__proto__', 'constructor', 'prototype', 'endpoint', 'limit', 'Subflows', 'add_addr_accepted', '"a b"', '?', '- x', '<<', '!!str k'];
const VALUES = ['-1', '0', '8', '9', '256', '65536', '1.5', '1e999', '.inf', '.nan', '0x10', '0o17', '~', 'null', 'true', 'yes', 'on', '""', '"x"', '[]', '{}', '[signal]', '[subflow, fullmesh]', '[signal, fullmesh]', '[bakup]', 'loose', 'strict', '3', 'kernel', 'userspace', 'host', '"cni-*"', '"../x"', '"a;reboot"', '192.0.2.300', '"fe80::1%eth0"', '2001:db8::1', '192.0.2.1', '"::ffff:192.0.2.1"', 'eth0', '"abcdefghijklmnop"', '*a', '&a x', '!!binary aGk=', '!foo 1', '|', '>-', '[', '{', '"\\u0000"', "'\\x1b[31m'", '2001-01-01'];

type Mutation =
  | { kind: 'flip'; at: number; bit: number }
  | { kind: 'delete-line'; at: number }
  | { kind: 'dup-line'; at: number }
  | { kind: 'rename-key'; at: number; key: string }
  | { kind: 'swap-value'; at: number; value: string }
  | { kind: 'truncate'; at: number }
  | { kind: 'insert'; at: number; junk: string };

const frac = fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true });
const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: frac, bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ kind: fc.constant('delete-line' as const), at: frac }),
  fc.record({ kind: fc.constant('dup-line' as const), at: frac }),
  fc.record({ kind: fc.constant('rename-key' as const), at: frac, key: fc.oneof(fc.constantFrom(...KEYS), fc.string({ maxLength: 12 })) }),
  fc.record({ kind: fc.constant('swap-value' as const), at: frac, value: fc.oneof(fc.constantFrom(...VALUES), fc.string({ maxLength: 12 })) }),
  fc.record({ kind: fc.constant('truncate' as const), at: frac }),
  fc.record({ kind: fc.constant('insert' as const), at: frac, junk: fc.oneof(fc.string({ unit: 'binary', maxLength: 8 }), fc.constantFrom(':', '- ', '\t', '  ', '#', '"', '{', ']', '\n  - ', ': &x', '\uFEFF', '\r')) }),
);

function pick<T>(list: readonly T[], at: number): T {
  return list[Math.floor(at * list.length)]!;
}

function mutate(bytes: Buffer, m: Mutation): Buffer {
  const text = bytes.toString('utf8');
  const lines = text.split('\n');
  const li = Math.floor(m.at * lines.length);
  switch (m.kind) {
    case 'flip': {
      if (bytes.length === 0) return bytes;
      const out = Buffer.from(bytes);
      const i = Math.floor(m.at * out.length);
      out[i] = out[i]! ^ (1 << m.bit);
      return out;
    }
    case 'delete-line':
      return Buffer.from(lines.filter((_, i) => i !== li).join('\n'));
    case 'dup-line':
      return Buffer.from([...lines.slice(0, li + 1), lines[li]!, ...lines.slice(li + 1)].join('\n'));
    case 'rename-key': {
      const keyed = lines.map((l, i) => [l, i] as const).filter(([l]) => /^\s*(-\s+)?[\w"]+\s*:/.test(l));
      if (keyed.length === 0) return bytes;
      const [l, i] = pick(keyed, m.at);
      lines[i] = l.replace(/^(\s*(?:-\s+)?)[\w"]+(\s*:)/, (_, pre: string, colon: string) => `${pre}${m.key}${colon}`);
      return Buffer.from(lines.join('\n'));
    }
    case 'swap-value': {
      const valued = lines.map((l, i) => [l, i] as const).filter(([l]) => /:\s+\S/.test(l));
      if (valued.length === 0) return bytes;
      const [l, i] = pick(valued, m.at);
      lines[i] = l.replace(/(:\s+)([^#\n]*?)(\s*(#.*)?)$/, (_, sep: string, _v: string, tail: string) => `${sep}${m.value}${tail}`);
      return Buffer.from(lines.join('\n'));
    }
    case 'truncate':
      return bytes.subarray(0, Math.floor(m.at * bytes.length));
    case 'insert': {
      const i = Math.floor(m.at * bytes.length);
      return Buffer.concat([bytes.subarray(0, i), Buffer.from(m.junk), bytes.subarray(i)]);
    }
  }
}

// ---- properties ------------------------------------------------------------

let caseNo = 0;
const stats = { wholeFile: [] as string[] };
afterAll(() => {
  if (process.env.FUZZ_STATS) console.log(JSON.stringify(stats.wholeFile.reduce<Record<string, number>>((m, l) => ({ ...m, [l]: (m[l] ?? 0) + 1 }), {}), null, 1));
});
let lastState: string | undefined;

/** Checks one candidate file through validate and apply; returns whether it was valid. */
async function check(content: Buffer | string): Promise<boolean> {
  const path = join(dir, `f${caseNo++ % 50}.yaml`);
  writeFileSync(path, content);
  const run = async (argv: string[]): Promise<CliRun> => {
    try {
      return await cli(argv);
    } catch (e) {
      throw new Error(`main() threw for ${path}: ${(e as Error).stack}\n--- file ---\n${String(content)}`);
    }
  };

  const v = await run(['validate', '-f', path]);
  expect([0, 1], v.err).toContain(v.code);
  expect(v.err + v.out).not.toMatch(STACK_FRAME);
  if (v.code === 1) {
    // Positioned, or a whole-file problem that names the file.
    expect(v.err).toMatch(new RegExp(`^${path}(:\\d+:\\d+)?: error: `, 'm'));
    if (!new RegExp(`^${path}:\\d+:\\d+: error: `, 'm').test(v.err)) stats.wholeFile.push(v.err.split('\n')[0]!.replace(path, 'F'));
  }

  lastState ??= nsState(ns);
  opened.length = 0;
  const a = await run(['apply', '-f', path, '--netns', ns]);
  expect([0, 1], a.err).toContain(a.code);
  expect(a.err + a.out).not.toMatch(STACK_FRAME);
  expect(opened.filter((n) => n !== ns), 'only the namespace the file names').toEqual([]);
  const after = nsState(ns);
  if (v.code === 1) {
    expect(a.code).toBe(1);
    expect(a.err).toContain('nothing was applied');
    expect(opened).toEqual([]);
    expect(after, 'an invalid file changed the namespace').toBe(lastState);
  } else if (a.code === 1 && a.out !== '') {
    // Applied but not converged: every namespace reported says why.
    expect(a.out).toMatch(/error|pending|NOT converged|not found/);
  }
  lastState = after;
  return v.code === 0;
}

describe('fuzzing config input', () => {
  it('the unmutated examples, pointed at the throwaway namespace, are valid (the seeds are meaningful)', async () => {
    for (const s of seeds) {
      writeFileSync(join(dir, s.name), s.text);
      const r = await cli(['validate', '-f', join(dir, s.name)]);
      expect(r.code, `${s.name}: ${r.err}`).toBe(0);
    }
  });

  it('mutated examples: never a crash; invalid ones refused, positioned, with nothing applied', async () => {
    let valid = 0;
    await fc.assert(
      fc.asyncProperty(fc.nat(), fc.array(mutation, { minLength: 1, maxLength: 3 }), async (which, muts) => {
        let bytes: Buffer = Buffer.from(seeds[which % seeds.length]!.text);
        for (const m of muts) bytes = mutate(bytes, m);
        if (await check(bytes)) valid++;
      }),
      { seed: SEED, numRuns: RUNS, endOnFailure: true },
    );
    // Both branches of the property ran.
    expect(valid).toBeGreaterThan(0);
    expect(valid).toBeLessThan(RUNS);
    expect(nsState(bystander)).toBe(bystanderBefore);
  }, 120_000);

  it('generated config-shaped YAML: never a crash; invalid ones refused with nothing applied', async () => {
    const scalar = fc.oneof(fc.integer({ min: -2, max: 300 }), fc.boolean(), fc.constantFrom(...VALUES.map((v) => v.replace(/^"|"$/g, ''))), fc.string({ maxLength: 10 }), fc.constant(null));
    const flags = fc.array(fc.constantFrom('signal', 'subflow', 'backup', 'fullmesh', 'laminar', 'implicit', 'bakup'), { maxLength: 3 });
    const addr = fc.oneof(fc.constantFrom('192.0.2.1', '198.51.100.7', '203.0.113.9', '2001:db8::1', '::ffff:192.0.2.1', '192.0.2.300', 'fe80::1%eth0'), fc.ipV4(), fc.ipV6());
    const endpoint = fc.record(
      { address: addr, dev: fc.oneof(fc.constantFrom('lo', 'eth0', 'a;b', '../x'), scalar), port: fc.oneof(fc.integer({ min: 0, max: 70000 }), scalar), id: fc.integer({ min: -1, max: 257 }), flags: fc.oneof(flags, scalar), family: fc.constantFrom('ipv4', 'ipv6', 'any', 'ipx'), junk: scalar },
      { requiredKeys: [] },
    );
    const entry = fc.record(
      {
        netns: fc.oneof(fc.constant(ns), fc.constant(ns), scalar),
        nodes: fc.oneof(fc.constant(['*']), fc.array(fc.string({ maxLength: 5 }), { maxLength: 2 }), scalar),
        limits: fc.oneof(fc.record({ subflows: fc.integer({ min: -1, max: 9 }), addAddrAccepted: fc.oneof(fc.integer({ min: -1, max: 9 }), scalar) }, { requiredKeys: [] }), scalar),
        mptcp: fc.oneof(
          fc.record({ enabled: fc.oneof(fc.boolean(), scalar), pathManager: fc.constantFrom('kernel', 'userspace', 'kernal'), checksumEnabled: fc.boolean(), addAddrTimeout: fc.oneof(fc.integer({ min: -2, max: 300 }), scalar) }, { requiredKeys: [] }),
          scalar,
        ),
        endpoints: fc.oneof(fc.array(endpoint, { maxLength: 10 }), scalar),
        rpFilter: fc.oneof(fc.dictionary(fc.constantFrom('lo', 'all', 'default', 'eth0', '__proto__', 'a/b', 'x;y'), fc.oneof(fc.constantFrom('off', 'strict', 'loose', 0, 1, 2, 3), scalar), { maxKeys: 3 }), scalar),
        prune: fc.oneof(fc.boolean(), scalar),
        conflicts: fc.constantFrom('fail', 'warn', 'ignore', 'fial'),
      },
      { requiredKeys: ['netns'] },
    );
    const doc = fc.record({ version: fc.oneof(fc.constant(1), fc.constant(1), scalar), namespaces: fc.oneof(fc.array(entry, { maxLength: 3 }), scalar) }, { requiredKeys: [] });
    let valid = 0;
    await fc.assert(
      fc.asyncProperty(doc, async (d) => {
        if (await check(stringify(d))) valid++;
      }),
      { seed: SEED + 1, numRuns: RUNS, endOnFailure: true },
    );
    expect(valid).toBeGreaterThan(0);
    expect(nsState(bystander)).toBe(bystanderBefore);
  }, 120_000);
});
