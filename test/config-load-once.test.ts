// A one-shot command loads its config with `once`: no hash, no parse cache. What
// it is told about the config must be exactly what the daemon's cached load says.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config/index.js';

const tmp = mkdtempSync(join(tmpdir(), 'mrsu-once-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function dir(name: string, files: Record<string, string>): string {
  const d = join(tmp, name);
  mkdirSync(d);
  for (const [f, text] of Object.entries(files)) writeFileSync(join(d, f), text);
  return d;
}

describe('loading a config once', () => {
  it('gives the same config, files, entries and warnings as a cached load, without a hash', async () => {
    const d = dir('good', {
      '10-host.yaml': 'version: 1\nnamespaces:\n  - netns: host\n    limits: { subflows: 2 }\n    endpoints:\n      - { address: 192.0.2.1, flags: [subflow] }\n',
      // with a warning: an endpoint neither signal nor subflow
      '20-fleet.yaml': 'version: 1\nnamespaces:\n  - netns: "cni-*"\n    limits: { subflows: 4, addAddrAccepted: 4 }\n    endpoints:\n      - { dev: eth0, flags: [signal, subflow] }\n      - { dev: eth1, flags: [backup] }\n',
    });
    const cached = await loadConfig(d, { node: 'n1' });
    const once = await loadConfig(d, { node: 'n1', once: true });
    expect(cached.ok && cached.hash).toMatch(/^[0-9a-f]{64}$/);
    expect(once.ok && 'hash' in once).toBe(false);
    const { hash: _, ...rest } = cached as Extract<typeof cached, { ok: true }>;
    expect(once).toEqual(rest);
    expect(once.ok && once.config.namespaces.map((n) => n.netns)).toEqual(['host', 'cni-*']);
    expect(once.ok && once.warnings.map((w) => [w.code, w.file, w.line])).toEqual([['endpoint-does-nothing', join(d, '20-fleet.yaml'), 7]]);
  });

  it('refuses a bad file with the same positioned diagnostics', async () => {
    const d = dir('bad', { 'a.yaml': 'version: 1\nnamespaces:\n  - netns: host\n    endpoints:\n      - { adress: 192.0.2.1 }\n' });
    const cached = await loadConfig(d, {});
    const once = await loadConfig(d, { once: true });
    expect(once.ok).toBe(false);
    expect(once).toEqual(cached);
    expect(!once.ok && once.diagnostics[0]).toMatchObject({ line: 5, severity: 'error' });
  });
});
