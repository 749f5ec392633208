// The loader: every rule of the format, positions of every error, hints, and
// hostile input. Positions are asserted as line and column.
import { mkdtempSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { formatDiagnostics, loadConfig, parseConfigText } from '../src/config/index.js';
import type { Diagnostic } from '../src/config/index.js';

const FIXTURES = join(import.meta.dirname, 'fixtures', 'config');
const tmp = mkdtempSync(join(tmpdir(), 'mr-config-test-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function parse(text: string) {
  return parseConfigText(text, 'c.yaml');
}
function errors(text: string): Diagnostic[] {
  const r = parse(text);
  expect(r.config, 'expected the file to be refused').toBeUndefined();
  return r.diagnostics.filter((d) => d.severity === 'error');
}
function one(text: string): Diagnostic {
  const e = errors(text);
  expect(e.map((d) => d.message)).toHaveLength(1);
  return e[0]!;
}
/** 1-based line and column of the n-th occurrence of `needle`. */
function at(text: string, needle: string, nth = 0): { line: number; column: number } {
  let idx = -1;
  for (let i = 0; i <= nth; i++) {
    idx = text.indexOf(needle, idx + 1);
    if (idx < 0) throw new Error(`${needle} not in text`);
  }
  const before = text.slice(0, idx).split('\n');
  return { line: before.length, column: before[before.length - 1]!.length + 1 };
}
const host = (body: string) => `version: 1\nnamespaces:\n  - netns: host\n${body}`;
const eps = (...items: string[]) => host(`    endpoints:\n${items.map((i) => `      - ${i}\n`).join('')}`);

describe('valid files', () => {
  it('accepts the design document example', () => {
    const text = `version: 1
namespaces:
  - netns: host
    nodes: ["*"]
    mptcp: { enabled: true, pathManager: kernel, allowJoinInitialAddrPort: true }
    limits: { subflows: 4, addAddrAccepted: 4 }
    endpoints:
      - { address: 192.0.2.10, dev: eth0, flags: [signal] }
      - { address: 192.0.2.10, port: 10000, flags: [signal] }
      - { dev: usb0, family: ipv4, flags: [subflow, backup] }
    rpFilter: { eth0: loose, usb0: 2, all: off, default: 0 }
    prune: true
    conflicts: fail
  - netns: "cni-*"
    nodes: ["edge-*"]
    limits: { subflows: 2 }
`;
    const r = parse(text);
    expect(r.diagnostics).toEqual([]);
    expect(r.config?.namespaces).toHaveLength(2);
  });
});

describe('endpoint rules', () => {
  it('warns (but accepts) an endpoint with neither signal nor subflow', () => {
    const text = eps('{ address: 192.0.2.1, flags: [backup] }');
    const r = parse(text);
    expect(r.config).toBeDefined();
    expect(r.diagnostics).toMatchObject([{ severity: 'warning', code: 'endpoint-does-nothing', ...at(text, '{ address'), path: 'namespaces[0].endpoints[0]' }]);
  });
  it('fullmesh needs subflow', () => {
    const text = eps('address: 192.0.2.1\n        flags: [fullmesh]');
    expect(one(text)).toMatchObject({ ...at(text, '[fullmesh]'), path: 'namespaces[0].endpoints[0].flags', message: '`fullmesh` needs `subflow`', hint: 'add `subflow` to the flags' });
  });
  it('fullmesh excludes signal', () => {
    const text = eps('{ address: 192.0.2.1, flags: [signal, subflow, fullmesh] }');
    expect(one(text)).toMatchObject({ ...at(text, '[signal'), message: expect.stringContaining('signal and fullmesh') });
  });
  it('port needs signal and excludes subflow', () => {
    let text = eps('{ address: 192.0.2.1, port: 10000, flags: [subflow] }');
    expect(one(text)).toMatchObject({ ...at(text, '10000'), path: 'namespaces[0].endpoints[0].port', hint: expect.stringContaining('add `signal`') });
    text = eps('{ address: 192.0.2.1, port: 10000, flags: [signal, subflow] }');
    expect(one(text)).toMatchObject({ ...at(text, '10000'), hint: expect.stringContaining('remove `subflow`') });
    expect(parse(eps('{ address: 192.0.2.1, port: 10000, flags: [signal] }')).diagnostics).toEqual([]);
  });
  it.each([0, 256, 1.5, -1])('refuses id %s with its position', (id) => {
    const text = eps(`{ address: 192.0.2.1, id: ${id}, flags: [subflow] }`);
    expect(one(text)).toMatchObject({ ...at(text, `${id},`), path: 'namespaces[0].endpoints[0].id' });
  });
  it('accepts ids 1 and 255', () => {
    expect(parse(eps('{ address: 192.0.2.1, id: 1, flags: [subflow] }', '{ address: 192.0.2.2, id: 255, flags: [subflow] }')).diagnostics).toEqual([]);
  });
  it('ids are unique per entry; the later one is reported', () => {
    const text = eps('{ address: 192.0.2.1, id: 7, flags: [subflow] }', '{ address: 192.0.2.2, id: 7, flags: [subflow] }');
    expect(one(text)).toMatchObject({ code: 'duplicate-id', ...at(text, '{ address', 1), path: 'namespaces[0].endpoints[1]' });
  });
  it('refuses 9 endpoints at the 9th', () => {
    const items = Array.from({ length: 9 }, (_, i) => `{ address: 192.0.2.${i + 1}, flags: [subflow] }`);
    const text = eps(...items);
    expect(one(text)).toMatchObject({ code: 'too-many-endpoints', ...at(text, '192.0.2.9'), column: at(text, '{ address: 192.0.2.9').column });
    expect(parse(eps(...items.slice(0, 8))).diagnostics).toEqual([]);
  });
  it('an address-less dev endpoint counts as one of the 8', () => {
    const items = Array.from({ length: 8 }, (_, i) => `{ address: 192.0.2.${i + 1}, flags: [subflow] }`);
    expect(one(eps(...items, '{ dev: usb0, flags: [subflow] }')).code).toBe('too-many-endpoints');
  });
  it('refuses the same (address, port) twice, IPv4 and v4-mapped IPv6 being the same', () => {
    const text = eps('{ address: 192.0.2.1, flags: [subflow] }', '{ address: "::ffff:192.0.2.1", flags: [signal] }');
    expect(one(text)).toMatchObject({ code: 'duplicate-endpoint', ...at(text, '{ address', 1) });
    const v6 = eps('{ address: "2001:db8::1", flags: [subflow] }', '{ address: "2001:DB8:0::1", flags: [signal] }');
    expect(one(v6).code).toBe('duplicate-endpoint');
  });
  it('allows one address with several ports, and with no port', () => {
    const text = eps(
      '{ address: 192.0.2.1, flags: [subflow] }',
      '{ address: 192.0.2.1, port: 10000, flags: [signal] }',
      '{ address: 192.0.2.1, port: 10001, flags: [signal] }',
    );
    expect(parse(text).diagnostics).toEqual([]);
  });
  it.each([
    ['192.0.2.300', 'not a valid IPv4 or IPv6 address'],
    ['fe80::1%eth0', 'zone id'],
    ['2001:db8::1%2', 'zone id'],
    ['192.0.2.1/24', 'prefix length'],
    ['example.com', 'not a valid'],
    ['', 'not a valid'],
  ])('refuses the address %j', (addr, what) => {
    const text = eps(`address: "${addr}"\n        flags: [subflow]`);
    expect(one(text)).toMatchObject({ ...at(text, `"${addr}"`), path: 'namespaces[0].endpoints[0].address', message: expect.stringContaining(what) });
  });
  it('refuses an endpoint with neither address nor dev', () => {
    const text = eps('{ flags: [subflow] }');
    expect(one(text)).toMatchObject({ ...at(text, '{ flags'), path: 'namespaces[0].endpoints[0]', hint: expect.stringContaining('address') });
  });
  it('allows family only with an address-less dev', () => {
    expect(parse(eps('{ dev: usb0, family: ipv6, flags: [subflow] }')).diagnostics).toEqual([]);
    const text = eps('{ address: 192.0.2.1, dev: eth0, family: ipv4, flags: [subflow] }');
    expect(one(text)).toMatchObject({ ...at(text, 'ipv4'), path: 'namespaces[0].endpoints[0].family' });
  });
  it.each(['abcdefghijklmnop', 'a/b', 'a:b', 'a b', '.', '..', ''])('refuses the interface name %j', (dev) => {
    const text = eps(`{ dev: "${dev}", flags: [subflow] }`);
    expect(one(text)).toMatchObject({ ...at(text, `"${dev}"`), path: 'namespaces[0].endpoints[0].dev' });
  });
  it('accepts a 15-byte interface name', () => {
    expect(parse(eps('{ dev: abcdefghijklmno, flags: [subflow] }')).diagnostics).toEqual([]);
  });
  it('suggests the flag meant', () => {
    const text = eps('{ address: 192.0.2.1, flags: [subflow, bakup] }');
    expect(one(text)).toMatchObject({ ...at(text, 'bakup'), path: 'namespaces[0].endpoints[0].flags[1]', hint: 'did you mean `backup`?' });
  });
  it('refuses a flag listed twice', () => {
    const text = eps('{ address: 192.0.2.1, flags: [subflow, subflow] }');
    expect(one(text)).toMatchObject({ ...at(text, 'subflow]'), path: 'namespaces[0].endpoints[0].flags[1]' });
  });
});

describe('namespace, limits, sysctls, rp_filter', () => {
  it.each([
    ['a;reboot', 'may not contain'],
    ['$(reboot)', 'may not contain'],
    ['x`id`', 'may not contain'],
    ['../etc', '"/"'],
    ['..', '".."'],
    ['a..b', '".."'],
    ['ns/../../etc', '"/"'],
    ['x'.repeat(300), 'longer than 255'],
    ['', 'empty'],
  ])('refuses the netns %j with its position', (netns, what) => {
    const text = `version: 1\nnamespaces:\n  - limits: {}\n    netns: "${netns}"\n`;
    expect(one(text)).toMatchObject({ line: 4, column: 12, path: 'namespaces[0].netns', message: expect.stringContaining(what) });
  });
  it('accepts host, names and globs', () => {
    for (const n of ['host', 'ns1', 'cni-*', 'cni-[0-9a-f]*', 'pod-{a,b}', 'a.b_c-d@e']) {
      expect(parse(`version: 1\nnamespaces:\n  - netns: "${n}"\n`).diagnostics, n).toEqual([]);
    }
  });
  it.each([
    ['subflows: 9', '9', 'at most 8'],
    ['addAddrAccepted: -1', '-1', 'at least 0'],
  ])('refuses limits %s', (kv, needle, what) => {
    const text = host(`    limits: { ${kv} }\n`);
    expect(one(text)).toMatchObject({ ...at(text, needle), message: expect.stringContaining(what), hint: expect.stringContaining('0..8') });
  });
  it('accepts rp_filter names, numbers, all and default', () => {
    expect(parse(host('    rpFilter: { all: 0, default: strict, eth0: loose, usb0: 2 }\n')).diagnostics).toEqual([]);
  });
  it('refuses a bad rp_filter value with a suggestion, and a bad interface key', () => {
    const text = host('    rpFilter:\n      eth0: lose\n      usb0: 3\n      "a b": off\n');
    const e = errors(text);
    expect(e).toHaveLength(3);
    expect(e[0]).toMatchObject({ ...at(text, 'lose'), path: 'namespaces[0].rpFilter.eth0', hint: 'did you mean `loose`?' });
    expect(e[1]).toMatchObject({ ...at(text, '3'), path: 'namespaces[0].rpFilter.usb0' });
    expect(e[2]).toMatchObject({ ...at(text, '"a b"'), message: expect.stringContaining('whitespace') });
  });
  it.each([
    ['synRetransBeforeTcpFallback: 256', '256', 'at most 255'],
    ['enabled: 1', '1', 'expected true or false'],
    ['pathManager: kernal', 'kernal', 'not one of'],
    ['staleLossCnt: -1', '-1', 'at least 0'],
    ['blackholeTimeout: 1.5', '1.5', 'integer'],
    ['scheduler: "a b"', '"a b"', 'scheduler name'],
  ])('types the mptcp sysctl %s', (kv, needle, what) => {
    const text = host(`    mptcp:\n      ${kv}\n`);
    expect(one(text)).toMatchObject({ ...at(text, needle, needle === '1' ? 1 : 0), message: expect.stringContaining(what) });
  });
  it('suggests the camelCase key for a sysctl name', () => {
    const text = host('    mptcp:\n      allow_join_initial_addr_port: false\n');
    expect(one(text)).toMatchObject({ code: 'unknown-key', ...at(text, 'allow_join'), hint: 'did you mean `allowJoinInitialAddrPort`?' });
  });
  it('accepts nodes globs, warns on an empty list', () => {
    expect(parse(host('    nodes: ["edge-*", "gw-[12]", core-1]\n')).diagnostics).toEqual([]);
    const r = parse(host('    nodes: []\n'));
    expect(r.config).toBeDefined();
    expect(r.diagnostics).toMatchObject([{ severity: 'warning', code: 'matches-no-node' }]);
  });
  it('refuses prune and conflicts of the wrong type', () => {
    const text = host('    prune: "no"\n    conflicts: fial\n');
    const e = errors(text);
    expect(e[0]).toMatchObject({ ...at(text, '"no"'), hint: 'write true or false without quotes' });
    expect(e[1]).toMatchObject({ ...at(text, 'fial'), hint: 'did you mean `fail`?' });
  });
});

describe('structure', () => {
  it('requires version: 1', () => {
    let text = 'namespaces: []\n';
    expect(one(text)).toMatchObject({ code: 'missing-key', line: 1, column: 1, path: 'version', hint: 'add `version: 1` at the top of the file' });
    text = 'version: 2\nnamespaces: []\n';
    expect(one(text)).toMatchObject({ code: 'unsupported-version', line: 1, column: 10 });
  });
  it('an unknown key names its position and the key meant', () => {
    const text = `version: 1\nnamespaces:\n  - netns: host\n    endpoint:\n      - address: 192.0.2.1\n`;
    expect(one(text)).toMatchObject({ code: 'unknown-key', line: 4, column: 5, path: 'namespaces[0].endpoint', hint: 'did you mean `endpoints`?' });
    const top = 'version: 1\nnamespace: []\n';
    expect(one(top)).toMatchObject({ line: 2, column: 1, hint: 'did you mean `namespaces`?' });
  });
  it('lists the allowed keys when nothing is close', () => {
    const text = host('    limits: { zzzzzz: 1 }\n');
    expect(one(text).hint).toBe('allowed keys here: subflows, addAddrAccepted');
  });
  it.each([
    ['- a\n- b\n', 'not a list'],
    ['just a string\n', 'not the string'],
    ['version: 1\nnamespaces: { netns: host }\n', 'expected a list'],
    ['version: 1\nnamespaces:\n  - netns: host\n    endpoints: { address: 192.0.2.1 }\n', 'expected a list'],
    ['version: 1\nnamespaces:\n  - netns: host\n    endpoints:\n      - { address: 192.0.2.1, flags: subflow }\n', 'expected a list'],
    ['version: 1\nnamespaces:\n  - netns: 42\n', 'expected a string'],
    ['version: 1\nnamespaces:\n  - netns: host\n    limits: { subflows: "4" }\n', 'expected a number'],
  ])('refuses wrong types: %j', (text, what) => {
    const e = one(text);
    expect(e.message).toContain(what.replace('not a list', 'a list').replace('not the string', 'the string'));
    expect(e.line).toBeGreaterThan(0);
  });
  it('reports every error of a file at once', () => {
    const text = `version: 1
namespaces:
  - netns: host
    limits: { subflows: 9 }
    endpoints:
      - { address: 192.0.2.300, flags: [subflow] }
      - { address: 192.0.2.2, id: 0, flags: [signal] }
  - netns: "../x"
    bogus: 1
`;
    const e = errors(text);
    expect(e.map((d) => [d.line, d.path])).toEqual([
      [4, 'namespaces[0].limits.subflows'],
      [6, 'namespaces[0].endpoints[0].address'],
      [7, 'namespaces[0].endpoints[1].id'],
      [8, 'namespaces[1].netns'],
      [9, 'namespaces[1].bogus'],
    ]);
  });
});

describe('hostile input', () => {
  it('refuses an alias bomb', () => {
    const lines = ['version: 1', 'a0: &a0 [x, x, x, x, x, x, x, x, x, x]'];
    for (let i = 1; i < 10; i++) lines.push(`a${i}: &a${i} [${Array(10).fill(`*a${i - 1}`).join(', ')}]`);
    lines.push('namespaces: []');
    const d = one(`${lines.join('\n')}\n`);
    expect(d.code).toMatch(/alias/);
    expect(d.line).toBe(3);
  });
  it('refuses more than 100 aliases', () => {
    const text = `version: 1\nx: &x 1\nl: [${Array(101).fill('*x').join(', ')}]\nnamespaces: []\n`;
    const d = one(text);
    expect(d).toMatchObject({ code: 'too-many-aliases', line: 3 });
  });
  it('accepts a few aliases', () => {
    const text = `version: 1\nnamespaces:\n  - netns: host\n    limits: &l { subflows: 2 }\n  - netns: "cni-*"\n    limits: *l\n`;
    expect(parse(text).diagnostics).toEqual([]);
  });
  it.each(['__proto__', 'constructor', 'prototype'])('refuses the key %s with its position', (key) => {
    const text = `version: 1\nnamespaces:\n  - netns: host\n    limits:\n      ${key}: { subflows: 8 }\n`;
    expect(one(text)).toMatchObject({ code: 'forbidden-key', line: 5, column: 7, path: `namespaces[0].limits.${key}` });
    expect(({} as Record<string, unknown>).subflows).toBeUndefined();
  });
  it('refuses duplicate keys at the second one', () => {
    const text = `version: 1\nnamespaces:\n  - netns: host\n    limits: { subflows: 2 }\n    limits: { subflows: 8 }\n`;
    expect(one(text)).toMatchObject({ code: 'yaml-duplicate-key', line: 5, column: 5, message: 'duplicate key `limits` in this mapping' });
  });
  it('refuses a 3 MB file, unread, from disk and from memory', async () => {
    const file = join(tmp, 'big.yaml');
    writeFileSync(file, `version: 1\nnamespaces:\n${'  - netns: host\n'.repeat(200_000)}`);
    const r = await loadConfig(file);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.diagnostics).toMatchObject([{ code: 'file-too-large', file, message: expect.stringMatching(/at most 1048576/) }]);
    expect(parseConfigText(Buffer.alloc(3 * 1024 * 1024, 0x20), 'm.yaml').diagnostics[0]!.code).toBe('file-too-large');
  });
  it('refuses binary garbage', () => {
    const bytes = Uint8Array.from({ length: 4096 }, (_, i) => (i * 2654435761) >>> 24);
    expect(parseConfigText(bytes, 'g.yaml').diagnostics).toMatchObject([{ code: 'not-text', file: 'g.yaml' }]);
    expect(parseConfigText('version: 1\u0000\nnamespaces: []\n', 'n.yaml').diagnostics).toMatchObject([{ code: 'not-text', line: 1, column: 11 }]);
    const latin1 = Buffer.concat([Buffer.from('version: 1\nnamespaces:\n  - netns: caf'), Buffer.from([0xe9]), Buffer.from('\n')]);
    expect(parseConfigText(latin1, 'l.yaml').diagnostics).toMatchObject([{ code: 'not-text', line: 3, column: 15 }]);
  });
  it('refuses an empty or comment-only file', () => {
    expect(parse('').diagnostics).toMatchObject([{ code: 'empty', line: 1, column: 1, hint: expect.stringContaining('version: 1') }]);
    expect(parse('# nothing\n\n').diagnostics).toMatchObject([{ code: 'empty' }]);
  });
  it('refuses several documents in one file', () => {
    const d = one('version: 1\nnamespaces: []\n---\nversion: 1\n');
    expect(d).toMatchObject({ code: 'yaml-multiple-docs', line: 3 });
  });
  it('refuses unknown tags and YAML syntax errors with their position', () => {
    expect(one('version: 1\nnamespaces: !foo []\n')).toMatchObject({ line: 2, column: 13 });
    const syntax = errors('version: 1\nnamespaces:\n  - netns: host\n   limits: [\n');
    expect(syntax[0]!.line).toBeGreaterThanOrEqual(3);
  });
  it('prints diagnostics with the source line and a caret, without a stack trace', () => {
    const text = eps('{ address: 192.0.2.1, flags: [subflow, bakup] }');
    const out = formatDiagnostics(parse(text).diagnostics, { color: false });
    expect(out).toBe(
      'c.yaml:5:48: error: namespaces[0].endpoints[0].flags[1]: the string "bakup" is not one of: signal, subflow, backup, fullmesh, laminar\n' +
        '  5 |       - { address: 192.0.2.1, flags: [subflow, bakup] }\n' +
        '    |                                                ^^^^^\n' +
        '  hint: did you mean `backup`?\n',
    );
    expect(formatDiagnostics(parse(text).diagnostics, { color: true })).toContain('\x1b[31m^^^^^');
  });
  it('does not pass terminal escapes from the file to the output', () => {
    const text = eps('{ address: "\\e[31mx", flags: [subflow] }');
    expect(formatDiagnostics(parse(text).diagnostics)).not.toContain('\x1b');
  });
});

describe('directories', () => {
  it('reads *.yaml and *.yml in lexical order, skipping hidden and other files', async () => {
    const r = await loadConfig(join(FIXTURES, 'conf.d'));
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.files.map((f) => f.split('/').pop())).toEqual(['10-base.yaml', '20-edge.yml', '3-late.yaml']);
    expect(r.config.namespaces.map((e) => e.netns)).toEqual(['host', 'host', 'host']);
  });
  it('is invalid as a whole when one file is, naming that file', async () => {
    const dir = join(tmp, 'mixed');
    mkdirSync(dir);
    writeFileSync(join(dir, 'a.yaml'), 'version: 1\nnamespaces:\n  - netns: host\n    limits: { subflows: 2 }\n');
    writeFileSync(join(dir, 'b.yaml'), 'version: 1\nnamespaces:\n  - netns: host\n    limits: { subflows: 20 }\n');
    const r = await loadConfig(dir);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.diagnostics).toMatchObject([{ file: join(dir, 'b.yaml'), line: 4, column: 25 }]);
  });
  it('follows symlinked files (Kubernetes ConfigMap layout) and skips ..data', async () => {
    const dir = join(tmp, 'cm');
    mkdirSync(join(dir, '..2024_01_01'), { recursive: true });
    writeFileSync(join(dir, '..2024_01_01', 'config.yaml'), 'version: 1\nnamespaces:\n  - netns: host\n');
    symlinkSync('..2024_01_01', join(dir, '..data'));
    symlinkSync(join('..data', 'config.yaml'), join(dir, 'config.yaml'));
    const r = await loadConfig(dir);
    expect(r.ok && r.files).toEqual([join(dir, 'config.yaml')]);
  });
  it('reloading gives a fresh config: a caller changing one does not change the next load', async () => {
    const dir = join(FIXTURES, 'conf.d');
    const first = await loadConfig(dir);
    if (!first.ok) expect.fail('fixture invalid');
    first.config.namespaces[0]!.limits!.subflows = 8;
    first.config.namespaces.push({ netns: 'x' });
    const second = await loadConfig(dir);
    expect(second.ok && second.config.namespaces.map((e) => e.limits?.subflows)).toEqual([2, 4, 3]);
  });
  it('refuses an empty directory and a missing path', async () => {
    const dir = join(tmp, 'empty');
    mkdirSync(dir);
    const r = await loadConfig(dir);
    expect(!r.ok && r.diagnostics[0]!.code).toBe('no-files');
    const m = await loadConfig('does/not/exist.yaml', { cwd: tmp });
    expect(!m.ok && m.diagnostics[0]).toMatchObject({ code: 'not-found', file: 'does/not/exist.yaml' });
  });
});

describe('the hash of a load', () => {
  it('is of the bytes parsed: equal for the same files, different after an edit, cached parses included', async () => {
    const dir = join(tmp, 'hashed');
    mkdirSync(dir);
    const a = 'version: 1\nnamespaces:\n  - netns: host\n    limits: { subflows: 2 }\n';
    writeFileSync(join(dir, '10-a.yaml'), a);
    const first = await loadConfig(dir);
    const again = await loadConfig(dir);
    if (!first.ok || !again.ok) expect.fail('valid config refused');
    expect(first.hash).toMatch(/^[0-9a-f]{64}$/);
    expect(again.hash).toBe(first.hash);
    writeFileSync(join(dir, '10-a.yaml'), a.replace('subflows: 2', 'subflows: 3'));
    const edited = await loadConfig(dir);
    expect(edited.ok && edited.config.namespaces[0]?.limits?.subflows).toBe(3);
    expect(edited.ok && edited.hash).not.toBe(first.hash);
    // Back to the first bytes: the cached parse and the first hash come back together.
    writeFileSync(join(dir, '10-a.yaml'), a);
    const back = await loadConfig(dir);
    expect(back.ok && [back.hash, back.config.namespaces[0]?.limits?.subflows]).toEqual([first.hash, 2]);
    // As documented for CI: sha256 of the files' bytes in load order (`cat files | sha256sum`).
    writeFileSync(join(dir, '20-b.yaml'), a.replace('host', 'x-*'));
    const two = await loadConfig(dir);
    if (!two.ok) expect.fail('valid config refused');
    expect(two.hash).toBe(createHash('sha256').update(a).update(a.replace('host', 'x-*')).digest('hex'));
  });
});
