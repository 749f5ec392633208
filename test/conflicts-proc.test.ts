// Which managers run in which namespace: a fake /proc tree (ns/net links made as
// symlinks to "net:[INODE]" text), then real processes named NetworkManager and
// mptcpd started inside a throwaway namespace, found through the real /proc.
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
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
import { createNetns, deleteNetns, requireRoot } from './helpers/netns.js';

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
      ['mptcpd', 'path-manager', false],
    ]);
    const d = decide('fail', mNs, undefined, { netns: 'cni-2', scope: { endpoints: true, limits: true, rpFilter: false } });
    expect(d.block).toBe(true);
    expect(d.conflicts.map((c) => c.kind)).toEqual(['path-manager']);
    expect(d.message).toMatch(/mptcpd \(pid 200\)/);
  });
});

describe('real processes in real namespaces', () => {
  let nsA = '';
  let nsB = '';
  const children: ChildProcess[] = [];
  let bin = '';

  beforeAll(() => {
    requireRoot();
    nsA = createNetns('cf');
    nsB = createNetns('cf');
    bin = mkdtempSync(join(tmpdir(), 'mr-fakemgr-'));
    tmp.push(bin);
    for (const name of ['NetworkManager', 'mptcpd']) {
      copyFileSync('/bin/sleep', join(bin, name));
      const c = spawn('ip', ['netns', 'exec', nsA, join(bin, name), '60'], { stdio: 'ignore' });
      children.push(c);
    }
  });

  afterAll(() => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    if (nsA) deleteNetns(nsA);
    if (nsB) deleteNetns(nsB);
  });

  async function waitForComm(pid: number, comm: string): Promise<void> {
    // `ip netns exec` enters the namespace, then execs the program: wait for the exec.
    for (let i = 0; i < 200; i++) {
      try {
        if (readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === comm) return;
      } catch {
        // not there yet
      }
      await new Promise((r) => setTimeout(r, 25));
    }
    throw new Error(`process ${pid} never became ${comm}`);
  }

  it('finds NetworkManager and mptcpd in their namespace and nothing in the neighbour', async () => {
    const [nm, md] = children;
    await waitForComm(nm!.pid!, 'NetworkManager');
    await waitForComm(md!.pid!, 'mptcpd');
    const idA = await netnsIdentity(`/run/netns/${nsA}`);
    const idB = await netnsIdentity(`/run/netns/${nsB}`);

    const scan = await scanManagerProcesses();
    const inA = processesIn(scan, idA);
    expect(inA.map((p) => [p.pid, p.manager])).toEqual(
      [
        [nm!.pid, 'NetworkManager'],
        [md!.pid, 'mptcpd'],
      ].sort((a, b) => (a[0] as number) - (b[0] as number)),
    );
    expect(inA.every((p) => p.netns.dev === idA.dev)).toBe(true);
    expect(processesIn(scan, idB)).toEqual([]);

    // host configuration is not consulted for a named namespace's blocking decision
    const empty = mkdtempSync(join(tmpdir(), 'mr-emptyetc-'));
    tmp.push(empty);
    const roots = { etcRoot: empty, runRoot: empty, usrLibRoot: empty };
    const evA = await detectConflicts({ target: idA, isHost: false }, roots);
    const dA = decide('fail', evA, undefined, { netns: nsA });
    expect(dA.block).toBe(true);
    expect(dA.message).toContain(`NetworkManager (pid ${nm!.pid})`);
    expect(dA.message).toContain(`mptcpd (pid ${md!.pid})`);
    expect(dA.message).toContain('systemctl disable --now mptcpd');

    const evB = await detectConflicts({ target: idB, isHost: false }, roots);
    expect(evB).toEqual([]);
    expect(decide('fail', evB, undefined, { netns: nsB })).toMatchObject({ block: false, conflicts: [] });
  });
});
