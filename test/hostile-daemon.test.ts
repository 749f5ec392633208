// The running daemon against hostile or racing config changes: a real daemon, a
// real namespace, checked with `ip`. The config it enforces must be the one it
// reports, its watcher must survive the directory being made again, and a file
// linked from outside the config directory must never show up in /status or the log.
import { chmodSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config/index.js';
import { realDeps } from '../src/daemon/deps.js';
import { ipLimits, requireRoot } from './helpers/netns.js';
import { atomicWrite, daemonTestScope, eventually, tempDir } from './helpers/daemon.js';

const scope = daemonTestScope('x13');
beforeAll(() => requireRoot());
afterEach(() => scope.stopDaemons());
afterAll(() => scope.cleanup());

const cfg = (ns: string, subflows: number) => `version: 1\nnamespaces:\n  - netns: ${ns}\n    limits: { subflows: ${subflows} }\n`;

function freshDir(): string {
  const t = tempDir('x13');
  scope.onCleanup(t.cleanup);
  return t.dir;
}

describe('watch: the config it enforces is the one it reports', () => {
  it('an edit landing between the load and the hash is still applied (no "unchanged" for a config never enforced)', async () => {
    const ns = scope.netns();
    const file = scope.configFile(cfg(ns, 2));
    let raced = false;
    // The real loader; right after it has read version 3, version 4 is saved.
    const deps = realDeps({
      loadConfig: async (path, node) => {
        const r = await loadConfig(path, { node });
        if (!raced && r.ok && r.config.namespaces[0]?.limits?.subflows === 3) {
          raced = true;
          atomicWrite(file, cfg(ns, 4));
        }
        return r;
      },
    });
    const d = await scope.start(file, { deps });
    expect(ipLimits(ns).subflows).toBe(2);
    const first = d.daemon.status().config.hash;
    atomicWrite(file, cfg(ns, 3));
    await eventually('the edit saved during the load is enforced', () => raced && ipLimits(ns).subflows === 4);
    // An explicit reload (SIGHUP) now finds nothing new: what is reported is what is enforced.
    const reported = d.daemon.status().config.hash;
    await d.daemon.reload('test');
    await d.daemon.whenIdle();
    expect(d.daemon.status().config.hash).toBe(reported);
    expect(reported).not.toBe(first);
    expect(ipLimits(ns).subflows).toBe(4);
  });
});

describe('watch: the config directory removed and made again', () => {
  for (const target of ['directory', 'file'] as const) {
    it(`keeps watching after rm -rf D; mkdir D (-f on the ${target})`, async () => {
      const ns = scope.netns();
      const D = join(freshDir(), 'conf');
      mkdirSync(D);
      writeFileSync(join(D, 'c.yaml'), cfg(ns, 2));
      const d = await scope.start(target === 'directory' ? D : join(D, 'c.yaml'));
      expect(ipLimits(ns).subflows).toBe(2);
      rmSync(D, { recursive: true, force: true });
      mkdirSync(D);
      writeFileSync(join(D, 'c.yaml'), cfg(ns, 5));
      await eventually('the re-created directory is read', () => ipLimits(ns).subflows === 5);
      // Later edits are seen too, not only the first after the re-creation.
      atomicWrite(join(D, 'c.yaml'), cfg(ns, 6));
      await eventually('a later edit is applied', () => ipLimits(ns).subflows === 6);
      expect(d.daemon.status().config.valid).toBe(true);
    });
  }
});

describe('watch: a config entry linked to a root-only file elsewhere', () => {
  it('is refused naming the link; its content is in neither /status nor the log; the last good config stays', async () => {
    const ns = scope.netns();
    const D = join(freshDir(), 'conf');
    mkdirSync(D);
    writeFileSync(join(D, 'a.yaml'), cfg(ns, 2));
    const secretDir = freshDir();
    const secret = join(secretDir, 'shadow');
    writeFileSync(secret, 'root:$6$S3CR3T-HASH-NOT-TO-LEAK$abc:19000:0:99999:7:::\n');
    chmodSync(secret, 0o600);
    const d = await scope.start(D);
    symlinkSync(secret, join(D, 'zz.yaml'));
    await eventually('the link is refused', () => d.daemon.status().config.valid === false);
    const status = await (await fetch(`${d.url}/status`)).text();
    expect(status).toContain('zz.yaml');
    expect(status).toContain('outside the config directory');
    const log = JSON.stringify(d.lines());
    for (const text of [status, log, JSON.stringify(d.daemon.status())]) {
      expect(text).not.toContain('S3CR3T');
      expect(text).not.toContain('root:$6$');
    }
    expect(ipLimits(ns).subflows).toBe(2);
  });
});
