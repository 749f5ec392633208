// Config files written by an attacker (a commit to the config repo, a file
// dropped into a conf.d directory): loading must finish, must not read what it
// was not meant to read, and must never print the bytes of such a file.
// Real files, FIFOs and symlinks on disk; `validate` through main() in-process.
import { execFileSync } from 'node:child_process';
import { linkSync, mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { main } from '../src/cli/main.js';
import { formatDiagnostics, loadConfig, MAX_DEPTH, MAX_KEYS_PER_MAPPING, parseConfigText } from '../src/config/index.js';
import { captureIO } from './helpers/io.js';

const tmp = mkdtempSync(join(tmpdir(), 'mr-hostile-'));
// A directory outside every config directory, holding what must never leak.
const secrets = mkdtempSync(join(tmpdir(), 'mr-hostile-secret-'));
afterAll(() => {
  rmSync(tmp, { recursive: true, force: true });
  rmSync(secrets, { recursive: true, force: true });
});

const SECRET = 'aws_secret_access_key = wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY';
const secretFile = join(secrets, 'credentials');
writeFileSync(secretFile, `[default]\n${SECRET}\n`);

const GOOD = 'version: 1\nnamespaces:\n  - netns: host\n    limits: { subflows: 2 }\n';

let n = 0;
function dir(files: Record<string, string> = {}): string {
  const d = join(tmp, `d${n++}`);
  mkdirSync(d);
  for (const [name, text] of Object.entries(files)) writeFileSync(join(d, name), text);
  return d;
}

async function validate(path: string): Promise<{ code: number; out: string; err: string }> {
  const c = captureIO({ cwd: tmp });
  const code = await main(['validate', '-f', path], c.io);
  return { code, out: c.out(), err: c.err() };
}

const errorsOf = (text: string) => parseConfigText(text, 'h.yaml').diagnostics.filter((d) => d.severity === 'error');

describe('inputs that used to hang or crash the parser', () => {
  it('a file that starts with many comment lines, and a banner of #, are read normally', () => {
    const comments = `${Array.from({ length: 200 }, (_, i) => `# comment ${i}`).join('\n')}\n${GOOD}`;
    expect(parseConfigText(comments, 'c.yaml').config?.namespaces[0]?.limits?.subflows).toBe(2);
    const banner = `${'#'.repeat(4000)}\n#\n${'#'.repeat(4000)}\n`;
    expect(errorsOf(banner)).toMatchObject([{ code: 'empty' }]);
    expect(errorsOf(`${banner}${GOOD}`)).toEqual([]);
  });

  it.each([
    ['flow lists', `version: 1\nnamespaces: ${'['.repeat(200_000)}${']'.repeat(200_000)}\n`, 2],
    ['flow mappings', `version: 1\nnamespaces:\n  - ${'{a: '.repeat(100_000)}1${'}'.repeat(100_000)}\n`, 3],
    ['compact block lists', `version: 1\nnamespaces:\n${'- '.repeat(200_000)}x\n`, 3],
    ['indented mappings', `version: 1\nnamespaces:\n${Array.from({ length: 600 }, (_, i) => `${' '.repeat(i + 2)}k${i}:`).join('\n')} 1\n`, 33],
  ])('nesting deeper than the cap (%s) is one positioned error, not a stack overflow', (_what, text, line) => {
    const errs = errorsOf(text);
    expect(errs).toHaveLength(1);
    expect(errs[0]).toMatchObject({ code: 'too-deep', line, message: expect.stringContaining(`${MAX_DEPTH}`) });
    expect(errs[0]!.column).toBeGreaterThan(0);
  });

  it('a config nested as deep as real ones is not mistaken for too deep', () => {
    const text = 'version: 1\nnamespaces:\n  - netns: host\n    endpoints:\n      - address: 192.0.2.1\n        flags:\n          - signal\n          - subflow\n    rpFilter: { eth0: 2 }\n';
    expect(errorsOf(text)).toEqual([]);
    const flow = `version: 1\nnamespaces: [{ netns: host, endpoints: [{ address: 192.0.2.1, flags: [signal] }] }]\n`;
    expect(errorsOf(flow)).toEqual([]);
  });

  it('brackets inside quotes, comments and block scalars do not count as nesting', () => {
    const text = `version: 1\n# ${'['.repeat(500)}\nnamespaces:\n  - netns: "${'['.repeat(500)}"\n    nodes: ['${'{'.repeat(500)}']\n  - netns: |\n      ${'- '.repeat(500)}\n      ${'['.repeat(500)}\n`;
    // The netns name is refused by the schema, not by the nesting cap.
    expect(errorsOf(text).map((d) => d.code)).not.toContain('too-deep');
  });

  it('a mapping with 50k keys is refused at the mapping; duplicates are found in one pass', () => {
    const many = `version: 1\nnamespaces:\n  - netns: host\n    rpFilter:\n${Array.from({ length: 50_000 }, (_, i) => `      e${i}: 2`).join('\n')}\n`;
    expect(errorsOf(many)).toMatchObject([{ code: 'too-many-keys', line: 5, path: 'namespaces[0].rpFilter', message: expect.stringContaining(`at most ${MAX_KEYS_PER_MAPPING}`) }]);
    const dup = `version: 1\nnamespaces:\n  - netns: host\n    rpFilter:\n${Array.from({ length: MAX_KEYS_PER_MAPPING - 1 }, (_, i) => `      e${i}: 2`).join('\n')}\n      e7: 1\n`;
    expect(errorsOf(dup)).toMatchObject([{ code: 'yaml-duplicate-key', line: 4 + MAX_KEYS_PER_MAPPING, column: 7, message: 'duplicate key `e7` in this mapping' }]);
  });

  it('a file with an error on every line reports a bounded number of them', () => {
    const text = `version: 1\nnamespaces:\n${Array.from({ length: 20_000 }, () => '  - netns: host\n    bogus: 1').join('\n')}\n`;
    const errs = errorsOf(text);
    expect(errs.length).toBeGreaterThan(0);
    expect(errs.length).toBeLessThanOrEqual(100);
    expect(errs[0]).toMatchObject({ code: 'unknown-key', line: 4 });
  });
});

describe('tags', () => {
  it.each([
    ['!!set', 'rpFilter: !!set\n      ? eth0\n', '!!set'],
    ['!!binary', 'nodes: !!binary aGk=\n', '!!binary'],
    ['!!omap', 'rpFilter: !!omap\n      - eth0: 2\n', '!!omap'],
    ['!!timestamp', 'nodes: [!!timestamp 2001-12-14]\n', '!!timestamp'],
  ])('%s is refused with its position instead of changing the value', (_t, body, shown) => {
    const errs = errorsOf(`version: 1\nnamespaces:\n  - netns: host\n    ${body}`);
    expect(errs).toHaveLength(1);
    expect(errs[0]).toMatchObject({ code: 'unsupported-tag', message: `the tag \`${shown}\` is not supported` });
    expect(errs[0]!.line).toBeGreaterThanOrEqual(4);
  });
  it('core tags keep their meaning', () => {
    const text = 'version: !!int 1\nnamespaces:\n  - netns: !!str host\n    limits: !!map { subflows: !!int 2 }\n';
    expect(parseConfigText(text, 'c.yaml').config?.namespaces[0]?.limits?.subflows).toBe(2);
  });
});

describe('symlinks in a config directory', () => {
  it('a link to a file outside the directory is refused naming link and target; the content is never printed', async () => {
    const d = dir({ 'a.yaml': GOOD });
    symlinkSync(secretFile, join(d, 'zz.yaml'));
    const r = await loadConfig(d);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.diagnostics).toMatchObject([{ code: 'symlink-outside', file: join(d, 'zz.yaml'), message: expect.stringContaining(secretFile) }]);
    const v = await validate(d);
    expect(v.code).toBe(1);
    expect(v.err).toContain('zz.yaml');
    expect(v.err).toContain(secretFile);
    expect(v.err + v.out).not.toContain('wJalrXUtnFEMI');
    expect(v.err + v.out).not.toContain('[default]');
  });

  it('a relative link climbing out of the directory is refused too, and so is a link to a link that leaves', async () => {
    const d = dir({ 'a.yaml': GOOD });
    symlinkSync(join('..', '..', secrets.split('/').pop()!, 'credentials'), join(d, 'b.yaml'));
    symlinkSync(secretFile, join(d, '.hidden-link'));
    symlinkSync('.hidden-link', join(d, 'c.yaml'));
    const r = await loadConfig(d);
    expect(!r.ok && r.diagnostics.map((x) => [x.code, x.file.split('/').pop()])).toEqual([
      ['symlink-outside', 'b.yaml'],
      ['symlink-outside', 'c.yaml'],
    ]);
    expect(JSON.stringify(r)).not.toContain('wJalrXUtnFEMI');
  });

  it('the Kubernetes ConfigMap layout (..data -> ..<timestamp>, c.yaml -> ..data/c.yaml) keeps working', async () => {
    const d = dir();
    mkdirSync(join(d, '..2026_01_01_00_00_00.1'));
    writeFileSync(join(d, '..2026_01_01_00_00_00.1', 'c.yaml'), GOOD);
    symlinkSync('..2026_01_01_00_00_00.1', join(d, '..data'));
    symlinkSync(join('..data', 'c.yaml'), join(d, 'c.yaml'));
    const r = await loadConfig(d);
    expect(r.ok && r.config.namespaces[0]?.limits?.subflows).toBe(2);
    // The same directory reached through a symlink named by the user.
    symlinkSync(d, join(tmp, `via-link-${n}`));
    expect((await loadConfig(join(tmp, `via-link-${n}`))).ok).toBe(true);
  });

  it('-f naming a symlink to a file elsewhere is followed: the user named it', async () => {
    const elsewhere = join(secrets, 'meant.yaml');
    writeFileSync(elsewhere, GOOD);
    const d = dir();
    symlinkSync(elsewhere, join(d, 'node.yaml'));
    expect((await loadConfig(join(d, 'node.yaml'))).ok).toBe(true);
  });

  it('a dangling link is an error naming its target', async () => {
    const d = dir({ 'a.yaml': GOOD });
    symlinkSync('gone.yaml', join(d, 'b.yaml'));
    const r = await loadConfig(d);
    expect(!r.ok && r.diagnostics).toMatchObject([{ code: 'not-found', message: 'is a symlink to gone.yaml, which does not exist' }]);
  });
});

describe('special files', () => {
  it('a FIFO as -f, as a directory entry, or behind an inside symlink is refused without blocking', async () => {
    const d = dir({ 'a.yaml': GOOD });
    execFileSync('mkfifo', [join(d, 'b.yaml')]);
    execFileSync('mkfifo', [join(d, '.pipe')]);
    symlinkSync('.pipe', join(d, 'c.yaml'));
    const r = await loadConfig(d);
    expect(!r.ok && r.diagnostics.map((x) => [x.code, x.file.split('/').pop(), x.message])).toEqual([
      ['not-a-file', 'b.yaml', 'is a FIFO, not a regular file; it was not read'],
      ['not-a-file', 'c.yaml', 'is a FIFO, not a regular file; it was not read'],
    ]);
    const f = await loadConfig(join(d, '.pipe'));
    expect(!f.ok && f.diagnostics[0]).toMatchObject({ code: 'not-a-file', message: expect.stringContaining('FIFO') });
    const z = await loadConfig('/dev/zero');
    expect(!z.ok && z.diagnostics[0]).toMatchObject({ code: 'not-a-file', message: expect.stringContaining('device') });
  });

  it('a file swapped for a FIFO while loads run never blocks a load', async () => {
    const d = dir({ 'c.yaml': GOOD });
    const target = join(d, 'c.yaml');
    const fifo = join(d, '.pipe');
    execFileSync('mkfifo', [fifo]);
    let stop = false;
    let swaps = 0;
    // Between awaits of the loads the entry flips between a regular file and the FIFO (a hard link of it).
    const swapper = (async () => {
      while (!stop) {
        const next = join(d, `.next-${swaps}`);
        if (swaps % 2 === 0) linkSync(fifo, next);
        else writeFileSync(next, GOOD);
        renameSync(next, target);
        swaps++;
        await new Promise((r) => setImmediate(r));
      }
    })();
    const outcomes = new Set<string>();
    try {
      for (let i = 0; i < 200; i++) {
        const r = await Promise.all([loadConfig(d), loadConfig(target)]);
        for (const x of r) outcomes.add(x.ok ? 'ok' : x.diagnostics[0]!.code);
      }
    } finally {
      stop = true;
      await swapper;
    }
    expect(swaps).toBeGreaterThan(50);
    expect(outcomes.has('not-a-file')).toBe(true);
    expect([...outcomes].every((o) => ['ok', 'not-a-file', 'not-found'].includes(o))).toBe(true);
  }, 60_000);
});

describe('file names', () => {
  it('terminal escape bytes in a file name are printed escaped, not raw', async () => {
    const d = dir();
    writeFileSync(join(d, 'a\x1b]0;pwned\x07\x1b[2J.yaml'), 'version: 1\nnamespaces:\n  - netns: host\n    limits: { subflows: 20 }\n');
    const v = await validate(d);
    expect(v.code).toBe(1);
    expect(v.err).not.toMatch(/[\x00-\x08\x0b-\x1f\x7f]/);
    expect(v.err).toContain('a\\x1b]0;pwned\\x07\\x1b[2J.yaml:4:');
    const text = formatDiagnostics([{ severity: 'error', code: 'x', file: 'b\x1b[31m.yaml', line: 0, column: 0, path: '', message: 'm' }]);
    expect(text).toBe('b\\x1b[31m.yaml: error: m\n');
  });
});
