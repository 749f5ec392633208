// `show -o yaml` stays valid input when the kernel holds an endpoint the config
// refuses (the kernel takes 127.0.0.1 or 0.0.0.0; `validate` does not): it is
// printed as a comment, prune is turned off so that applying the output deletes
// nothing, and that output plans no change.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { main } from '../src/cli/main.js';
import { configSchema } from '../src/core/schema.js';
import { closeAllNamespaces } from '../src/kernel/namespace.js';
import { captureIO } from './helpers/io.js';
import { createNetns, deleteNetns, ip, ipEndpoints, requireRoot } from './helpers/netns.js';

const made: string[] = [];
const dir = mkdtempSync(join(tmpdir(), 'mr-show-refused-'));
beforeAll(() => requireRoot());
afterAll(() => {
  closeAllNamespaces();
  for (const n of made) deleteNetns(n);
  rmSync(dir, { recursive: true, force: true });
});

async function cli(...argv: string[]) {
  const t = captureIO({ env: { NODE_NAME: 'y16-node' }, cwd: dir });
  const code = await main(argv, t.io);
  return { code, out: t.out(), err: t.err() };
}

describe('show -o yaml with endpoints a config refuses', () => {
  it('prints them as comments; the output validates, and plans no change', async () => {
    const n = createNetns('y16');
    made.push(n);
    ip('-n', n, 'mptcp', 'endpoint', 'add', '192.0.2.1', 'signal');
    ip('-n', n, 'mptcp', 'endpoint', 'add', '127.0.0.1', 'subflow');
    ip('-n', n, 'mptcp', 'endpoint', 'add', 'fe80::1', 'signal');
    const before = ipEndpoints(n);
    expect(before.map((e) => e.address)).toEqual(['192.0.2.1', '127.0.0.1', 'fe80::1']);

    const shown = await cli('show', '--netns', n, '-o', 'yaml');
    expect(shown.code).toBe(0);
    const cfg = configSchema.parse(YAML.parse(shown.out));
    const entry = cfg.namespaces[0]!;
    expect(entry.endpoints!.map((e) => e.address)).toEqual(['192.0.2.1']);
    expect(entry.prune).toBe(false);
    expect(shown.out).toMatch(/# not valid config \(address "127\.0\.0\.1" is a loopback address; .*\): \{ address: 127\.0\.0\.1, id: 2, flags: \[ subflow \] \}/);
    expect(shown.out).toMatch(/# not valid config \(link-local address "fe80::1" needs `dev`.*\): \{ address: fe80::1, id: 3, flags: \[ signal \] \}/);

    const file = join(dir, 'shown.yaml');
    writeFileSync(file, shown.out);
    expect((await cli('validate', '-f', file)).code).toBe(0);
    const plan = await cli('plan', '-f', file, '--detailed-exitcode');
    expect(plan.err).toBe('');
    expect(plan.code).toBe(0);
    const applied = await cli('apply', '-f', file);
    expect(applied.code).toBe(0);
    expect(ipEndpoints(n)).toEqual(before);
  });
});
