// validate and render through main(argv, io), in-process.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { main } from '../src/cli/main.js';
import { parseConfigText, resolveNamespace } from '../src/config/index.js';
import { captureIO } from './helpers/io.js';

const dir = mkdtempSync(join(tmpdir(), 'mr-config-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const io = (env: Record<string, string> = {}) => captureIO({ env, cwd: dir });

const GOOD = `version: 1
namespaces:
  - netns: host
    endpoints:
      - { address: 192.0.2.1, dev: eth0, flags: [signal] }
  - netns: host
    nodes: ["edge-*"]
    limits: { subflows: 4 }
`;
writeFileSync(join(dir, 'good.yaml'), GOOD);
writeFileSync(join(dir, 'warn.yaml'), 'version: 1\nnamespaces:\n  - netns: host\n    endpoints:\n      - { address: 192.0.2.1 }\n');
writeFileSync(join(dir, 'bad.yaml'), 'version: 1\nnamespaces:\n  - netns: host\n    limits: { subflows: 9 }\n    endpoints:\n      - { address: 192.0.2.1, flags: [fullmesh] }\n');

describe('validate', () => {
  it('exits 0 for a valid file (path relative to the cwd)', async () => {
    const t = io();
    expect(await main(['validate', '-f', 'good.yaml'], t.io)).toBe(0);
    expect(t.out()).toBe('good.yaml: valid (1 file, 2 entries)\n');
    expect(t.err()).toBe('');
  });
  it('exits 1 and prints every error, positioned, without a stack trace', async () => {
    const t = io();
    expect(await main(['validate', '-f', 'bad.yaml'], t.io)).toBe(1);
    expect(t.err()).toContain('bad.yaml:4:25: error: namespaces[0].limits.subflows:');
    expect(t.err()).toContain('bad.yaml:6:38: error: namespaces[0].endpoints[0].flags: `fullmesh` needs `subflow`');
    expect(t.err()).toContain('invalid (2 errors)');
    expect(t.err()).not.toMatch(/\n\s+at /);
    expect(t.out()).toBe('');
  });
  it('prints warnings on stderr and exits 0; --strict makes them fail', async () => {
    const t = io();
    expect(await main(['validate', '-f', 'warn.yaml'], t.io)).toBe(0);
    expect(t.err()).toContain('warn.yaml:5:9: warning:');
    expect(t.out()).toContain('1 warning');
    const s = io();
    expect(await main(['validate', '-f', 'warn.yaml', '--strict'], s.io)).toBe(1);
    expect(s.err()).toContain('--strict');
  });
  it('checks merges for the given node only with --node', async () => {
    writeFileSync(
      join(dir, 'ids.yaml'),
      'version: 1\nnamespaces:\n  - netns: host\n    endpoints: [{ address: 192.0.2.1, id: 3, flags: [subflow] }]\n  - netns: host\n    nodes: [edge-1]\n    endpoints: [{ address: 192.0.2.2, id: 3, flags: [subflow] }]\n',
    );
    const all = io();
    expect(await main(['validate', '-f', 'ids.yaml'], all.io)).toBe(1);
    expect(all.err()).toContain('ids.yaml:7:17: error:');
    expect(await main(['validate', '-f', 'ids.yaml', '--node', 'core-1'], io().io)).toBe(0);
  });
  it('exits 1 for a missing file or an empty directory', async () => {
    const t = io();
    expect(await main(['validate', '-f', 'nope.yaml'], t.io)).toBe(1);
    expect(t.err()).toContain('nope.yaml: error: no such file or directory');
  });
});

describe('render', () => {
  it('prints the state for --node as valid input', async () => {
    const t = io();
    expect(await main(['render', '-f', 'good.yaml', '--node', 'edge-1'], t.io)).toBe(0);
    const r = parseConfigText(t.out(), 'rendered.yaml');
    expect(r.diagnostics).toEqual([]);
    expect(resolveNamespace(r.config!, 'whatever', 'host')).toMatchObject({ limits: { subflows: 4 }, endpoints: [{ address: '192.0.2.1' }] });
    expect(t.out()).not.toContain('nodes');
  });
  it('takes the node from NODE_NAME', async () => {
    const t = io({ NODE_NAME: 'core-1' });
    expect(await main(['render', '-f', 'good.yaml'], t.io)).toBe(0);
    expect(t.out()).toContain('node "core-1"');
    expect(t.out()).not.toContain('subflows');
  });
  it('renders nothing from an invalid file and exits 1', async () => {
    const t = io();
    expect(await main(['render', '-f', 'bad.yaml', '--node', 'x'], t.io)).toBe(1);
    expect(t.out()).toBe('');
    expect(t.err()).toContain('bad.yaml:4:25');
  });
});
