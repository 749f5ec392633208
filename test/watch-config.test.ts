// Config edits seen by the running daemon, the ways they really happen: an
// editor's atomic save (temp file + rename) and a Kubernetes ConfigMap update
// (a new timestamped directory and a `..data` symlink renamed over the old one).
import { mkdirSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createNetns, deleteNetns, ip, ipEndpoints, ipLimits, requireRoot } from './helpers/netns.js';
import { atomicWrite, eventually, metrics, metricValue, startTestDaemon, tempDir, type TestDaemon } from './helpers/daemon.js';

const created: string[] = [];
const running: TestDaemon[] = [];
const dirs: (() => void)[] = [];

beforeAll(() => requireRoot());
afterEach(async () => {
  await Promise.all(running.splice(0).map((d) => d.daemon.stop()));
});
afterAll(() => {
  for (const n of created) deleteNetns(n);
  for (const c of dirs) c();
});

function setup(): { ns: string; dir: string } {
  const ns = createNetns('wc');
  created.push(ns);
  const t = tempDir('watchcfg');
  dirs.push(t.cleanup);
  return { ns, dir: t.dir };
}

const cfg = (ns: string, subflows: number, addr: string) => `version: 1
namespaces:
  - netns: ${ns}
    limits: { subflows: ${subflows} }
    endpoints:
      - { address: ${addr}, flags: [signal] }
`;

async function start(file: string, resyncMs = 3_600_000): Promise<TestDaemon> {
  const d = await startTestDaemon(file, { resyncMs });
  running.push(d);
  return d;
}

const addresses = (ns: string) => ipEndpoints(ns).map((e) => e.address).sort().join();

describe('watch: config edits', () => {
  it('applies an editor-style atomic save (write temp, rename over)', async () => {
    const { ns, dir } = setup();
    const file = join(dir, 'mptcp.yaml');
    writeFileSync(file, cfg(ns, 3, '192.0.2.1'));
    const d = await start(file);
    expect(ipLimits(ns).subflows).toBe(3);
    atomicWrite(file, cfg(ns, 4, '192.0.2.2'));
    await eventually('edit applied', () => ipLimits(ns).subflows === 4 && addresses(ns) === '192.0.2.2');
    expect(d.daemon.status().config.generation).toBe(2);
  });

  it('applies a ConfigMap update (..data symlink swap), with -f on the directory and on the file', async () => {
    for (const target of ['dir', 'file'] as const) {
      const { ns, dir } = setup();
      const put = (stamp: string, text: string) => {
        mkdirSync(join(dir, stamp));
        writeFileSync(join(dir, stamp, 'mptcp.yaml'), text);
        symlinkSync(stamp, join(dir, '..data_tmp'));
        renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
      };
      put('..2026_11_23_07_00_00.1', cfg(ns, 3, '192.0.2.10'));
      symlinkSync('..data/mptcp.yaml', join(dir, 'mptcp.yaml'));
      const d = await start(target === 'dir' ? dir : join(dir, 'mptcp.yaml'));
      expect(addresses(ns)).toBe('192.0.2.10');

      put('..2026_11_23_07_05_00.2', cfg(ns, 6, '198.51.100.10'));
      rmSync(join(dir, '..2026_11_23_07_00_00.1'), { recursive: true });
      await eventually(`ConfigMap update applied (-f ${target})`, () => ipLimits(ns).subflows === 6 && addresses(ns) === '198.51.100.10');
      expect(d.daemon.status().config.generation).toBe(2);
      await d.daemon.stop();
    }
  });

  it('ignores an invalid edit: the last good config stays enforced, config_valid 0 until fixed', async () => {
    const { ns, dir } = setup();
    const file = join(dir, 'mptcp.yaml');
    writeFileSync(file, cfg(ns, 3, '192.0.2.20'));
    const d = await start(file, 300);
    const firstHash = d.daemon.status().config.hash;

    atomicWrite(file, `version: 1\nnamespaces:\n  - netns: ${ns}\n    limits: { subflows: 99 }\n`);
    await eventually('config_valid 0', async () => metricValue(await metrics(d.url), 'mptcp_reconciler_config_valid') === 0);
    const st = d.daemon.status();
    expect(st.config).toMatchObject({ valid: false, hash: firstHash, generation: 1 });
    // Positioned diagnostics, in the status and in the log.
    expect(st.config.error).toMatch(/mptcp\.yaml:4:/);
    expect(d.lines().some((l) => l.msg?.toString().startsWith('invalid config ignored') && JSON.stringify(l.diagnostics).includes('mptcp.yaml:4'))).toBe(true);
    expect((await fetch(`${d.url}/healthz`)).status).toBe(200);

    // Still enforcing the last good config: drift by hand is repaired to it.
    ip('-n', ns, 'mptcp', 'limits', 'set', 'subflows', '1');
    ip('-n', ns, 'mptcp', 'endpoint', 'flush');
    await eventually('last good config re-applied', () => ipLimits(ns).subflows === 3 && addresses(ns) === '192.0.2.20');

    atomicWrite(file, cfg(ns, 2, '192.0.2.21'));
    await eventually('fixed config applied', () => ipLimits(ns).subflows === 2 && addresses(ns) === '192.0.2.21');
    const m = await metrics(d.url);
    expect(metricValue(m, 'mptcp_reconciler_config_valid')).toBe(1);
    expect(metricValue(m, 'mptcp_reconciler_config_info', { hash: d.daemon.status().config.hash })).toBe(1);
    expect(m.filter((s) => s.name === 'mptcp_reconciler_config_info')).toHaveLength(1);
  });

  it('refuses to start on an invalid config, with positioned diagnostics', async () => {
    const { ns, dir } = setup();
    const file = join(dir, 'mptcp.yaml');
    writeFileSync(file, `version: 1\nnamespaces:\n  - netns: ${ns}\n    bogus: 1\n`);
    await expect(startTestDaemon(file)).rejects.toThrow(/mptcp\.yaml:4:/);
    expect(ipLimits(ns).subflows).toBe(2);
  });
  it("loads for its own node: another node's merge problem does not stop it", async () => {
    const { ns, dir } = setup();
    const file = join(dir, 'fleet.yaml');
    // On node "other" the two entries merge into 9 endpoints (invalid there);
    // on the daemon's node "test-node" only the first entry applies.
    const eps = (from: number, n: number) =>
      Array.from({ length: n }, (_, i) => `      - { address: 192.0.2.${from + i}, flags: [signal] }`).join('\n');
    writeFileSync(
      file,
      `version: 1
namespaces:
  - netns: ${ns}
    endpoints:
${eps(1, 5)}
  - netns: ${ns}
    nodes: ["other"]
    endpoints:
${eps(10, 4)}
`,
    );
    await start(file);
    expect(addresses(ns).split(',').length).toBe(5);
  });
});
