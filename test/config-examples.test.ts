// Every example is valid input and says what its scenario needs.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig, resolveNamespace, resolveAll } from '../src/config/index.js';
import type { Config } from '../src/core/schema.js';

const dir = join(import.meta.dirname, '..', 'examples');
const HEADER = '# yaml-language-server: $schema=../schemas/mptcp-reconciler.schema.json';
// The demo template belongs to `mptcp-reconciler demo`, not to the scenarios.
const SCENARIOS = [
  'server-signal.yaml',
  'server-port-load-balancer.yaml',
  'client-cellular-backup.yaml',
  'client-fullmesh.yaml',
  'limits-only.yaml',
  'userspace-pm.yaml',
  'fleet.yaml',
  'container-host.yaml',
];

async function load(name: string, node?: string): Promise<Config> {
  const r = await loadConfig(join(dir, name), { node });
  if (!r.ok) expect.fail(r.diagnostics.map((d) => `${d.file}:${d.line}:${d.column} ${d.message}`).join('\n'));
  expect(r.warnings).toEqual([]);
  return r.config;
}

const DOC_NETS = [/^192\.0\.2\./, /^198\.51\.100\./, /^203\.0\.113\./, /^2001:db8:/i];

describe('examples', () => {
  it.each(readdirSync(dir).filter((f) => /\.ya?ml$/.test(f)))('%s is valid, without warnings', async (name) => {
    await load(name);
  });

  it.each(SCENARIOS)('%s starts with the schema line and uses documentation addresses only', (name) => {
    const text = readFileSync(join(dir, name), 'utf8');
    expect(text.split('\n')[0]).toBe(HEADER);
    for (const m of text.matchAll(/^\s*-?\s*address: (\S+)/gm)) expect(DOC_NETS.some((re) => re.test(m[1]!))).toBe(true);
  });

  it('server-signal announces an extra address bound to its interface', async () => {
    const d = resolveNamespace(await load('server-signal.yaml'), 'n', 'host')!;
    expect(d.endpoints).toEqual([{ address: '198.51.100.10', dev: 'eth1', flags: ['signal'] }]);
    expect(d.rpFilter).toEqual({ eth1: 'loose' });
  });

  it('server-port-load-balancer announces a port and refuses joins to the initial address', async () => {
    const d = resolveNamespace(await load('server-port-load-balancer.yaml'), 'n', 'host')!;
    expect(d.mptcp).toEqual({ allowJoinInitialAddrPort: false });
    expect(d.endpoints).toEqual([{ address: '203.0.113.10', port: 10000, dev: 'eth0', flags: ['signal'] }]);
    expect(d.rpFilter).toEqual({ eth0: 'loose' });
  });

  it('client-cellular-backup derives a backup subflow endpoint from usb0', async () => {
    const d = resolveNamespace(await load('client-cellular-backup.yaml'), 'n', 'host')!;
    expect(d.endpoints).toEqual([{ dev: 'usb0', family: 'ipv4', flags: ['subflow', 'backup'] }]);
    expect(d.limits.addAddrAccepted).toBeGreaterThan(0);
  });

  it('client-fullmesh uses subflow+fullmesh on both interfaces', async () => {
    const d = resolveNamespace(await load('client-fullmesh.yaml'), 'n', 'host')!;
    expect(d.endpoints?.map((e) => e.flags)).toEqual([['subflow', 'fullmesh'], ['subflow', 'fullmesh']]);
  });

  it('limits-only leaves endpoints unmanaged', async () => {
    const d = resolveNamespace(await load('limits-only.yaml'), 'n', 'host')!;
    expect(d.endpoints).toBeUndefined();
    expect(d.limits).toEqual({ subflows: 4, addAddrAccepted: 4 });
  });

  it('userspace-pm switches the path manager and leaves endpoints alone', async () => {
    const d = resolveNamespace(await load('userspace-pm.yaml'), 'n', 'host')!;
    expect(d.mptcp.pathManager).toBe('userspace');
    expect(d.endpoints).toBeUndefined();
    expect(d.conflicts).toBe('warn');
  });

  it('fleet: the baseline everywhere, overrides on matching nodes only', async () => {
    const c = await load('fleet.yaml');
    const plain = resolveNamespace(c, 'core-3', 'host')!;
    expect(plain.limits).toEqual({ subflows: 2, addAddrAccepted: 0 });
    expect(plain.endpoints).toEqual([{ dev: 'eth0', flags: ['subflow'] }]);
    const edge = resolveNamespace(c, 'edge-7', 'host')!;
    expect(edge.limits).toEqual({ subflows: 4, addAddrAccepted: 2 });
    expect(edge.endpoints).toEqual([
      { dev: 'eth0', flags: ['subflow'] },
      { dev: 'wwan0', family: 'ipv4', flags: ['subflow', 'backup'] },
    ]);
    const gw = resolveNamespace(c, 'gw-2', 'host')!;
    expect(gw.prune).toBe(false);
    expect(gw.endpoints).toHaveLength(2);
    expect(resolveNamespace(c, 'gw-3', 'host')!.prune).toBe(true);
  });

  it('container-host: the glob selects cni-* namespaces, never host or others', async () => {
    const c = await load('container-host.yaml');
    const all = resolveAll(c, 'n', ['cni-1a2b', 'cni-ffff', 'other']);
    expect(all.map((d) => d.netns)).toEqual(['host', 'cni-1a2b', 'cni-ffff']);
    expect(all[0]!.limits).toEqual({ subflows: 4 });
    expect(all[1]!.endpoints).toEqual([{ dev: 'eth0', family: 'any', flags: ['subflow'] }]);
  });
});
