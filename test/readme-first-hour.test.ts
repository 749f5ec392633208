// The README's first screen is a new user's first hour: the demo and test
// commands, then clone -> PATH -> `show` of the own machine -> a first config ->
// `validate` -> `plan`. Its commands run here as written (read-only on the host:
// show and plan only read), and its example config passes the loader and the
// JSON Schema.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { parse as parseYaml } from 'yaml';
import { afterAll, describe, expect, it } from 'vitest';
import { main } from '../src/cli/main.js';
import { parseConfigFiles } from '../src/config/index.js';
import { captureIO } from './helpers/io.js';

const root = join(import.meta.dirname, '..');
const readme = readFileSync(join(root, 'README.md'), 'utf8');
const blocks = [...readme.matchAll(/```(\w*)\n([\s\S]*?)```/g)].map((m) => ({ lang: m[1]!, body: m[2]! }));
const dir = mkdtempSync(join(tmpdir(), 'x17-readme-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('README first screen', () => {
  it('opens with the demo and the test commands', () => {
    const first = blocks[0]!;
    expect(first.lang).toBe('sh');
    expect(first.body).toContain('npm ci && node dist/src/cli/bin.js demo\n');
    expect(first.body).toContain('npm ci && npm test\n');
  });

  it('walks from the PATH to a plan of the own machine, and each command works as written', async () => {
    const walk = blocks[1]!;
    expect(walk.lang).toBe('sh');
    const lines = walk.body.split('\n').map((l) => l.replace(/\s+#.*$/, '').trim()).filter(Boolean);
    expect(lines[0]).toBe('npm install -g .');
    const steps = lines.filter((l) => l.startsWith('mptcp-reconciler '));
    expect(steps.map((l) => l.split(/\s+/)[1])).toEqual(['--version', 'show', 'validate', 'plan']);
    const file = join(dir, 'mptcp.yaml');
    for (const line of steps) {
      const [cmd, redirect] = line.split(/\s*>\s*/);
      const argv = cmd!.split(/\s+/).slice(1).map((a) => (a === 'mptcp.yaml' ? file : a));
      const t = captureIO();
      expect(await main(argv, t.io), `${line}\n${t.err()}`).toBe(0);
      if (redirect) writeFileSync(file, t.out());
      if (argv[0] === 'plan') expect(t.out()).toMatch(/netns host\n\s+no changes/);
    }
  });

  it('its first config is valid for the loader and for the JSON Schema it points editors at', () => {
    const yaml = blocks.find((b) => b.lang === 'yaml' && b.body.includes('yaml-language-server'))!;
    expect(yaml).toBeDefined();
    const r = parseConfigFiles([{ file: 'mptcp.yaml', content: yaml.body }], { node: 'n1' });
    expect(r.ok ? [] : r.diagnostics).toEqual([]);
    const schemaRef = /\$schema=\.\/(\S+)/.exec(yaml.body)![1]!;
    const ajv = new Ajv({ strict: true });
    addFormatsModule.default(ajv);
    const valid = ajv.compile(JSON.parse(readFileSync(join(root, schemaRef), 'utf8')) as object);
    expect(valid(parseYaml(yaml.body)), JSON.stringify(valid.errors)).toBe(true);
  });
});
