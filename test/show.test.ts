// `show` through main(argv, io): live state as config YAML (valid input) and as
// the JSON snapshot `plan --live` reads.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { configSchema } from '../src/core/schema.js';
import { main } from '../src/cli/main.js';
import { parseLiveSnapshot, renderYaml } from '../src/cli/commands/show.js';
import { liveToConfig, toLiveSnapshot } from '../src/core/live-to-config.js';
import type { LiveNamespace } from '../src/core/model.js';
import { closeAllNamespaces, openNamespace } from '../src/kernel/namespace.js';
import { createNetns, deleteNetns, ip, requireRoot, setNsSysctl } from './helpers/netns.js';
import { captureIO } from './helpers/io.js';

const io = () => captureIO({ env: { NODE_NAME: 'node-a' }, cwd: '/' });

const made: string[] = [];
let n: string;
beforeAll(async () => {
  requireRoot();
  n = createNetns('shw');
  made.push(n);
  ip('link', 'add', 'mrs0', 'netns', n, 'type', 'veth', 'peer', 'name', 'mrs1', 'netns', n);
  ip('-n', n, 'addr', 'add', '192.0.2.10/32', 'dev', 'lo');
  ip('-n', n, 'mptcp', 'endpoint', 'add', '192.0.2.1', 'subflow', 'backup', 'dev', 'mrs0');
  ip('-n', n, 'mptcp', 'endpoint', 'add', '2001:db8::1', 'id', '7', 'signal');
  ip('-n', n, 'mptcp', 'endpoint', 'add', '192.0.2.10', 'port', '10100', 'signal');
  ip('-n', n, 'mptcp', 'limits', 'set', 'subflows', '4', 'add_addr_accepted', '1');
  setNsSysctl(n, 'net.ipv4.conf.mrs0.rp_filter', '2');
  setNsSysctl(n, 'net.ipv4.conf.mrs1.rp_filter', '3');
  // The kernel keeps an ifindex that names no interface.
  await openNamespace(n).addEndpoint({ address: '198.51.100.9', flags: ['subflow'], ifindex: 999 });
  closeAllNamespaces();
});
afterAll(() => {
  closeAllNamespaces();
  for (const m of made) deleteNetns(m);
});

describe('show', () => {
  it('-o yaml stays valid input when an interface has a name a config may not declare', async () => {
    const odd = createNetns('shwodd');
    made.push(odd);
    ip('link', 'add', 'a;b', 'netns', odd, 'type', 'veth', 'peer', 'name', 'c$d', 'netns', odd);
    ip('-n', odd, 'mptcp', 'endpoint', 'add', '192.0.2.7', 'subflow', 'dev', 'a;b');
    const t = io();
    expect(await main(['show', '--netns', odd], t.io)).toBe(0);
    const doc = YAML.parse(t.out());
    expect(configSchema.safeParse(doc).success).toBe(true);
    expect(t.out()).toContain('bound to interface "a;b", a name a config cannot declare');
    expect(t.out()).toMatch(/rpFilter of interface "c\$d" is 0; a config cannot name it/);
  });

  it('-o yaml prints the live state as a valid config, with comments for what it cannot hold', async () => {
    const t = io();
    expect(await main(['show', '--netns', n], t.io)).toBe(0);
    const text = t.out();
    const cfg = configSchema.parse(YAML.parse(text));
    expect(cfg.namespaces).toHaveLength(1);
    const e = cfg.namespaces[0]!;
    expect(e.netns).toBe(n);
    expect(e.limits).toEqual({ subflows: 4, addAddrAccepted: 1 });
    expect(e.endpoints).toEqual([
      { address: '192.0.2.1', id: 1, dev: 'mrs0', flags: ['subflow', 'backup'] },
      { address: '2001:db8::1', id: 7, flags: ['signal'] },
      { address: '192.0.2.10', port: 10100, id: 8, flags: ['signal'] },
      { address: '198.51.100.9', id: 9, flags: ['subflow'] },
    ]);
    expect(text).toContain('# bound to ifindex 999, which no longer exists');
    expect(e.rpFilter).toMatchObject({ all: 'off', lo: 'off', mrs0: 'loose' });
    expect(e.rpFilter).not.toHaveProperty('mrs1');
    expect(text).toContain('# rpFilter.mrs1 is 3, outside 0..2');
    expect(e.mptcp).toMatchObject({ enabled: true, pathManager: 'kernel' });
    expect(text).toContain('live state of node node-a');
  });

  it('-o json prints the full snapshot that parseLiveSnapshot reads back', async () => {
    const t = io();
    expect(await main(['show', '--netns', n, '-o', 'json'], t.io)).toBe(0);
    const snap = parseLiveSnapshot(t.out());
    expect(snap.node).toBe('node-a');
    const live = snap.namespaces[0]!;
    expect(live.endpoints.find((x) => x.id === 1)).toEqual({ id: 1, family: 4, address: '192.0.2.1', flags: ['subflow', 'backup'], ifindex: live.links.find((l) => l.name === 'mrs0')!.ifindex });
    expect(live.endpoints.find((x) => x.id === 9)!.ifindex).toBe(999);
    expect(live.rpFilter.mrs1).toBe(3);
    expect(live.addresses.some((a) => a.address === '192.0.2.10')).toBe(true);
    expect(JSON.parse(t.out()).namespaces[0].endpoints[0].dev).toBe('mrs0');
  });

  it('a glob matching nothing is a user error; a bad glob too', async () => {
    const t = io();
    expect(await main(['show', '--netns', 'mrnothing-*'], t.io)).toBe(1);
    expect(t.err()).toMatch(/^error: no namespace matches --netns "mrnothing-\*"/);
    const u = io();
    expect(await main(['show', '--netns', '../x'], u.io)).toBe(1);
    expect(u.err()).toMatch(/^error: --netns "\.\.\/x" may not contain/);
  });

  it('parseLiveSnapshot says where a snapshot is wrong', () => {
    expect(() => parseLiveSnapshot('{"node":"a","namespaces":[{"netns":"x"}]}')).toThrow(/live snapshot: namespaces\.0\.endpoints/);
    expect(() => parseLiveSnapshot('nope')).toThrow(/not JSON/);
  });
});

describe('live state to config (pure)', () => {
  const live: LiveNamespace = {
    netns: 'ns1',
    endpoints: [
      { id: 1, family: 4, address: '192.0.2.1', flags: ['implicit'] },
      { id: 2, family: 4, address: '192.0.2.2', flags: ['subflow', 'laminar'], rawFlags: 0x80 },
    ],
    limits: { subflows: 2, addAddrAccepted: 0 },
    mptcp: { closeTimeout: -1 as never, enabled: true },
    rpFilter: { all: 0 },
    links: [],
    addresses: [],
  };

  it('keeps implicit endpoints out of the config, as comments, and marks them in json', () => {
    const text = renderYaml('n', [liveToConfig(live)]);
    const cfg = configSchema.parse(YAML.parse(text));
    expect(cfg.namespaces[0]!.endpoints).toEqual([{ address: '192.0.2.2', id: 2, flags: ['subflow', 'laminar'] }]);
    expect(text).toContain('# implicit (created by the kernel, never pruned): { address: 192.0.2.1, id: 1, flags: [] }');
    expect(text).toContain('# unknown flag bits 0x80 (rawflags)');
    expect(text).toContain('# mptcp.closeTimeout is -1, which the config format cannot hold');
    expect(cfg.namespaces[0]!.mptcp).toEqual({ enabled: true });
    const json = JSON.stringify(toLiveSnapshot('n', [live]));
    expect(JSON.parse(json).namespaces[0].endpoints[0]).toMatchObject({ id: 1, implicit: true });
    expect(parseLiveSnapshot(json).namespaces[0]!.endpoints[0]).toEqual(live.endpoints[0]);
  });
});
