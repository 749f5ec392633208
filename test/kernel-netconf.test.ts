// rp_filter read over rtnetlink (one RTM_GETNETCONF dump) instead of /proc/sys
// files: the values must be the ones `ip netns exec NS sysctl` prints, for all,
// default and each interface, and a read must not open any rp_filter file.
import { readdirSync, readlinkSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { RtnlEvent } from '../src/kernel/events.js';
import { closeAllNamespaces, closeNamespace, openNamespace, subscribeNamespace } from '../src/kernel/namespace.js';
import { NlWriter } from '../src/kernel/nlsock.js';
import { queueDumpRpFilter } from '../src/kernel/rtnl.js';
import { ip, ipTry, namespacesFor, nsSysctl, setNsSysctl } from './helpers/netns.js';
import { eventually } from './helpers/wait.js';

const ns = namespacesFor('nc', closeAllNamespaces);

const rpOf = (n: string, iface: string) => Number(nsSysctl(n, `net.ipv4.conf.${iface}.rp_filter`));

/** This process's open files under net/ipv4/conf (any sysctl root). */
function openConfFiles(): string[] {
  const out: string[] = [];
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      const target = readlinkSync(`/proc/self/fd/${fd}`);
      if (target.includes('/net/ipv4/conf/')) out.push(target);
    } catch {
      /* closed meanwhile */
    }
  }
  return out;
}

function withVethPair(n: string): void {
  ip('link', 'add', 'veth0', 'netns', n, 'type', 'veth', 'peer', 'name', 'veth1', 'netns', n);
}

describe('the RTM_GETNETCONF codec', () => {
  it('asks for the AF_INET dump with a bare netconfmsg, as strict-checking kernels require', () => {
    const w = new NlWriter(64);
    const req = queueDumpRpFilter(w, new Map());
    const seq = Buffer.alloc(4);
    seq.writeUInt32LE(req.seq);
    // nlmsghdr (20 bytes, RTM_GETNETCONF 82, REQUEST|DUMP) | ncm_family AF_INET, 3 bytes of padding; no attribute.
    expect(w.bytesWritten().toString('hex')).toBe(`14000000 5200 0103 ${seq.toString('hex')} 00000000 02000000`.replace(/ /g, ''));
  });

  it('takes ifindex and rp_filter from each answer, skipping other attributes and families', () => {
    const into = new Map<number, number>();
    const req = queueDumpRpFilter(new NlWriter(64), into);
    const msg = (family: number, attrs: string) => {
      const body = Buffer.from(`${family.toString(16).padStart(2, '0')}000000${attrs}`.replace(/ /g, ''), 'hex');
      const b = Buffer.alloc(16 + body.length);
      b.writeUInt32LE(b.length, 0);
      b.writeUInt16LE(80, 4);
      body.copy(b, 16);
      return b;
    };
    // NETCONFA_FORWARDING 1, NETCONFA_IFINDEX 3, NETCONFA_RP_FILTER 2
    const dev = msg(2, '08000200 01000000 08000100 03000000 08000300 02000000');
    // NETCONFA_IFINDEX -2 (default), NETCONFA_RP_FILTER 1
    const dflt = msg(2, '08000100 feffffff 08000300 01000000');
    // An AF_INET6 answer has no rp_filter and must not land in the table.
    const v6 = msg(10, '08000100 03000000 08000300 00000000');
    for (const b of [dev, dflt, v6]) req.onMessage!(b, 0, b.length, 80);
    expect([...into]).toEqual([
      [3, 2],
      [-2, 1],
    ]);
  });
});

describe('rp_filter over RTM_GETNETCONF', () => {
  it('reads all, default and two interfaces as sysctl prints them, for 0, 1 and 2 each, without opening their files', async () => {
    const n = ns();
    withVethPair(n);
    const k = openNamespace(n);
    const ifaces = ['all', 'default', 'veth0', 'veth1'];
    // Each round gives each key another value, and keys different values from each other
    // where it can: a value read from the wrong interface shows.
    for (let round = 0; round < 3; round++) {
      ifaces.forEach((iface, i) => setNsSysctl(n, `net.ipv4.conf.${iface}.rp_filter`, String((round + i) % 3)));
      const want = Object.fromEntries(ifaces.map((i) => [i, rpOf(n, i)]));
      expect(Object.values(want).sort()).toEqual([0, 0, 1, 2].map((v) => (v + round) % 3).sort());
      expect((await k.readLive({ rpFilter: ['veth0', 'veth1'] })).rpFilter, `round ${round}`).toEqual(want);
      // Every interface at once (what `show` asks for) agrees too.
      expect((await k.readLive({ rpFilter: true })).rpFilter).toEqual({ ...want, lo: rpOf(n, 'lo') });
    }
    expect(openConfFiles()).toEqual([]);
    closeNamespace(n);
  });

  it('leaves out an interface that does not exist, or has no IPv4 configuration, as /proc/sys does', async () => {
    const n = ns();
    withVethPair(n);
    // Below 68 bytes of MTU the kernel drops a device's IPv4 configuration, and with
    // it its conf/ directory (veth refuses such an MTU; lo takes it).
    ip('-n', n, 'link', 'set', 'lo', 'mtu', '60');
    expect(ipTry('netns', 'exec', n, 'sysctl', '-n', 'net.ipv4.conf.lo.rp_filter').status).not.toBe(0);
    setNsSysctl(n, 'net.ipv4.conf.veth1.rp_filter', '2');
    const k = openNamespace(n);
    const want = { all: rpOf(n, 'all'), default: rpOf(n, 'default'), veth1: 2 };
    expect((await k.readLive({ rpFilter: ['veth1', 'nosuch0', 'lo'] })).rpFilter).toEqual(want);
    expect((await k.readLive({ rpFilter: true })).rpFilter).toEqual({ ...want, veth0: rpOf(n, 'veth0') });
    closeNamespace(n);
  });

  it('sees an interface created after the handle was opened, once the notification drops the kept values', async () => {
    const n = ns();
    const k = openNamespace(n);
    const select = { rpFilter: ['late0'] };
    // The first read keeps nothing; the second opens the watch the later ones drain.
    expect((await k.readLive(select)).rpFilter).toEqual({ all: rpOf(n, 'all'), default: rpOf(n, 'default') });
    expect((await k.readLive(select)).rpFilter).toEqual({ all: rpOf(n, 'all'), default: rpOf(n, 'default') });
    ip('link', 'add', 'late0', 'netns', n, 'type', 'veth', 'peer', 'name', 'late1', 'netns', n);
    setNsSysctl(n, 'net.ipv4.conf.late0.rp_filter', '2');
    expect((await k.readLive(select)).rpFilter).toEqual({ all: rpOf(n, 'all'), default: rpOf(n, 'default'), late0: 2 });
    // A value changed by hand afterwards is seen as well (RTM_NEWNETCONF drops the kept table).
    setNsSysctl(n, 'net.ipv4.conf.late0.rp_filter', '1');
    expect((await k.readLive(select)).rpFilter.late0).toBe(1);
    // Deleted: left out again.
    ip('-n', n, 'link', 'del', 'late0');
    expect((await k.readLive(select)).rpFilter).toEqual({ all: rpOf(n, 'all'), default: rpOf(n, 'default') });
    closeNamespace(n);
  });

  it('with the change feed (the daemon): a new interface and a value changed by hand are read once their notifications came', async () => {
    const n = ns();
    const seen: RtnlEvent[] = [];
    const feed = subscribeNamespace(n, undefined, { onEvents: (e) => seen.push(...e), onOverflow: () => {} });
    try {
      const k = openNamespace(n);
      const select = { rpFilter: ['late0'] };
      const base = () => ({ all: rpOf(n, 'all'), default: rpOf(n, 'default') });
      expect((await k.readLive(select)).rpFilter).toEqual(base());
      expect((await k.readLive(select)).rpFilter).toEqual(base());
      ip('link', 'add', 'late0', 'netns', n, 'type', 'veth', 'peer', 'name', 'late1', 'netns', n);
      const late0 = Number(JSON.parse(ip('-n', n, '-j', 'link', 'show', 'late0'))[0].ifindex);
      await eventually('late0 announced', () => seen.some((e) => e.kind === 'newlink' && e.ifindex === late0));
      expect((await k.readLive(select)).rpFilter).toEqual({ ...base(), late0: rpOf(n, 'late0') });
      const next = rpOf(n, 'late0') === 2 ? 1 : 2;
      const before = seen.length;
      setNsSysctl(n, 'net.ipv4.conf.late0.rp_filter', String(next));
      await eventually('the netconf notification', () => seen.slice(before).some((e) => e.kind === 'newnetconf'));
      expect((await k.readLive(select)).rpFilter).toEqual({ ...base(), late0: next });
    } finally {
      feed.close();
      closeNamespace(n);
    }
  });

  it('writes go through /proc/sys and the next read shows them', async () => {
    const n = ns();
    withVethPair(n);
    const k = openNamespace(n);
    expect((await k.readLive({ rpFilter: ['veth0'] })).rpFilter.veth0).toBe(rpOf(n, 'veth0'));
    const next = rpOf(n, 'veth0') === 2 ? 1 : 2;
    k.writeRpFilter('veth0', next);
    expect(rpOf(n, 'veth0')).toBe(next);
    expect((await k.readLive({ rpFilter: ['veth0'] })).rpFilter.veth0).toBe(next);
    // Opened by the write, and kept for the next one.
    expect(openConfFiles()).toEqual([expect.stringMatching(/\/net\/ipv4\/conf\/veth0\/rp_filter$/)]);
    closeNamespace(n);
  });
});
