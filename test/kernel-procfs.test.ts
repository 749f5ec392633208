// net.mptcp.* sysctls through /proc/sys, and rp_filter (read over rtnetlink,
// written through /proc/sys), inside namespaces, checked with
// `ip netns exec NS sysctl` as the oracle.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { SYSCTL_NAMES, type MptcpKey } from '../src/core/schema.js';
import { KernelError } from '../src/kernel/api.js';
import { closeAllNamespaces, openNamespace } from '../src/kernel/namespace.js';
import { ip, namespacesFor, nsSysctl, setNsSysctl } from './helpers/netns.js';

const ns = namespacesFor('kpf', closeAllNamespaces);

describe('net.mptcp sysctls', () => {
  it('reads every sysctl this kernel has, as sysctl shows it', async () => {
    const n = ns();
    setNsSysctl(n, 'net.mptcp.add_addr_timeout', '30');
    setNsSysctl(n, 'net.mptcp.checksum_enabled', '1');
    const got = (await openNamespace(n).readLive({ mptcp: true })).mptcp;
    for (const [key, name] of Object.entries(SYSCTL_NAMES) as [MptcpKey, string][]) {
      const raw = nsSysctl(n, `net.mptcp.${name}`);
      const v = got[key];
      if (typeof v === 'boolean') expect(v ? '1' : '0').toBe(raw);
      else expect(String(v)).toBe(raw);
    }
    expect(got.addAddrTimeout).toBe(30);
    expect(got.checksumEnabled).toBe(true);
    expect(got.pathManager).toBe('kernel');
  });

  it('writes sysctls in the namespace only, reusing the open files', async () => {
    const n = ns();
    const hostBefore = nsSysctlHost('net.mptcp.stale_loss_cnt');
    const k = openNamespace(n);
    k.writeMptcpSysctl('staleLossCnt', 7);
    k.writeMptcpSysctl('allowJoinInitialAddrPort', false);
    k.writeMptcpSysctl('pathManager', 'userspace');
    expect(nsSysctl(n, 'net.mptcp.stale_loss_cnt')).toBe('7');
    expect(nsSysctl(n, 'net.mptcp.allow_join_initial_addr_port')).toBe('0');
    expect(nsSysctl(n, 'net.mptcp.pm_type')).toBe('1');
    expect((await k.readLive({ mptcp: true })).mptcp).toMatchObject({ staleLossCnt: 7, allowJoinInitialAddrPort: false, pathManager: 'userspace' });
    k.writeMptcpSysctl('staleLossCnt', 9);
    expect(nsSysctl(n, 'net.mptcp.stale_loss_cnt')).toBe('9');
    expect(nsSysctlHost('net.mptcp.stale_loss_cnt')).toBe(hostBefore);
  });

  it('reports a refused write with the sysctl, the value and the errno', () => {
    const n = ns();
    let err: unknown;
    try {
      openNamespace(n).writeMptcpSysctl('scheduler', 'nosuchsched');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(KernelError);
    expect((err as KernelError).message).toBe(`write net.mptcp.scheduler=nosuchsched in netns ${n}: ENOENT`);
  });
});

describe('rp_filter', () => {
  it('reads per interface plus all and default, and writes one interface', async () => {
    const n = ns();
    ip('link', 'add', 'mrp0', 'netns', n, 'type', 'veth', 'peer', 'name', 'mrp1', 'netns', n);
    setNsSysctl(n, 'net.ipv4.conf.mrp0.rp_filter', '1');
    setNsSysctl(n, 'net.ipv4.conf.default.rp_filter', '2');
    setNsSysctl(n, 'net.ipv4.conf.mrp1.rp_filter', '3');
    const k = openNamespace(n);
    expect((await k.readLive({ rpFilter: true })).rpFilter).toEqual({ all: 0, default: 2, lo: 0, mrp0: 1, mrp1: 3 });
    k.writeRpFilter('mrp0', 2);
    expect(nsSysctl(n, 'net.ipv4.conf.mrp0.rp_filter')).toBe('2');
    k.writeRpFilter('all', 1);
    expect(nsSysctl(n, 'net.ipv4.conf.all.rp_filter')).toBe('1');

    // An interface that appears later is read once the kept values are dropped; one
    // deleted and re-created under the same name is written through a new file, not a dead one.
    ip('-n', n, 'link', 'del', 'mrp0');
    ip('link', 'add', 'mrp0', 'netns', n, 'type', 'veth', 'peer', 'name', 'mrp2', 'netns', n);
    expect((await k.readLive({ rpFilter: ['mrp0', 'mrp2'] })).rpFilter).toEqual({ all: 1, default: 2, mrp0: 2, mrp2: 2 });
    k.writeRpFilter('mrp0', 0);
    expect(nsSysctl(n, 'net.ipv4.conf.mrp0.rp_filter')).toBe('0');
  });

  it('refuses interface names that are not interface names before building a path', () => {
    const n = ns();
    expect(() => openNamespace(n).writeRpFilter('../lo', 0)).toThrow(/EINVAL \(interface name may not contain "\/"/);
  });
});

/** The host's value, read-only (tests never change the host namespace). */
function nsSysctlHost(key: string): string {
  return readFileSync(`/proc/sys/${key.replace(/\./g, '/')}`, 'utf8').trim();
}
