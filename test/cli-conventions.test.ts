// Conventions people expect of a command-line tool: --version / -V, and a typo
// in an option or command answered with the one meant.
import { readFileSync } from 'node:fs';
import { release } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { main } from '../src/cli/main.js';
import { captureIO } from './helpers/io.js';

const pkg = JSON.parse(readFileSync(join(import.meta.dirname, '..', 'package.json'), 'utf8')) as { version: string };

describe('version', () => {
  it.each(['--version', '-V'])('%s prints the package version, Node.js and kernel on one line, exit 0', async (flag) => {
    const t = captureIO();
    expect(await main([flag], t.io)).toBe(0);
    expect(t.out()).toBe(`mptcp-reconciler ${pkg.version} (node ${process.version}, kernel ${release()})\n`);
    expect(t.err()).toBe('');
  });
  it('is listed in --help', async () => {
    const t = captureIO();
    expect(await main(['--help'], t.io)).toBe(0);
    expect(t.out()).toMatch(/-V, --version\s+print the version/);
  });
});

describe('typos', () => {
  it.each([
    [['validate', '--fle', 'x.yaml'], "unknown option '--fle'", 'Did you mean --file?'],
    [['plan', '-f', 'x.yaml', '--detailed-exitcod'], "unknown option '--detailed-exitcod'", 'Did you mean --detailed-exitcode?'],
    [['watch', '--lsten', '127.0.0.1:1'], "unknown option '--lsten'", 'Did you mean --listen?'],
    [['valdate'], "unknown command 'valdate'", 'Did you mean validate?'],
  ])('%j: says what is unknown and suggests the right one, exit 1', async (argv, what, hint) => {
    const t = captureIO();
    expect(await main(argv, t.io)).toBe(1);
    expect(t.err()).toContain(what);
    expect(t.err()).toContain(hint);
    expect(t.out()).toBe('');
  });
  it.each(['validate', 'render', 'plan', 'apply', 'watch'])('%s without -f says -f is required, exit 1', async (cmd) => {
    const t = captureIO();
    expect(await main([cmd], t.io)).toBe(1);
    expect(t.err()).toContain("required option '-f, --file <path>' not specified");
  });
  it('show, doctor and demo do not require -f', async () => {
    for (const cmd of ['show', 'doctor', 'demo']) {
      const t = captureIO();
      expect(await main([cmd, '--help'], t.io)).toBe(0);
      expect(t.out()).not.toContain('(required)');
    }
  });
});
