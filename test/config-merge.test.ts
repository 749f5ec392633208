// Merging entries into one namespace's desired state, after-merge rules, and
// render (round trip, and resolve-equivalence as a property).
import { join } from 'node:path';
import fc from 'fast-check';
import { parse as parseYaml } from 'yaml';
import { describe, expect, it } from 'vitest';
import {
  checkMerged,
  loadConfig,
  missingNamespaces,
  nodeName,
  parseConfigFiles,
  parseConfigText,
  renderConfig,
  resolveAll,
  resolveNamespace,
} from '../src/config/index.js';
import { configSchema } from '../src/core/schema.js';
import type { Config, EndpointConfig, NamespaceEntry } from '../src/core/schema.js';

function cfg(text: string): Config {
  const r = parseConfigText(text, 't.yaml');
  if (!r.config) expect.fail(r.diagnostics.map((d) => `${d.line}:${d.column} ${d.message}`).join('\n'));
  return r.config;
}
const C = (...namespaces: NamespaceEntry[]): Config => ({ version: 1, namespaces });

describe('resolveNamespace', () => {
  it('merges matching entries in order: keys of mptcp/limits/rpFilter one by one, later wins', () => {
    const c = C(
      { netns: 'host', mptcp: { enabled: true, addAddrTimeout: 60 }, limits: { subflows: 2, addAddrAccepted: 1 }, rpFilter: { eth0: 1, all: 'strict' } },
      { netns: 'host', mptcp: { addAddrTimeout: 30 }, limits: { subflows: 4 }, rpFilter: { eth0: 'loose' } },
    );
    expect(resolveNamespace(c, 'n', 'host')).toEqual({
      netns: 'host',
      mptcp: { enabled: true, addAddrTimeout: 30 },
      limits: { subflows: 4, addAddrAccepted: 1 },
      endpoints: undefined,
      rpFilter: { all: 'strict', eth0: 'loose' },
      prune: true,
      conflicts: 'fail',
      linkDown: { policy: 'withdraw', holdMs: 3000 },
    });
  });
  it('linkDown and linkDownHold: the later entry wins, each on its own', () => {
    const c = C({ netns: 'host', linkDown: 'keep', linkDownHold: '5s' }, { netns: 'host', linkDown: 'withdraw' });
    expect(resolveNamespace(c, 'n', 'host')!.linkDown).toEqual({ policy: 'withdraw', holdMs: 5000 });
  });
  it('normalises rp_filter numbers to names', () => {
    const d = resolveNamespace(C({ netns: 'host', rpFilter: { a: 0, b: 1, c: 2 } }), 'n', 'host')!;
    expect(d.rpFilter).toEqual({ a: 'off', b: 'strict', c: 'loose' });
  });
  it('replaces an endpoint by (address, port), or (dev, port); the replacement takes the later place', () => {
    const c = C(
      { netns: 'host', endpoints: [{ address: '192.0.2.1', flags: ['subflow'] }, { address: '192.0.2.2', flags: ['subflow'] }, { dev: 'usb0', flags: ['subflow'] }] },
      { netns: 'host', endpoints: [{ address: '::ffff:192.0.2.1', flags: ['subflow', 'backup'] }, { dev: 'usb0', family: 'ipv6', flags: ['backup', 'subflow'] }, { address: '192.0.2.2', port: 10000, flags: ['signal'] }] },
    );
    expect(resolveNamespace(c, 'n', 'host')!.endpoints).toEqual([
      { address: '192.0.2.2', flags: ['subflow'] },
      { address: '::ffff:192.0.2.1', flags: ['subflow', 'backup'] },
      { dev: 'usb0', family: 'ipv6', flags: ['subflow', 'backup'] },
      { address: '192.0.2.2', port: 10000, flags: ['signal'] },
    ]);
  });
  it('leaves endpoints unmanaged unless an entry declares the key (a limits-only entry never prunes)', () => {
    expect(resolveNamespace(C({ netns: 'host', limits: { subflows: 1 } }), 'n', 'host')!.endpoints).toBeUndefined();
    expect(resolveNamespace(C({ netns: 'host', endpoints: [] }, { netns: 'host', limits: { subflows: 1 } }), 'n', 'host')!.endpoints).toEqual([]);
  });
  it('the later prune and conflicts win; defaults true and fail', () => {
    const c = C({ netns: 'host', prune: false, conflicts: 'ignore' }, { netns: 'host', conflicts: 'warn' }, { netns: 'host' });
    expect(resolveNamespace(c, 'n', 'host')).toMatchObject({ prune: false, conflicts: 'warn' });
    expect(resolveNamespace(C({ netns: 'host' }), 'n', 'host')).toMatchObject({ prune: true, conflicts: 'fail' });
  });
  it('applies an entry only on nodes its globs match (absent: every node)', () => {
    const c = C({ netns: 'host', limits: { subflows: 1 } }, { netns: 'host', nodes: ['edge-*', 'gw-1'], limits: { subflows: 5 } });
    expect(resolveNamespace(c, 'edge-3', 'host')!.limits.subflows).toBe(5);
    expect(resolveNamespace(c, 'gw-1', 'host')!.limits.subflows).toBe(5);
    expect(resolveNamespace(c, 'gw-10', 'host')!.limits.subflows).toBe(1);
    expect(resolveNamespace(C({ netns: 'host', nodes: ['edge-*'] }), 'core', 'host')).toBeUndefined();
  });
  it('`host` only matches the own namespace; globs never match it', () => {
    const c = C({ netns: '*', limits: { subflows: 1 } }, { netns: 'h*', limits: { subflows: 2 } });
    expect(resolveNamespace(c, 'n', 'host')).toBeUndefined();
    expect(resolveNamespace(c, 'n', 'hello')!.limits.subflows).toBe(2);
    expect(resolveNamespace(C({ netns: 'host' }), 'n', 'hostile')).toBeUndefined();
  });
  it('returns undefined for a namespace no entry matches (never touched)', () => {
    expect(resolveNamespace(C({ netns: 'cni-*' }), 'n', 'other')).toBeUndefined();
  });
});

describe('resolveAll and missingNamespaces', () => {
  const c = C({ netns: 'cni-*', limits: { subflows: 2 } }, { netns: 'db', limits: { subflows: 3 } }, { netns: 'host', limits: { subflows: 4 } }, { netns: 'gone' });
  it('resolves host plus the live namespaces some entry matches', () => {
    expect(resolveAll(c, 'n', ['db', 'cni-1', 'web', 'cni-2', 'cni-1']).map((d) => [d.netns, d.limits.subflows])).toEqual([
      ['host', 4],
      ['db', 3],
      ['cni-1', 2],
      ['cni-2', 2],
    ]);
  });
  it('lists the literal names that are declared but missing', () => {
    expect(missingNamespaces(c, 'n', ['db', 'cni-1'])).toEqual(['gone']);
  });
});

describe('after-merge rules', () => {
  it('refuses 9 endpoints after merging two files, at the endpoint of the later file', () => {
    const a = `version: 1\nnamespaces:\n  - netns: "cni-*"\n    endpoints:\n${[1, 2, 3, 4, 5].map((i) => `      - { address: 192.0.2.${i}, flags: [subflow] }\n`).join('')}`;
    const b = `version: 1\nnamespaces:\n  - netns: cni-db\n    endpoints:\n${[6, 7, 8, 9].map((i) => `      - { address: 198.51.100.${i}, flags: [subflow] }\n`).join('')}`;
    const r = parseConfigFiles([
      { file: 'a.yaml', content: a },
      { file: 'b.yaml', content: b },
    ]);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.diagnostics).toMatchObject([
      { code: 'too-many-endpoints', file: 'b.yaml', line: 8, column: 9, path: 'namespaces[0].endpoints[3]', message: expect.stringContaining('namespace "cni-db"'), hint: expect.stringContaining('a.yaml:3, b.yaml:3') },
    ]);
  });
  it('refuses an id used twice after merging, at the later endpoint', () => {
    const text = `version: 1
namespaces:
  - netns: host
    endpoints:
      - { address: 192.0.2.1, id: 5, flags: [subflow] }
  - netns: host
    nodes: ["edge-*"]
    endpoints:
      - { address: 192.0.2.2, id: 5, flags: [subflow] }
`;
    const r = parseConfigFiles([{ file: 'f.yaml', content: text }]);
    expect(!r.ok && r.diagnostics).toMatchObject([{ code: 'duplicate-id', line: 9, column: 9, message: expect.stringContaining('node "edge-') }]);
    // A node the override does not reach is fine.
    expect(parseConfigFiles([{ file: 'f.yaml', content: text }], { node: 'core-1' }).ok).toBe(true);
    // Replacing the same endpoint keeps one id user: no error.
    const same = text.replace('192.0.2.2', '192.0.2.1');
    expect(parseConfigFiles([{ file: 'f.yaml', content: same }]).ok).toBe(true);
  });
  it('checkMerged works on the live list, without positions too', () => {
    const c = C({ netns: 'a*', endpoints: [{ address: '192.0.2.1', id: 1, flags: ['subflow'] }] }, { netns: '*b', endpoints: [{ address: '192.0.2.2', id: 1, flags: ['subflow'] }] });
    expect(checkMerged(c, 'n', ['ab'])).toMatchObject([{ code: 'duplicate-id', path: '', message: expect.stringContaining('namespace "ab"') }]);
    expect(checkMerged(c, 'n', ['a', 'b'])).toEqual([]);
  });
});

describe('directory order', () => {
  it('merges files in lexical order (10-, 20-, 3-)', async () => {
    const r = await loadConfig(join(import.meta.dirname, 'fixtures', 'config', 'conf.d'));
    if (!r.ok) expect.fail('fixture invalid');
    expect(resolveNamespace(r.config, 'edge-1', 'host')).toMatchObject({
      limits: { subflows: 3, addAddrAccepted: 0 },
      endpoints: [{ address: '192.0.2.1', dev: 'eth0', flags: ['subflow', 'backup'] }],
    });
    expect(resolveNamespace(r.config, 'core-1', 'host')!.endpoints).toEqual([{ address: '192.0.2.1', dev: 'eth0', flags: ['subflow'] }]);
  });
});

describe('render', () => {
  const text = `version: 1
namespaces:
  - netns: host
    limits: { subflows: 2 }
    endpoints:
      - { address: 192.0.2.1, dev: eth0, flags: [subflow] }
  - netns: "cni-*"
    nodes: ["edge-*"]
    rpFilter: { eth0: 2 }
  - netns: host
    nodes: ["edge-*"]
    mptcp: { enabled: true }
    endpoints:
      - { address: 192.0.2.1, dev: eth0, flags: [backup, subflow] }
  - netns: cni-db
    limits: { subflows: 1 }
`;
  it('prints the merged state for the node, with the header and without nodes', () => {
    expect(renderConfig(cfg(text), 'edge-1')).toBe(`# yaml-language-server: $schema=../schemas/mptcp-reconciler.schema.json
# Effective desired state for node "edge-1" (mptcp-reconciler render).
version: 1
namespaces:
  - netns: cni-*
    rpFilter:
      eth0: loose
  - netns: host
    mptcp:
      enabled: true
    limits:
      subflows: 2
    endpoints:
      - address: 192.0.2.1
        dev: eth0
        flags: [subflow, backup]
    prune: true
    conflicts: fail
  - netns: cni-db
    limits:
      subflows: 1
    rpFilter:
      eth0: loose
    prune: true
    conflicts: fail
`);
  });
  it('output is valid input, renders to itself, and resolves the same', () => {
    for (const node of ['edge-1', 'core-1']) {
      const once = renderConfig(cfg(text), node);
      const again = cfg(once);
      expect(renderConfig(again, node)).toBe(once);
      for (const ns of ['host', 'cni-db', 'cni-x', 'other']) expect(resolveNamespace(again, node, ns)).toEqual(resolveNamespace(cfg(text), node, ns));
    }
  });
  it('renders nothing for a node no entry applies to', () => {
    expect(renderConfig(C({ netns: 'host', nodes: ['a'] }), 'b')).toContain('namespaces: []');
  });

  // Small pools so that patterns overlap and keys collide often.
  const netnsPool = ['host', 'ns1', 'cni-a', 'cni-*', '*-a', '*', 'cni-[ab]', 'ns?'];
  const namesToCheck = ['host', 'ns1', 'ns2', 'cni-a', 'cni-b', 'cni-c', 'x-a', 'zzz'];
  const nodesPool = ['edge-*', 'edge-1', 'core-?', '*'];
  const endpointArb = fc.oneof(
    fc.record({ address: fc.constantFrom('192.0.2.1', '::ffff:192.0.2.1', '192.0.2.2', '2001:db8::1'), flags: fc.subarray(['subflow', 'backup', 'fullmesh'] as const, { minLength: 0 }).map((f) => (f.includes('fullmesh') ? [...new Set(['subflow' as const, ...f])] : f)) }, { requiredKeys: ['address'] }),
    fc.record({ address: fc.constantFrom('192.0.2.1', '198.51.100.1'), port: fc.constantFrom(10000, 10001), flags: fc.constant(['signal'] as EndpointConfig['flags']), id: fc.integer({ min: 1, max: 255 }) }, { requiredKeys: ['address', 'port', 'flags'] }),
    fc.record({ dev: fc.constantFrom('eth0', 'usb0'), family: fc.constantFrom('ipv4' as const, 'ipv6' as const, 'any' as const), flags: fc.constant(['subflow'] as EndpointConfig['flags']) }, { requiredKeys: ['dev'] }),
  );
  const entryArb: fc.Arbitrary<NamespaceEntry> = fc.record(
    {
      netns: fc.constantFrom(...netnsPool),
      nodes: fc.subarray(nodesPool, { minLength: 1 }),
      mptcp: fc.record({ enabled: fc.boolean(), addAddrTimeout: fc.integer({ min: 0, max: 300 }), pathManager: fc.constantFrom('kernel' as const, 'userspace' as const) }, { requiredKeys: [] }),
      limits: fc.record({ subflows: fc.integer({ min: 0, max: 8 }), addAddrAccepted: fc.integer({ min: 0, max: 8 }) }, { requiredKeys: [] }),
      endpoints: fc.array(endpointArb, { maxLength: 4 }),
      rpFilter: fc.dictionary(fc.constantFrom('all', 'default', 'eth0', 'usb0'), fc.constantFrom('off' as const, 'strict' as const, 'loose' as const, 0 as const, 1 as const, 2 as const), { maxKeys: 3 }),
      prune: fc.boolean(),
      conflicts: fc.constantFrom('fail' as const, 'warn' as const, 'ignore' as const),
    },
    { requiredKeys: ['netns'] },
  );
  it('property: for every namespace name, the rendered file resolves like the original', () => {
    fc.assert(
      fc.property(fc.array(entryArb, { maxLength: 7 }), fc.constantFrom('edge-1', 'edge-2', 'core-1', 'x'), (entries, node) => {
        const original = configSchema.parse({ version: 1, namespaces: entries });
        const text = renderConfig(original, node);
        const rendered = configSchema.parse(parseYaml(text));
        for (const ns of namesToCheck) expect(resolveNamespace(rendered, node, ns)).toEqual(resolveNamespace(original, node, ns));
        expect(renderConfig(rendered, node)).toBe(text);
      }),
      { numRuns: 300 },
    );
  });
});

describe('nodeName', () => {
  it('takes --node, else NODE_NAME, else the hostname', () => {
    expect(nodeName({ node: 'a' }, { NODE_NAME: 'b' }, () => 'c')).toBe('a');
    expect(nodeName({}, { NODE_NAME: 'b' }, () => 'c')).toBe('b');
    expect(nodeName({}, { NODE_NAME: '' }, () => 'c')).toBe('c');
    expect(nodeName({}, {})).toMatch(/.+/);
  });
});
