// Hostile config input through `apply`, the command that runs as root: every case
// is refused with exit 1, a message naming the file (and line:column where there is
// one), no stack trace, before any namespace is opened, and the namespace the file
// names stays byte-identical per iproute2. The parser-level details of these cases
// (exact codes, positions) are in test/config-load.test.ts; this file adds what the
// root-run command does with them.
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { cli, nsState, STACK_FRAME } from './helpers/hardening.js';
import { createNetns, deleteNetns, requireRoot, sh } from './helpers/netns.js';

// Spies on the real kernel layer: the refusal must come before any namespace is opened.
const opened = vi.hoisted(() => [] as string[]);
vi.mock('../src/kernel/namespace.js', async (importOriginal) =>
  (await import('./helpers/open-spy.js')).recordOpens(await importOriginal<typeof import('../src/kernel/namespace.js')>(), opened),
);

requireRoot();
const dir = mkdtempSync(join(tmpdir(), 'mr-hard-in-'));
let ns: string;
let bystander: string;
let nsBefore: string;
let bystanderBefore: string;

beforeAll(() => {
  ns = createNetns('hi');
  bystander = createNetns('hib');
  nsBefore = nsState(ns);
  bystanderBefore = nsState(bystander);
});
afterAll(() => {
  deleteNetns(ns);
  deleteNetns(bystander);
  rmSync(dir, { recursive: true, force: true });
});
beforeEach(() => {
  opened.length = 0;
});

/** A valid entry that would change the namespace if anything were applied. */
const head = () => `version: 1\nnamespaces:\n  - netns: ${ns}\n    limits: { subflows: 5, addAddrAccepted: 3 }\n    mptcp: { enabled: false }\n`;
/** Like head(), with `body` in place of its limits and mptcp keys. */
const entry = (body: string) => `version: 1\nnamespaces:\n  - netns: ${ns}\n    rpFilter: { lo: strict }\n${body}`;
const withEps = (...items: string[]) => `${head()}    endpoints:\n${items.map((i) => `      - ${i}\n`).join('')}`;

let n = 0;
function file(content: string | Buffer, name = `h${n++}.yaml`): string {
  const p = join(dir, name);
  writeFileSync(p, content);
  return p;
}

async function refused(path: string, what: RegExp, positioned = true): Promise<string> {
  const r = await cli(['apply', '-f', path, '--netns', ns]);
  expect(r.code).toBe(1);
  expect(r.out).toBe('');
  expect(r.err).not.toMatch(STACK_FRAME);
  expect(r.err).toMatch(what);
  const shown = path.startsWith(dir) ? path : join(process.cwd(), path);
  expect(r.err).toContain(positioned ? `${shown}:` : shown);
  if (positioned) expect(r.err).toMatch(new RegExp(`${shown.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:\\d+:\\d+: error`));
  expect(r.err).toContain('nothing was applied');
  expect(opened).toEqual([]);
  expect(nsState(ns)).toBe(nsBefore);
  return r.err;
}

describe('apply refuses hostile input before opening any namespace', () => {
  it('an alias bomb', async () => {
    const lines = [head(), 'x0: &x0 [a, a, a, a, a, a, a, a, a, a]'];
    for (let i = 1; i < 12; i++) lines.push(`x${i}: &x${i} [${Array(10).fill(`*x${i - 1}`).join(', ')}]`);
    await refused(file(`${lines.join('\n')}\n`), /alias/);
  });

  it.each(['__proto__', 'constructor', 'prototype'])('the key %s (top level, in an entry, as an rpFilter interface)', async (key) => {
    await refused(file(`${head()}    ${key}: { polluted: true }\n`), new RegExp(`\`${key}\` is not allowed`));
    await refused(file(`${head()}    rpFilter: { ${key}: loose }\n`), new RegExp(`\`${key}\` is not allowed`));
    await refused(file(`version: 1\n${key}: { x: 1 }\nnamespaces:\n  - netns: ${ns}\n    limits: { subflows: 5 }\n`), new RegExp(`\`${key}\` is not allowed`));
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('duplicate keys (the later value is not silently taken)', async () => {
    await refused(file(`${head()}    limits: { subflows: 8 }\n`), /duplicate key `limits`/);
  });

  it('a 3 MB file whose first lines are a valid config', async () => {
    await refused(file(`${head()}${'# padding padding padding padding padding padding padding\n'.repeat(55_000)}`), /at most 1048576/, false);
  });

  it('binary garbage, and text with a NUL byte', async () => {
    const bytes = Buffer.from(Array.from({ length: 8192 }, (_, i) => (i * 2654435761) >>> 24));
    await refused(file(bytes), /not UTF-8 text/, false);
    await refused(file(`${head()}    rpFilter: { lo: loose }\u0000\n`), /error/, false);
  });

  it('one Latin-1 byte in an otherwise valid file, pointed at by line:column', async () => {
    const text = Buffer.from(`${head()}    rpFilter: { lo: loose } # caf\u00e9\n`);
    text[text.indexOf(0xc3)] = 0xe9; // é as Latin-1, then a stray continuation byte
    const err = await refused(file(text), /invalid UTF-8 byte/);
    expect(err).toMatch(/h\d+\.yaml:6:34: error/);
  });

  it('an empty file and a comment-only file', async () => {
    await refused(file(''), /empty/, false);
    await refused(file('# nothing here\n'), /empty/, false);
  });

  it.each([
    ['limits as a string', `    limits: "5"\n`, /expected/],
    ['subflows as a string', `    limits: { subflows: "5" }\n`, /expected a number/],
    ['endpoints as a mapping', `    endpoints: { address: 192.0.2.1 }\n`, /expected a list/],
    ['flags as a string', `    endpoints:\n      - { address: 192.0.2.1, flags: signal }\n`, /expected a list/],
    ['port as a string', `    endpoints:\n      - { address: 192.0.2.1, port: "80", flags: [signal] }\n`, /expected a number/],
    ['prune as a string', `    prune: "false"\n`, /true or false/],
    ['enabled as a number', `    mptcp: { checksumEnabled: 1 }\n`, /true or false/],
  ])('wrong types: %s', async (_what, body, msg) => {
    await refused(file(entry(body)), msg);
  });

  it('a namespaces list that is not a list, and netns of the wrong type', async () => {
    await refused(file(`version: 1\nnamespaces: { netns: ${ns} }\n`), /expected a list/);
    await refused(file(`version: 1\nnamespaces:\n  - netns: [${ns}]\n    limits: { subflows: 5 }\n`), /expected a string/);
  });

  it.each([
    'a;reboot',
    '$(reboot)',
    'x`id`',
    'a|b',
    'a&&b',
    '../../../etc',
    `../${'x'}`,
    '..',
    'x'.repeat(256),
  ])('the netns name %j', async (name) => {
    await refused(file(`version: 1\nnamespaces:\n  - netns: ${JSON.stringify(name)}\n    limits: { subflows: 5 }\n  - netns: ${ns}\n    limits: { subflows: 5 }\n`), /netns/);
  });

  it.each(['eth0;reboot', '$(reboot)', 'a`id`', 'a|b', '../../all', 'a/b', '..', 'abcdefghijklmnop', 'a b', 'a\\tb'])(
    'the interface name %j as an endpoint dev and as an rpFilter key',
    async (dev) => {
      const q = JSON.stringify(dev);
      await refused(file(withEps(`{ dev: ${q}, flags: [subflow] }`)), /interface name/);
      await refused(file(`${head()}    rpFilter: { ${q}: loose }\n`), /interface name/);
    },
  );

  it('a sysctl key that would leave net.mptcp (path traversal through the key)', async () => {
    await refused(file(entry(`    mptcp: { "../../ipv4/ip_forward": true }\n`)), /unknown key|not allowed|allowed keys/);
  });

  it('9 endpoints', async () => {
    await refused(file(withEps(...Array.from({ length: 9 }, (_, i) => `{ address: 192.0.2.${i + 1}, flags: [subflow] }`))), /at most 8/);
  });

  it('the same (address, port) twice, also written differently', async () => {
    await refused(file(withEps('{ address: 192.0.2.1, port: 10000, flags: [signal] }', '{ address: 192.0.2.1, port: 10000, flags: [signal, backup] }')), /error/);
    await refused(file(withEps('{ address: "2001:db8::1", flags: [subflow] }', '{ address: "2001:db8:0:0::1", flags: [subflow] }')), /error/);
    await refused(file(withEps('{ address: 192.0.2.1, flags: [subflow] }', '{ address: "::ffff:192.0.2.1", flags: [subflow] }')), /error/);
  });

  it.each([0, 256, -1, 1.5, '"1"'])('endpoint id %s', async (id) => {
    await refused(file(withEps(`{ address: 192.0.2.1, id: ${id}, flags: [subflow] }`)), /id/);
  });

  it.each(['192.0.2.256', '192.0.2', '0300.0.2.1', '3221225985', '192.0.2.01', '192.0.2.1/24', 'fe80::1%eth0', '2001:db8::1%2', 'fe80::1%25eth0', '2001:db8:::1', 'localhost', ' 192.0.2.1', ''])(
    'the address %j',
    async (addr) => {
      await refused(file(withEps(`{ address: ${JSON.stringify(addr)}, flags: [subflow] }`)), /address|zone id|prefix/);
    },
  );

  it('a port outside 1..65535', async () => {
    await refused(file(withEps('{ address: 192.0.2.1, port: 65536, flags: [signal] }')), /port/);
    await refused(file(withEps('{ address: 192.0.2.1, port: -1, flags: [signal] }')), /port/);
  });

  it('a directory with one bad file among good ones (all or nothing)', async () => {
    const d = join(dir, 'mixed');
    mkdirSync(d);
    writeFileSync(join(d, '10-good.yaml'), head());
    writeFileSync(join(d, '20-bad.yaml'), `version: 1\nnamespaces:\n  - netns: ${ns}\n    limits: { subflows: 9 }\n`);
    await refused(d, /at most 8/, false);
  });

  it('a FIFO or a device behind a *.yaml name is not read (no hang, no endless read)', async () => {
    const d = join(dir, 'special');
    mkdirSync(d);
    writeFileSync(join(d, '10-good.yaml'), head());
    sh('mkfifo', [join(d, '20-fifo.yaml')]);
    symlinkSync('/dev/zero', join(d, '30-zero.yaml'));
    await refused(d, /not a regular file/, false);
    await refused(join(d, '30-zero.yaml'), /not a regular file/, false);
  });

  it('a directory with more files than anyone writes by hand', async () => {
    const d = join(dir, 'many');
    mkdirSync(d);
    for (let i = 0; i < 300; i++) writeFileSync(join(d, `${String(i).padStart(3, '0')}.yaml`), head());
    await refused(d, /at most 256/, false);
  });

  it('a directory of large files that together exceed 16 MiB', async () => {
    const d = join(dir, 'large');
    mkdirSync(d);
    const big = `${head()}${'#'.repeat(1_000_000)}\n`;
    for (let i = 0; i < 20; i++) writeFileSync(join(d, `${String(i).padStart(2, '0')}.yaml`), big);
    await refused(d, /16 MiB/, false);
  });

  it('an unsafe --netns selector on the command line', async () => {
    const f = file(head());
    for (const sel of ['../x', 'a;b', '$(id)']) {
      const r = await cli(['apply', '-f', f, '--netns', sel]);
      expect(r.code).toBe(1);
      expect(r.err).toMatch(/^error: --netns/);
      expect(r.err).not.toMatch(STACK_FRAME);
    }
    expect(opened).toEqual([]);
    expect(nsState(ns)).toBe(nsBefore);
  });
});

describe('the same config, once valid, is applied (the refusals above are not a broken apply)', () => {
  it('applies the head entry and leaves the undeclared namespace byte-identical', async () => {
    const r = await cli(['apply', '-f', file(head()), '--netns', ns]);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(opened).toEqual([ns]);
    expect(nsState(ns)).not.toBe(nsBefore);
    expect(nsState(bystander)).toBe(bystanderBefore);
  });
});
