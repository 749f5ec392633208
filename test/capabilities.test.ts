// Capabilities of the running kernel: the pure release table, the planner
// refusing what a kernel cannot hold, and the probe on the real kernel against
// `ip netns exec NS sysctl` / `ls /proc/sys/net/mptcp` as oracles; show and doctor report them.
import { release } from 'node:os';
import { afterAll, describe, expect, it } from 'vitest';
import { main } from '../src/cli/main.js';
import type { DesiredNamespace, LiveNamespace } from '../src/core/model.js';
import { planNamespace } from '../src/core/plan.js';
import type { DoctorJson } from '../src/doctor/report.js';
import { capabilitiesFor, probeCapabilities } from '../src/kernel/capabilities.js';
import { captureIO } from './helpers/io.js';
import { createNetns, deleteNetns, nsSysctl, requireRoot, sh } from './helpers/netns.js';

const live: LiveNamespace = {
  netns: 't',
  endpoints: [{ id: 1, family: 4, address: '192.0.2.1', flags: ['subflow'] }],
  limits: { subflows: 2, addAddrAccepted: 0 },
  mptcp: {},
  rpFilter: {},
  links: [],
  addresses: [],
};
const desired: DesiredNamespace = {
  netns: 't',
  mptcp: {},
  limits: {},
  endpoints: [
    { address: '192.0.2.1', flags: ['subflow', 'laminar'] },
    { address: '192.0.2.2', flags: ['subflow'] },
  ],
  rpFilter: {},
  prune: true,
  conflicts: 'fail',
};

describe('capabilities (pure)', () => {
  it('endpoint flags follow the release; an unreadable release refuses nothing', () => {
    expect(capabilitiesFor('6.18.44-fc', []).endpointFlags).toContain('laminar');
    expect(capabilitiesFor('6.12.3', []).endpointFlags).toEqual(['signal', 'subflow', 'backup', 'fullmesh', 'implicit']);
    expect(capabilitiesFor('5.15.0', []).endpointFlags).toEqual(['signal', 'subflow', 'backup', 'fullmesh']);
    expect(capabilitiesFor('custom', []).endpointFlags).toBeUndefined();
  });

  it('the planner refuses a flag the kernel lacks, with the reason, and leaves the live twin alone', () => {
    const old = planNamespace(desired, live, capabilitiesFor('6.12.3', []));
    expect(old.errors).toEqual(['endpoints[192.0.2.1]: this kernel (6.12.3) has no endpoint flag laminar; remove it or run a kernel that has it']);
    expect(old.operations.map((o) => o.op)).toEqual(['add']);
    const now = planNamespace(desired, live, capabilitiesFor('6.18.44', []));
    expect(now.errors).toEqual([]);
    expect(now.operations.map((o) => o.op)).toEqual(['delete', 'add', 'add']);
  });
});

describe('capabilities on the real kernel', () => {
  requireRoot();
  const n = createNetns('x16');
  afterAll(() => deleteNetns(n));

  it('probes sysctls, path managers and schedulers inside the namespace', () => {
    const c = probeCapabilities(n);
    expect(c.release).toBe(release());
    expect(c.sysctls).toEqual(sh('ip', ['netns', 'exec', n, 'ls', '/proc/sys/net/mptcp']).trim().split(/\s+/).sort());
    expect(c.pathManagers).toEqual(nsSysctl(n, 'net.mptcp.available_path_managers').split(/\s+/));
    expect(c.schedulers).toEqual(nsSysctl(n, 'net.mptcp.available_schedulers').split(/\s+/));
    // This machine's kernel is 6.18: it stores laminar (0x20); ip(8) shows it as rawflags 20.
    expect(c.endpointFlags).toContain('laminar');
    expect(probeCapabilities(n)).toBe(c); // once per namespace
  });

  it('show and doctor report them', async () => {
    const t = captureIO({ env: { NODE_NAME: 'x16-node' } });
    expect(await main(['show', '--netns', n], t.io)).toBe(0);
    expect(t.out()).toContain(`# kernel ${release()}; endpoint flags signal subflow backup fullmesh implicit laminar; path managers`);
    const j = captureIO({ env: { NODE_NAME: 'x16-node' } });
    expect(await main(['show', '--netns', n, '-o', 'json'], j.io)).toBe(0);
    expect(JSON.parse(j.out()).namespaces[0].capabilities.release).toBe(release());
    const d = captureIO({ env: { NODE_NAME: 'x16-node' } });
    await main(['doctor', '--netns', n, '-o', 'json'], d.io);
    const doc = JSON.parse(d.out()) as DoctorJson;
    expect(doc.namespaces[0]!.capabilities!.sysctls).toContain('path_manager');
  });
});
