// `plan --live FILE` given something that is not a saved snapshot: a device, a
// FIFO, a huge file, a file with secrets. It must finish at once, with a short
// error that never quotes the file. main() in-process, real files.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { main } from '../src/cli/main.js';
import { MAX_SNAPSHOT_BYTES } from '../src/apply/snapshot-kernel.js';
import { captureIO } from './helpers/io.js';

const dir = mkdtempSync(join(tmpdir(), 'mr-hostile-live-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const cfg = join(dir, 'c.yaml');
writeFileSync(cfg, 'version: 1\nnamespaces:\n  - netns: host\n    limits: { subflows: 2 }\n');

async function plan(live: string): Promise<{ code: number; out: string; err: string }> {
  const c = captureIO({ cwd: dir });
  const code = await main(['plan', '-f', cfg, '--live', live], c.io);
  return { code, out: c.out(), err: c.err() };
}

describe('plan --live with hostile files', () => {
  it.each([
    ['/dev/zero', /--live \/dev\/zero: is a device, not a saved snapshot; it was not read/],
    ['/dev/null', /--live \/dev\/null: is a device/],
  ])('%s is refused unread', async (path, msg) => {
    const r = await plan(path);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(msg);
  });

  it('a FIFO is refused without blocking', async () => {
    const fifo = join(dir, 'snap.fifo');
    execFileSync('mkfifo', [fifo]);
    const r = await plan(fifo);
    expect(r.code).toBe(1);
    expect(r.err).toContain('is a FIFO, not a saved snapshot');
  });

  it('a file over the cap is refused before it is read', async () => {
    const big = join(dir, 'big.json');
    writeFileSync(big, '');
    truncateSync(big, MAX_SNAPSHOT_BYTES + 1);
    const r = await plan(big);
    expect(r.code).toBe(1);
    expect(r.err).toContain(`is ${MAX_SNAPSHOT_BYTES + 1} bytes; a snapshot is at most`);
  });

  it('a linked credentials file is refused without quoting a byte of it', async () => {
    const secret = join(dir, 'credentials');
    writeFileSync(secret, '[default]\naws_secret_access_key = wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY\n');
    symlinkSync(secret, join(dir, 'snap.json'));
    const r = await plan('snap.json');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/--live snap\.json: is not valid JSON/);
    expect(r.err).not.toContain('default');
    expect(r.err).not.toContain('wJalr');
    // A JSON file of secrets: the key may be named, its value never.
    writeFileSync(join(dir, 'secrets.json'), '{"token": "ghp_S3CR3TVALUE", "node": "n"}');
    const j = await plan('secrets.json');
    expect(j.code).toBe(1);
    expect(j.err).toContain('unknown top-level key "token"');
    expect(j.err).not.toContain('S3CR3T');
    // Broken JSON is pointed at by line and column only.
    writeFileSync(join(dir, 'broken.json'), '{\n  "node": "n",\n  "namespaces": [\n    ,"hunter2"]\n}\n');
    const b = await plan('broken.json');
    expect(b.code).toBe(1);
    expect(b.err).not.toContain('hunter2');
  });

  it('a real snapshot still plans', async () => {
    const snap = join(dir, 'ok.json');
    writeFileSync(
      snap,
      JSON.stringify({
        node: 'n1',
        namespaces: [
          {
            netns: 'host',
            endpoints: [],
            limits: { subflows: 0, addAddrAccepted: 0 },
            mptcp: { enabled: true },
            rpFilter: {},
            links: [{ ifindex: 1, name: 'lo', up: true, lowerUp: true }],
            addresses: [],
          },
        ],
      }),
    );
    const r = await plan(snap);
    expect(r.err).toBe('');
    expect(r.out).toContain('subflows');
  });
});
