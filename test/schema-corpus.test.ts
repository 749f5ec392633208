// The committed JSON Schema (what editors and CI linters check) against an
// independent validator, ajv in strict mode with its formats: every config that
// `validate` refuses must be refused by the schema too, except the rules JSON
// Schema cannot express, and those are listed (SCHEMA_LIMITS) and published in
// the config reference. Every config `validate` accepts must pass the schema.
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { parse as parseYaml } from 'yaml';
import { describe, expect, it } from 'vitest';
import { parseConfigFiles, parseConfigText } from '../src/config/index.js';
import { JSON_SCHEMA_PATH, referenceDocText, SCHEMA_LIMITS, type SchemaLimit } from '../src/config/reference.js';

const root = join(import.meta.dirname, '..');
// A CommonJS module: its plugin function is exported as `default` as well.
const addFormats = addFormatsModule.default;
const ajv = new Ajv({ strict: true, allErrors: true });
addFormats(ajv);
const schemaValid = ajv.compile(JSON.parse(readFileSync(join(root, JSON_SCHEMA_PATH), 'utf8')) as object);

function ajvAccepts(text: string): boolean {
  // As an editor sees the document: plain data, duplicate keys collapsed.
  return schemaValid(parseYaml(text, { uniqueKeys: false }));
}

/** What `validate -f c.yaml` reports: the file, then the merged namespaces. */
function validateErrors(text: string): number {
  const r = parseConfigFiles([{ file: 'c.yaml', content: text }]);
  return r.ok ? 0 : r.diagnostics.filter((d) => d.severity === 'error').length;
}

const host = (body: string) => `version: 1\nnamespaces:\n  - netns: host\n${body}`;
const eps = (...items: string[]) => host(`    endpoints:\n${items.map((i) => `      - ${i}\n`).join('')}`);
const ns = (netns: string) => `version: 1\nnamespaces:\n  - netns: ${JSON.stringify(netns)}\n`;
const addr = (a: string, extra = '') => eps(`{ address: ${JSON.stringify(a)}, flags: [subflow]${extra} }`);

/** Invalid configs; `limit` names the rule the schema cannot express, when it cannot. */
const INVALID: { name: string; text: string; limit?: SchemaLimit }[] = [
  { name: 'signal with fullmesh', text: eps('{ address: 192.0.2.1, flags: [signal, subflow, fullmesh] }') },
  { name: 'fullmesh without subflow', text: eps('{ address: 192.0.2.1, flags: [fullmesh] }') },
  { name: 'address hello', text: addr('hello') },
  { name: 'address 192.0.2.300', text: addr('192.0.2.300') },
  { name: 'address with a leading zero', text: addr('192.0.2.01') },
  { name: 'address with /24', text: addr('192.0.2.1/24') },
  { name: 'address with a zone id', text: addr('fe80::1%eth0', ', dev: eth0') },
  { name: 'address 2001:db8:::1', text: addr('2001:db8:::1') },
  { name: 'address 0.0.0.0', text: addr('0.0.0.0') },
  { name: 'address 0.1.2.3', text: addr('0.1.2.3') },
  { name: 'address ::', text: addr('::') },
  { name: 'address 0:0:0:0:0:0:0:0', text: addr('0:0:0:0:0:0:0:0') },
  { name: 'address 0::0', text: addr('0::0'), limit: 'address-spellings' },
  { name: 'address 255.255.255.255', text: addr('255.255.255.255') },
  { name: 'address 127.0.0.1', text: addr('127.0.0.1') },
  { name: 'address ::1', text: addr('::1') },
  { name: 'address ::ffff:127.0.0.1', text: addr('::ffff:127.0.0.1') },
  { name: 'address 224.0.0.1', text: addr('224.0.0.1') },
  { name: 'address 239.255.255.250', text: addr('239.255.255.250') },
  { name: 'address ff02::1', text: addr('ff02::1') },
  { name: 'link-local address without dev', text: addr('fe80::1') },
  { name: 'port with subflow', text: eps('{ address: 192.0.2.1, port: 10000, flags: [signal, subflow] }') },
  { name: 'port without signal', text: eps('{ address: 192.0.2.1, port: 10000, flags: [backup] }') },
  { name: 'port without flags', text: eps('{ address: 192.0.2.1, port: 10000 }') },
  { name: 'port 0', text: eps('{ address: 192.0.2.1, port: 0, flags: [signal] }') },
  { name: 'a 17-byte dev', text: eps('{ dev: abcdefghijklmnopq, flags: [subflow] }') },
  { name: 'a 16-byte dev of 8 characters', text: eps('{ dev: "éééééééé", flags: [subflow] }'), limit: 'byte-lengths' },
  { name: 'dev a/b', text: eps('{ dev: "a/b", flags: [subflow] }') },
  { name: 'dev a:b', text: eps('{ dev: "a:b", flags: [subflow] }') },
  { name: 'dev ..', text: eps('{ dev: "..", flags: [subflow] }') },
  { name: 'dev a;b', text: eps('{ dev: "a;b", flags: [subflow] }') },
  { name: 'netns a/b', text: ns('a/b') },
  { name: 'netns ../etc', text: ns('../etc') },
  { name: 'netns a..b', text: ns('a..b') },
  { name: 'netns $(reboot)', text: ns('$(reboot)') },
  { name: 'netns empty', text: ns('') },
  { name: 'netns .hidden', text: ns('.hidden') },
  { name: 'netns .*', text: ns('.*') },
  { name: 'netns with an unclosed [', text: ns('cni-[0-9') },
  { name: 'netns with a stray ]', text: ns('cni-0]') },
  { name: 'netns of 200 two-byte characters', text: ns('é'.repeat(200)), limit: 'byte-lengths' },
  { name: 'duplicate ids', text: eps('{ address: 192.0.2.1, id: 7, flags: [subflow] }', '{ address: 192.0.2.2, id: 7, flags: [subflow] }'), limit: 'unique-keys' },
  { name: 'duplicate flags', text: eps('{ address: 192.0.2.1, flags: [subflow, subflow] }') },
  { name: 'the same endpoint twice', text: eps('{ address: 192.0.2.1, flags: [subflow] }', '{ address: 192.0.2.1, flags: [subflow] }') },
  { name: 'the same address twice with other flags', text: eps('{ address: 192.0.2.1, flags: [subflow] }', '{ address: 192.0.2.1, flags: [signal] }'), limit: 'unique-keys' },
  { name: 'an address and its v4-mapped form', text: eps('{ address: 192.0.2.1, flags: [subflow] }', '{ address: "::ffff:192.0.2.1", flags: [signal] }'), limit: 'unique-keys' },
  { name: '9 endpoints', text: eps(...Array.from({ length: 9 }, (_, i) => `{ address: 192.0.2.${i + 1}, flags: [subflow] }`)) },
  {
    name: '9 endpoints over two entries',
    text: `${eps(...Array.from({ length: 5 }, (_, i) => `{ address: 192.0.2.${i + 1}, flags: [subflow] }`))}  - netns: host\n    endpoints:\n${Array.from({ length: 4 }, (_, i) => `      - { address: 198.51.100.${i + 1}, flags: [subflow] }\n`).join('')}`,
    limit: 'merged',
  },
  { name: 'no address and no dev', text: eps('{ flags: [subflow] }') },
  { name: 'family with address', text: eps('{ address: 192.0.2.1, dev: eth0, family: ipv4, flags: [subflow] }') },
  { name: 'family without dev', text: eps('{ address: 192.0.2.1, family: ipv4, flags: [subflow] }') },
  { name: 'flag bakup', text: eps('{ address: 192.0.2.1, flags: [subflow, bakup] }') },
  { name: 'id 256', text: eps('{ address: 192.0.2.1, id: 256, flags: [subflow] }') },
  { name: 'an unknown endpoint key', text: eps('{ address: 192.0.2.1, flag: [subflow] }') },
  { name: 'version 2', text: 'version: 2\nnamespaces: []\n' },
  { name: 'no version', text: 'namespaces: []\n' },
  { name: 'subflows 9', text: host('    limits: { subflows: 9 }\n') },
  { name: 'rpFilter 3', text: host('    rpFilter: { eth0: 3 }\n') },
  { name: 'rpFilter key a/b', text: host('    rpFilter: { "a/b": loose }\n') },
  { name: 'pathManager kernal', text: host('    mptcp: { pathManager: kernal }\n') },
  { name: 'enabled: 1', text: host('    mptcp: { enabled: 1 }\n') },
  { name: 'scheduler with a space', text: host('    mptcp: { scheduler: "a b" }\n') },
  { name: 'conflicts fial', text: host('    conflicts: fial\n') },
  { name: 'a duplicate key', text: host('    prune: true\n    prune: false\n'), limit: 'yaml' },
  { name: 'a __proto__ key', text: host('    rpFilter: { __proto__: loose }\n'), limit: 'yaml' },
];

const VALID: { name: string; text: string }[] = [
  ...readdirSync(join(root, 'examples'))
    .filter((f) => f.endsWith('.yaml'))
    .map((f) => ({ name: `examples/${f}`, text: readFileSync(join(root, 'examples', f), 'utf8') })),
  { name: 'link-local address with dev', text: eps('{ address: "fe80::1", dev: eth0, flags: [subflow] }') },
  { name: 'IPv4 link-local', text: addr('169.254.10.1') },
  { name: 'v4-mapped global address', text: addr('::ffff:192.0.2.1') },
  { name: 'upper-case IPv6', text: addr('2001:DB8::A') },
  { name: 'port with signal', text: eps('{ address: 192.0.2.1, port: 10000, flags: [signal, backup] }') },
  { name: 'fullmesh with subflow', text: eps('{ address: 192.0.2.1, flags: [subflow, fullmesh, backup] }') },
  { name: 'dev with family', text: eps('{ dev: usb0, family: ipv6, flags: [subflow] }') },
  { name: '8 endpoints', text: eps(...Array.from({ length: 8 }, (_, i) => `{ address: 192.0.2.${i + 1}, flags: [subflow] }`)) },
  { name: 'a 15-byte dev', text: eps('{ dev: abcdefghijklmno, flags: [subflow] }') },
  ...['host', 'ns1', 'cni-*', 'cni-[0-9a-f]*', 'pod-{a,b}', 'a.b_c-d@e', 'x.'].map((n) => ({ name: `netns ${n}`, text: ns(n) })),
];

describe('the JSON Schema, checked by ajv (strict, with formats)', () => {
  it.each(INVALID.map((c) => [c.name, c] as const))('%s: validate refuses it, and so does the schema unless listed', (_name, c) => {
    expect(validateErrors(c.text), 'validate should refuse it').toBeGreaterThan(0);
    expect(ajvAccepts(c.text), c.limit ? `the schema cannot express: ${SCHEMA_LIMITS[c.limit]}` : 'the schema should refuse it').toBe(c.limit !== undefined);
  });

  it.each(VALID.map((c) => [c.name, c] as const))('%s: validate and the schema accept it', (_name, c) => {
    expect(validateErrors(c.text)).toBe(0);
    expect(ajvAccepts(c.text), JSON.stringify(schemaValid.errors)).toBe(true);
  });

  it('the config reference lists what the schema alone cannot catch', () => {
    const doc = referenceDocText();
    for (const text of Object.values(SCHEMA_LIMITS)) expect(doc).toContain(text);
    // Every listed limit is real: some corpus case shows it.
    expect(new Set(INVALID.flatMap((c) => (c.limit ? [c.limit] : [])))).toEqual(new Set(Object.keys(SCHEMA_LIMITS)));
  });
});

// A second, independent implementation (python-jsonschema, Draft 7 with its
// format checker), as editors and CI linters differ: where it is installed it
// must draw the same line as ajv over the whole corpus.
const pythonJsonschema = spawnSync('python3', ['-c', 'import jsonschema'], { encoding: 'utf8' }).status === 0;
describe.skipIf(!pythonJsonschema)('the JSON Schema, checked by python-jsonschema', () => {
  it('accepts and refuses exactly what ajv does, on every corpus case', () => {
    const docs = [...INVALID, ...VALID].map((c) => parseYaml(c.text, { uniqueKeys: false }) as unknown);
    const script = [
      'import json, sys, jsonschema',
      'schema = json.load(open(sys.argv[1]))',
      'v = jsonschema.Draft7Validator(schema, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)',
      'print(json.dumps([v.is_valid(d) for d in json.load(sys.stdin)]))',
    ].join('\n');
    const r = spawnSync('python3', ['-c', script, join(root, JSON_SCHEMA_PATH)], { input: JSON.stringify(docs), encoding: 'utf8' });
    expect(r.stderr).toBe('');
    const py = JSON.parse(r.stdout) as boolean[];
    const names = [...INVALID, ...VALID].map((c) => c.name);
    const differ = names.filter((_, i) => py[i] !== (schemaValid(docs[i]) as boolean));
    expect(differ).toEqual([]);
  });
});

describe('the new address and netns rules, positioned like every config error', () => {
  it.each([
    ['0.0.0.0', 'the unspecified address'],
    ['::', 'the unspecified address'],
    ['255.255.255.255', 'the broadcast address'],
    ['224.0.0.251', 'a multicast address'],
    ['ff02::fb', 'a multicast address'],
    ['127.0.0.53', 'a loopback address'],
    ['::1', 'the loopback address'],
    ['::ffff:127.0.0.1', 'a loopback address'],
  ])('refuses %s as %s, with a hint', (a, what) => {
    const text = eps(`address: "${a}"\n        flags: [signal]`);
    const errs = parseConfigText(text, 'c.yaml').diagnostics;
    expect(errs).toMatchObject([
      { severity: 'error', line: 5, column: 18, path: 'namespaces[0].endpoints[0].address', message: expect.stringContaining(what), hint: expect.stringContaining('ip -br addr') },
    ]);
  });
  it('a link-local IPv6 address needs dev, and is accepted with it', () => {
    const text = eps('address: "fe80::1"\n        flags: [subflow]');
    expect(parseConfigText(text, 'c.yaml').diagnostics).toMatchObject([
      { severity: 'error', line: 5, column: 18, path: 'namespaces[0].endpoints[0].address', message: expect.stringContaining('needs `dev`'), hint: expect.stringContaining('dev') },
    ]);
    expect(parseConfigText(eps('{ address: "FE80::1", dev: eth0, flags: [subflow] }'), 'c.yaml').diagnostics).toEqual([]);
  });
  it.each([
    ['.hidden', 'never listed'],
    ['.*', 'never listed'],
    ['cni-[0-9', 'never closed'],
    ['cni-]', 'without a "["'],
    ['a[[b]', 'do not nest'],
  ])('refuses the netns %j with a hint', (n, what) => {
    const text = `version: 1\nnamespaces:\n  - limits: {}\n    netns: "${n}"\n`;
    expect(parseConfigText(text, 'c.yaml').diagnostics).toMatchObject([
      { severity: 'error', line: 4, column: 12, path: 'namespaces[0].netns', message: expect.stringContaining(what), hint: expect.stringContaining('ip netns list') },
    ]);
  });
});
