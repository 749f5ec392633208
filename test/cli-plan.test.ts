// `plan` against saved snapshots (no kernel, no root needed): the JSON contract of
// README.md#commands, the text report, colour only on a TTY, and the exit codes.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { main } from '../src/cli/main.js';
import { toLiveSnapshot } from '../src/core/live-to-config.js';
import type { LiveNamespace } from '../src/core/model.js';
import { captureIO } from './helpers/io.js';

const dir = mkdtempSync(join(tmpdir(), 'mr-plan-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function live(netns: string, over: Partial<LiveNamespace> = {}): LiveNamespace {
  return {
    netns,
    endpoints: [],
    limits: { subflows: 2, addAddrAccepted: 0 },
    mptcp: { enabled: true, pathManager: 'kernel' },
    rpFilter: { all: 0, default: 0, lo: 0, eth0: 1 },
    links: [
      { ifindex: 1, name: 'lo', up: true, lowerUp: true },
      { ifindex: 2, name: 'eth0', up: true, lowerUp: true },
    ],
    addresses: [
      { ifindex: 2, family: 4, address: '192.0.2.1', prefixlen: 24, scope: 'global', tentative: false, dadfailed: false, deprecated: false, temporary: false },
    ],
    ...over,
  };
}

const snapshot = join(dir, 'snap.json');
writeFileSync(
  snapshot,
  JSON.stringify(
    toLiveSnapshot('n1', [
      live('host'),
      live('ns-a', {
        endpoints: [
          { id: 1, family: 4, address: '192.0.2.1', flags: ['subflow'], ifindex: 2 },
          { id: 2, family: 4, address: '203.0.113.9', flags: ['signal'] },
        ],
      }),
      live('ns-b', { limits: { subflows: 4, addAddrAccepted: 0 } }),
    ]),
  ),
);

function file(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

const cfg = file(
  'c.yaml',
  `version: 1
namespaces:
  - netns: "ns-*"
    limits: { subflows: 4 }
  - netns: ns-a
    endpoints:
      - { address: 192.0.2.1, dev: eth0, flags: [subflow, backup] }
      - { address: 192.0.2.1, port: 10000, flags: [signal] }
    rpFilter: { eth0: loose }
`,
);

async function cli(argv: string[], tty = false) {
  const t = captureIO({ env: { NODE_NAME: 'n1' }, cwd: dir, isTTY: tty });
  const code = await main(argv, t.io);
  return { code, out: t.out(), err: t.err() };
}

describe('plan --live', () => {
  it('prints the README.md#commands JSON shape', async () => {
    const r = await cli(['plan', '-f', cfg, '--live', snapshot, '-o', 'json']);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.out) as { node: string; namespaces: Record<string, unknown>[] };
    expect(Object.keys(doc)).toEqual(['node', 'namespaces']);
    expect(doc.node).toBe('n1');
    expect(doc.namespaces.map((n) => n.netns)).toEqual(['ns-a', 'ns-b']);
    for (const n of doc.namespaces) {
      expect(n).toHaveProperty('operations');
      expect(typeof n.converged).toBe('boolean');
      expect(Array.isArray(n.errors)).toBe(true);
      for (const o of n.operations as Record<string, unknown>[]) {
        expect(['add', 'delete', 'set-flags', 'set-limits', 'set-sysctl', 'set-rp-filter']).toContain(o.op);
        expect(typeof o.disruptive).toBe('boolean');
      }
    }
    const a = doc.namespaces[0]! as { converged: boolean; operations: { op: string; disruptive: boolean; reason?: string }[] };
    expect(a.converged).toBe(false);
    expect(a.operations.map((o) => [o.op, o.disruptive])).toEqual([
      ['set-limits', false],
      ['delete', true],
      ['set-flags', false],
      ['add', false],
      ['set-rp-filter', false],
    ]);
    expect(a.operations[1]!.reason).toMatch(/prune/);
    expect(doc.namespaces[1]).toMatchObject({ netns: 'ns-b', operations: [], converged: true, errors: [] });
  });

  it('prints a diff of live vs desired and numbered operations, without colour when not a TTY', async () => {
    const r = await cli(['plan', '-f', cfg, '--live', snapshot, '--netns', 'ns-a']);
    expect(r.code).toBe(0);
    expect(r.out).toContain('--- live/ns-a\n+++ desired/ns-a');
    expect(r.out).toMatch(/^-  subflows: 2$/m);
    expect(r.out).toMatch(/^\+  subflows: 4$/m);
    expect(r.out).toMatch(/^-    flags: \[subflow\]$/m);
    expect(r.out).toMatch(/^\+    flags: \[subflow, backup\]$/m);
    expect(r.out).toMatch(/^-  eth0: strict$/m);
    expect(r.out).toMatch(/^\+  eth0: loose$/m);
    expect(r.out).toMatch(/^ {2}2\. delete endpoint id 2 \(203\.0\.113\.9\) \[disruptive\]/m);
    expect(r.out).toMatch(/^ {2}4\. add endpoint 192\.0\.2\.1 port 10000 id 2 flags \[signal\]$/m);
    expect(r.out).not.toContain('ns-b');
    expect(r.out).not.toContain('\x1b[');
    const tty = await cli(['plan', '-f', cfg, '--live', snapshot, '--netns', 'ns-a'], true);
    expect(tty.out).toContain('\x1b[');
  });

  it('--detailed-exitcode: 2 with changes pending, 0 with nothing to do', async () => {
    expect((await cli(['plan', '-f', cfg, '--live', snapshot, '--detailed-exitcode'])).code).toBe(2);
    const r = await cli(['plan', '-f', cfg, '--live', snapshot, '--netns', 'ns-b', '--detailed-exitcode']);
    expect(r.code).toBe(0);
    expect(r.out).toContain('no changes');
  });

  it('exits 1 for a named namespace missing from the snapshot, still planning the others', async () => {
    const c = file('missing.yaml', 'version: 1\nnamespaces:\n  - netns: ns-gone\n    limits: { subflows: 1 }\n  - netns: ns-b\n    limits: { subflows: 1 }\n');
    const r = await cli(['plan', '-f', c, '--live', snapshot, '--detailed-exitcode']);
    expect(r.code).toBe(1);
    expect(r.out).toContain(`netns ns-gone: not in the snapshot ${snapshot}`);
    expect(r.out).toMatch(/set-limits subflows 4 -> 1/);
  });

  it('an invalid config prints positioned diagnostics and plans nothing', async () => {
    const c = file('bad.yaml', 'version: 1\nnamespaces:\n  - netns: ns-a\n    limits: { subflows: 9 }\n');
    const r = await cli(['plan', '-f', c, '--live', snapshot]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/bad\.yaml:4:\d+/);
    expect(r.err).toContain('nothing was applied');
    expect(r.out).toBe('');
  });

  it('a missing snapshot file is a one-line user error', async () => {
    const r = await cli(['plan', '-f', cfg, '--live', join(dir, 'nope.json')]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^error: --live .*nope\.json: no such file\n$/);
  });
});
