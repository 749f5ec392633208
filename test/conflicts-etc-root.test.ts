// `plan` and `apply` take --etc-root like `watch` and `doctor`: the configuration of
// managers that are not running (reported for the namespace the tool runs in) is
// read there, e.g. from a mount of the host's /etc in a container. Planning only
// reads; nothing here writes to the host namespace.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { main } from '../src/cli/main.js';
import { captureIO } from './helpers/io.js';
import { requireRoot } from './helpers/netns.js';

const FX = join(import.meta.dirname, 'fixtures', 'conflicts');
const dir = mkdtempSync(join(tmpdir(), 'mr-x15-etcroot-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function plan(...extra: string[]) {
  const f = join(dir, 'host.yaml');
  writeFileSync(f, 'version: 1\nnamespaces:\n  - netns: host\n    conflicts: warn\n    limits: { subflows: 2 }\n');
  const t = captureIO({ env: { NODE_NAME: 'test-node' } });
  const code = await main(['plan', '-f', f, '-o', 'json', ...extra], t.io);
  return { code, out: t.out(), err: t.err() };
}

describe('plan --etc-root', () => {
  it("reads a stopped mptcpd's file from the given root and names it", async () => {
    requireRoot();
    const r = await plan('--etc-root', join(FX, 'precedence', 'etc'));
    expect(r.err).toBe('');
    const n = (JSON.parse(r.out) as { namespaces: { conflicts?: { manager: string; active: boolean; file?: string; line?: number }[] }[] }).namespaces[0]!;
    const file = join(FX, 'precedence', 'etc', 'mptcpd', 'mptcpd.conf');
    expect(n.conflicts).toContainEqual(expect.objectContaining({ manager: 'mptcpd', active: false, file, line: 5 }));

    const empty = mkdtempSync(join(dir, 'etc-'));
    const e = await plan('--etc-root', empty);
    const m = (JSON.parse(e.out) as { namespaces: { conflicts?: { manager: string; file?: string }[] }[] }).namespaces[0]!;
    expect((m.conflicts ?? []).filter((c) => c.file?.startsWith(FX))).toEqual([]);
  });
});
