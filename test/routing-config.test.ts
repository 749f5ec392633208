// sourceRouting, linkDown and linkDownHold in the config file: what is refused
// (with position and hint), how entries merge, and that render round-trips them.
import { describe, expect, it } from 'vitest';
import { parseConfigFiles, parseConfigText, renderConfig } from '../src/config/index.js';
import type { Diagnostic } from '../src/config/index.js';
import { resolveRouting } from '../src/config/merge.js';
import type { Config } from '../src/core/schema.js';

const host = (body: string) => `version: 1\nnamespaces:\n  - netns: host\n${body}`;

function errors(text: string): Diagnostic[] {
  const r = parseConfigText(text, 'c.yaml');
  expect(r.config, 'expected the file to be refused').toBeUndefined();
  return r.diagnostics.filter((d) => d.severity === 'error');
}
function cfg(text: string): Config {
  const r = parseConfigText(text, 'c.yaml');
  if (!r.config) expect.fail(r.diagnostics.map((d) => `${d.line}:${d.column} ${d.message}`).join('\n'));
  return r.config;
}
function at(text: string, needle: string): { line: number; column: number } {
  const idx = text.indexOf(needle);
  if (idx < 0) throw new Error(`${needle} not in text`);
  const before = text.slice(0, idx).split('\n');
  return { line: before.length, column: before[before.length - 1]!.length + 1 };
}

describe('sourceRouting in one file', () => {
  it('accepts the contract example, IPv6 gateways and a priority', () => {
    const c = cfg(
      host(`    sourceRouting:
      c1: { table: 101, gateway: 198.51.100.2 }
      c2: { table: 4294967295, gateway6: "fe80::1", priority: 200 }
    linkDown: keep
    linkDownHold: 1m30s
`),
    );
    expect(resolveRouting(c, 'n', 'host')).toEqual({
      sourceRouting: { c1: { table: 101, gateway: '198.51.100.2' }, c2: { table: 4294967295, gateway6: 'fe80::1', priority: 200 } },
      linkDown: 'keep',
      linkDownHoldMs: 90_000,
    });
  });

  it('defaults: withdraw after 3 s, nothing routed', () => {
    expect(resolveRouting(cfg(host('    limits: { subflows: 2 }\n')), 'n', 'host')).toEqual({ sourceRouting: {}, linkDown: 'withdraw', linkDownHoldMs: 3000 });
  });

  it.each([
    [0, 'unspec'],
    [253, 'default'],
    [254, 'main'],
    [255, 'local'],
  ])('refuses table %i (the kernel\'s %s table) at its position, with a hint', (n, name) => {
    const text = host(`    sourceRouting:\n      c1: { table: ${n}, gateway: 198.51.100.2 }\n`);
    const [d, ...rest] = errors(text);
    expect(rest).toEqual([]);
    expect(d).toMatchObject({ code: 'reserved-table', ...at(text, `${n},`) });
    expect(d!.message).toContain(`\`${name}\``);
    expect(d!.hint).toMatch(/unused table/);
  });

  it('refuses a table beyond 32 bits, a fraction and a quoted number', () => {
    expect(errors(host('    sourceRouting:\n      c1: { table: 4294967296 }\n'))[0]).toMatchObject({ code: 'out-of-range' });
    expect(errors(host('    sourceRouting:\n      c1: { table: 1.5 }\n'))[0]!.message).toMatch(/integer/);
    expect(errors(host('    sourceRouting:\n      c1: { table: "101" }\n'))[0]!.hint).toBe('write the number without quotes');
  });

  it('refuses a table shared by two interfaces, pointing at the second', () => {
    const text = host('    sourceRouting:\n      c1: { table: 101 }\n      c2: { table: 101 }\n');
    const [d, ...rest] = errors(text);
    expect(rest).toEqual([]);
    expect(d).toMatchObject({ code: 'shared-table', line: at(text, 'c2:').line });
    expect(d!.message).toBe('routing table 101 of c2 is already the table of c1');
  });

  it('refuses a gateway of the wrong family, saying where it belongs', () => {
    const d = errors(host('    sourceRouting:\n      c1: { table: 101, gateway: "2001:db8::1" }\n'))[0]!;
    expect(d.message).toBe('gateway "2001:db8::1" is an IPv6 address; it must be IPv4');
    expect(d.hint).toBe('put an IPv6 next hop under `gateway6`');
    expect(errors(host('    sourceRouting:\n      c1: { table: 101, gateway6: 198.51.100.1 }\n'))[0]!.hint).toBe('put an IPv4 next hop under `gateway`');
    expect(errors(host('    sourceRouting:\n      c1: { table: 101, gateway: 198.51.100.1/24 }\n'))[0]!.message).toMatch(/is not an IP address/);
  });

  it('refuses priorities 0 and 32766, unknown keys and bad interface names', () => {
    expect(errors(host('    sourceRouting:\n      c1: { table: 101, priority: 0 }\n'))[0]!.code).toBe('out-of-range');
    expect(errors(host('    sourceRouting:\n      c1: { table: 101, priority: 32766 }\n'))[0]!.message).toMatch(/main table/);
    expect(errors(host('    sourceRouting:\n      c1: { table: 101, metric: 5 }\n'))[0]!.code).toBe('unknown-key');
    const text = host('    sourceRouting:\n      "a/b": { table: 101 }\n');
    expect(errors(text)[0]).toMatchObject({ code: 'invalid-key', line: at(text, '"a/b"').line });
  });

  it('refuses linkDown values and durations it does not know', () => {
    expect(errors(host('    linkDown: withdrawn\n'))[0]!.hint).toBe('did you mean `withdraw`?');
    const text = host('    linkDownHold: 3 seconds\n');
    expect(errors(text)[0]).toMatchObject({ message: '"3 seconds" is not a duration', hint: 'write e.g. 3s, 500ms or 1m30s', ...at(text, '3 seconds') });
    expect(errors(host('    linkDownHold: 2h\n'))[0]!.code).toBe('out-of-range');
  });
});

describe('merging and render', () => {
  const text = `version: 1
namespaces:
  - netns: "cli-*"
    sourceRouting:
      c1: { table: 101, gateway: 198.51.100.1 }
      c2: { table: 102, gateway: 203.0.113.1 }
    linkDownHold: 5s
  - netns: cli-a
    sourceRouting:
      c2: { table: 202, gateway6: "2001:db8::1" }
    linkDown: keep
`;

  it('later entries win per interface (whole value) and per key', () => {
    const c = cfg(text);
    expect(resolveRouting(c, 'n', 'cli-a')).toEqual({
      sourceRouting: { c1: { table: 101, gateway: '198.51.100.1' }, c2: { table: 202, gateway6: '2001:db8::1' } },
      linkDown: 'keep',
      linkDownHoldMs: 5000,
    });
    expect(resolveRouting(c, 'n', 'cli-b')?.linkDown).toBe('withdraw');
    expect(resolveRouting(c, 'n', 'other')).toBeUndefined();
  });

  it('a table shared only after merging is refused at the later entry', () => {
    const shared = text.replace('table: 202', 'table: 101');
    const r = parseConfigFiles([{ file: 'c.yaml', content: shared }]);
    if (r.ok) expect.fail('expected the config to be refused');
    const d = r.diagnostics.find((x) => x.code === 'shared-table')!;
    expect(d.message).toMatch(/^after merging, routing table 101 of c2 is also the table of c1 \(c\.yaml:3\) in namespace "cli-a"/);
    expect(d.line).toBe(8);
  });

  it('render prints the merged routing and renders to itself', () => {
    const once = renderConfig(cfg(text), 'n');
    expect(once).toContain(`  - netns: cli-a
    sourceRouting:
      c1:
        table: 101
        gateway: 198.51.100.1
      c2:
        table: 202
        gateway6: 2001:db8::1
    linkDown: keep
    linkDownHold: 5s
`);
    const again = cfg(once);
    expect(renderConfig(again, 'n')).toBe(once);
    for (const ns of ['cli-a', 'cli-b']) expect(resolveRouting(again, 'n', ns)).toEqual(resolveRouting(cfg(text), 'n', ns));
  });

  it('a config without routing keys renders without them', () => {
    expect(renderConfig(cfg(host('    limits: { subflows: 2 }\n')), 'n')).not.toMatch(/sourceRouting|linkDown/);
  });
});

describe('examples/client-two-uplinks.yaml', () => {
  it('declares a table per uplink and withdraws endpoints after 3 s without carrier', async () => {
    const { loadConfig } = await import('../src/config/index.js');
    const r = await loadConfig(new URL('../examples/client-two-uplinks.yaml', import.meta.url).pathname, {});
    if (!r.ok) expect.fail(r.diagnostics.map((d) => `${d.line}:${d.column} ${d.message}`).join('\n'));
    expect(r.warnings).toEqual([]);
    expect(resolveRouting(r.config, 'n', 'host')).toEqual({
      sourceRouting: { wan0: { table: 101, gateway: '198.51.100.1' }, wan1: { table: 102, gateway: '203.0.113.1', gateway6: 'fe80::1' } },
      linkDown: 'withdraw',
      linkDownHoldMs: 3000,
    });
  });
});
