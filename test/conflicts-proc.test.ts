// Which managers run in which namespace: a fake /proc tree (ns/net links made as
// symlinks to "net:[INODE]" text) for the cases a real machine cannot stage (a
// process gone between readdir and readlink, a truncated comm), then the real
// mptcpd and NetworkManager started inside a throwaway namespace, found through
// the real /proc with the configuration each one reads itself.
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  decide,
  detectConflicts,
  netnsIdentity,
  processesIn,
  scanManagerProcesses,
} from '../src/conflicts/index.js';
import { createNetns, deleteNetns, ip, requireRoot, veth } from './helpers/netns.js';
import {
  requireRealManagers,
  startMptcpd,
  startNetworkManager,
  staticProfile,
  stopAllManagers,
  type RealManager,
  type RealNetworkManager,
} from './helpers/real-managers.js';

const tmp: string[] = [];
afterAll(() => tmp.forEach((d) => rmSync(d, { recursive: true, force: true })));

function fakeProc(): string {
  const root = mkdtempSync(join(tmpdir(), 'mr-fakeproc-'));
  tmp.push(root);
  const proc = (pid: string, comm: string, ns?: string, cmdline?: string[]) => {
    const dir = join(root, pid);
    mkdirSync(join(dir, 'ns'), { recursive: true });
    writeFileSync(join(dir, 'comm'), `${comm}\n`);
    if (ns) symlinkSync(ns, join(dir, 'ns', 'net'));
    if (cmdline) writeFileSync(join(dir, 'cmdline'), cmdline.join('\0') + '\0');
  };
  proc('100', 'NetworkManager', 'net:[4026532001]', ['/usr/sbin/NetworkManager', '--no-daemon']);
  proc('200', 'mptcpd', 'net:[4026532002]', ['/usr/libexec/mptcpd', '--load-plugins=sspi']);
  proc('300', 'sshd', 'net:[4026532001]');
  proc('400', 'NetworkManager'); // exited between readdir and readlink: no ns/net
  proc('500', 'my-pm-daemon-lo', 'net:[4026532001]'); // comm is cut to 15 bytes by the kernel
  mkdirSync(join(root, 'self')); // non-PID entries are ignored
  writeFileSync(join(root, 'uptime'), '1 1\n');
  return root;
}

describe('process scan on a fake /proc', () => {
  it('finds managers by comm and tells their namespace from the ns/net link', async () => {
    const procRoot = fakeProc();
    const scan = await scanManagerProcesses({ procRoot });
    expect(scan.processes.map((p) => [p.pid, p.manager, p.netns.ino])).toEqual([
      [100, 'NetworkManager', 4026532001],
      [200, 'mptcpd', 4026532002],
    ]);
    expect(scan.processes[1]!.argv).toEqual(['/usr/libexec/mptcpd', '--load-plugins=sspi']);
    expect(scan.unknownNamespace).toEqual([{ pid: 400, manager: 'NetworkManager', error: 'ENOENT' }]);
    expect(processesIn(scan, { dev: 4, ino: 4026532001 }).map((p) => p.pid)).toEqual([100]);
    expect(processesIn(scan, { dev: 4, ino: 4026532999 })).toEqual([]);
  });

  it('takes a configurable list of names, matched as the kernel truncates comm', async () => {
    const procRoot = fakeProc();
    const scan = await scanManagerProcesses({ procRoot, names: { 'my-pm-daemon-long-name': 'my-pm' } });
    expect(scan.processes.map((p) => [p.pid, p.manager])).toEqual([[500, 'my-pm']]);
  });

  it('builds evidence per namespace: mptcpd with sspi only writes no endpoints', async () => {
    const procRoot = fakeProc();
    const empty = mkdtempSync(join(tmpdir(), 'mr-emptyetc-'));
    tmp.push(empty);
    const opts = { procRoot, etcRoot: empty, runRoot: empty, usrLibRoot: empty };
    const nmNs = await detectConflicts({ target: { dev: 0, ino: 4026532001 }, isHost: false }, opts);
    expect(nmNs.map((e) => [e.manager, e.kind, e.pid, e.managesEndpoints])).toEqual([['NetworkManager', 'process', 100, true]]);
    const mNs = await detectConflicts({ target: { dev: 0, ino: 4026532002 }, isHost: false, livePathManager: 'userspace' }, opts);
    expect(mNs.map((e) => [e.manager, e.kind, e.managesEndpoints])).toEqual([
      ['mptcpd', 'process', false],
      ['mptcpd', 'config', false],
      ['mptcpd', 'path-manager', false],
    ]);
    // Settings from the command line are named as such (the fake has no root: the given etc is used).
    expect(mNs[1]).toMatchObject({ pid: 200, argv: ['--load-plugins=sspi'] });
    expect(mNs[1]!.detail).toContain('command line of pid 200: --load-plugins=sspi');
    expect(mNs[0]!.detail).toMatch(/could not be read \(ENOENT\)/);
    const d = decide('fail', mNs, undefined, { netns: 'cni-2', scope: { endpoints: true, limits: true, rpFilter: false } });
    expect(d.block).toBe(true);
    expect(d.conflicts.map((c) => c.kind)).toEqual(['path-manager']);
    expect(d.message).toMatch(/mptcpd \(pid 200\)/);
  });
});

describe('the real mptcpd and NetworkManager in a test namespace', () => {
  // Both programs run for real (Debian packages), each only inside nsA; nsB is the neighbour.
  let nsA = '';
  let nsB = '';
  let md: RealManager | undefined;
  let nm: RealNetworkManager | undefined;
  let emptyEtc = '';

  beforeAll(async () => {
    requireRoot();
    requireRealManagers();
    nsA = createNetns('x15');
    nsB = createNetns('x15');
    emptyEtc = mkdtempSync(join(tmpdir(), 'mr-emptyetc-'));
    tmp.push(emptyEtc);
    veth(nsA, 'x15a0', undefined, 'x15a1');
    ip('-n', nsA, 'link', 'set', 'x15a1', 'up');
    md = await startMptcpd(nsA, ['--path-manager=addr_adv', '--addr-flags=subflow', '--notify-flags=existing,skip_link_local,skip_loopback']);
    nm = await startNetworkManager(nsA, {
      devicePrefix: 'x15a',
      profiles: { x15a0: staticProfile('x15a0', '192.0.2.7/24', '192.0.2.254', 'mptcp-flags=0x22\n') },
    });
  });

  afterAll(async () => {
    try {
      await stopAllManagers();
    } finally {
      if (nsA) deleteNetns(nsA);
      if (nsB) deleteNetns(nsB);
    }
  });

  it('finds both by process in their namespace and nothing in the neighbour', async () => {
    const idA = await netnsIdentity(`/run/netns/${nsA}`);
    const idB = await netnsIdentity(`/run/netns/${nsB}`);
    const scan = await scanManagerProcesses();
    const inA = processesIn(scan, idA);
    expect(inA.map((p) => [p.pid, p.manager]).sort()).toEqual([[md!.pid, 'mptcpd'], [nm!.pid, 'NetworkManager']].sort());
    expect(inA.every((p) => p.netns.dev === idA.dev)).toBe(true);
    expect(processesIn(scan, idB)).toEqual([]);
  });

  it('names pid, argv, loaded plugins and the config each one reads itself, and blocks under fail', async () => {
    const idA = await netnsIdentity(`/run/netns/${nsA}`);
    // The tool's own etc is empty here: whatever evidence names a file got it from the manager's root.
    const roots = { etcRoot: emptyEtc, runRoot: emptyEtc, usrLibRoot: emptyEtc };
    const ev = await detectConflicts({ target: idA, isHost: false }, roots);

    const mProc = ev.find((e) => e.manager === 'mptcpd' && e.kind === 'process')!;
    expect(mProc).toMatchObject({ pid: md!.pid, active: true, managesEndpoints: true, argv: md!.argv.slice(1) });
    // mptcpd loads its plugins from its plugin directory: what its memory maps show.
    expect(mProc.plugins).toEqual(['addr_adv', 'sspi']);
    expect(mProc.detail).toContain('plugins loaded: addr_adv,sspi');
    const mArgv = ev.find((e) => e.manager === 'mptcpd' && e.kind === 'config' && e.argv)!;
    expect(mArgv.detail).toContain(`command line of pid ${md!.pid}: --path-manager=addr_adv --addr-flags=subflow`);
    // ...and the file it reads besides, through its own root.
    expect(mArgv.detail).toContain(`overrides /proc/${md!.pid}/root/etc/mptcpd/mptcpd.conf`);

    // NetworkManager runs in its own mount namespace: its profile is not in the tool's /etc at all.
    expect(existsSync('/etc/NetworkManager/system-connections/x15a0.nmconnection')).toBe(false);
    const profile = ev.find((e) => e.manager === 'NetworkManager' && e.kind === 'config' && e.detail.includes('x15a0'))!;
    expect(profile).toMatchObject({
      pid: nm!.pid,
      active: true,
      file: `/proc/${nm!.pid}/root/etc/NetworkManager/system-connections/x15a0.nmconnection`,
      line: 5,
      managesEndpoints: true,
    });
    expect(profile.detail).toContain('mptcp-flags=0x22 -> enabled,subflow (0x22)');

    const d = decide('fail', ev, undefined, { netns: nsA });
    expect(d.block).toBe(true);
    expect(d.message).toContain(`NetworkManager (pid ${nm!.pid})`);
    expect(d.message).toContain(`mptcpd (pid ${md!.pid})`);
    expect(d.message).toContain('systemctl disable --now mptcpd');

    const evB = await detectConflicts({ target: await netnsIdentity(`/run/netns/${nsB}`), isHost: false }, roots);
    expect(evB).toEqual([]);
  });
});
