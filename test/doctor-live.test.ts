// `doctor` on the real kernel, through main(argv, io): each rule triggered in a
// namespace built with `ip` for it and absent on a healthy one; the connection
// counters on a real MPTCP connection between two namespaces (python peer), with
// `ss -Mi` as the oracle. doctor only reads: every test compares the namespace's
// endpoints, limits and sysctls before and after.
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { main } from '../src/cli/main.js';
import { readMptcpConnections, type MptcpConnection } from '../src/kernel/sockdiag.js';
import type { DoctorJson } from '../src/doctor/report.js';
import { createNetns, deleteNetns, ip, nsSysctl, requireRoot, setNsSysctl, sh, veth } from './helpers/netns.js';
import { captureIO } from './helpers/io.js';
import { killPeers, mptcpServer, startMptcpClient, waitFor } from './helpers/mptcp-peer.js';

requireRoot();

const made: string[] = [];
const procs: ChildProcess[] = [];
const dir = mkdtempSync(join(tmpdir(), 'mr-doctor-'));

afterAll(() => {
  killPeers(procs);
  for (const n of made) deleteNetns(n);
  rmSync(dir, { recursive: true, force: true });
});

function ns(prefix: string): string {
  const n = createNetns(prefix);
  made.push(n);
  return n;
}

const io = () => captureIO({ env: { NODE_NAME: 'doc-node' }, cwd: dir });

async function doctorJson(...args: string[]): Promise<{ code: number; json: DoctorJson; err: string }> {
  const t = io();
  const code = await main(['doctor', '-o', 'json', ...args], t.io);
  return { code, json: JSON.parse(t.out()) as DoctorJson, err: t.err() };
}

function findingsOf(json: DoctorJson, netns: string) {
  const n = json.namespaces.find((x) => x.netns === netns);
  if (!n) throw new Error(`no report for ${netns}: ${JSON.stringify(json)}`);
  return n.findings;
}

/** What doctor must never change: endpoints, limits, net.mptcp.* and every rp_filter. */
function snapshot(n: string): string {
  const sysctls = sh('ip', ['netns', 'exec', n, 'sysctl', '-a', '--pattern', '^net\\.mptcp\\.|rp_filter$']).split('\n').sort();
  return [ip('-n', n, '-j', 'mptcp', 'endpoint', 'show'), ip('-n', n, 'mptcp', 'limits'), sysctls.join('\n')].join('\n--\n');
}

/** An interface of namespace `n`: one end of a veth pair kept inside it (this kernel has no dummy driver). */
function dummy(n: string, name: string, cidr: string | undefined, up = true): void {
  veth(n, name, undefined, `${name}p`);
  if (cidr) ip('-n', n, 'addr', 'add', cidr, 'dev', name);
  if (up) {
    ip('-n', n, 'link', 'set', `${name}p`, 'up');
    ip('-n', n, 'link', 'set', name, 'up');
  }
}

/** A process whose comm is `comm`, running in namespace `n` (a renamed copy of sleep). */
function fakeManager(n: string, comm: string): ChildProcess {
  const bin = join(dir, comm);
  copyFileSync('/usr/bin/sleep', bin);
  // `ip netns exec` execs the program: the child's pid is the manager's pid.
  const p = spawn('ip', ['netns', 'exec', n, bin, '120'], { stdio: 'ignore' });
  procs.push(p);
  return p;
}

function commOf(pid: number): string | undefined {
  try {
    return sh('cat', [`/proc/${pid}/comm`]).trim();
  } catch {
    return undefined;
  }
}

describe('doctor on live namespaces', () => {
  it('finds nothing on a healthy namespace and exits 0, changing nothing', async () => {
    const n = ns('dok');
    dummy(n, 'd0', '192.0.2.1/24');
    ip('-n', n, 'route', 'add', 'default', 'dev', 'd0');
    ip('-n', n, 'mptcp', 'endpoint', 'add', '192.0.2.1', 'dev', 'd0', 'subflow');
    ip('-n', n, 'mptcp', 'limits', 'set', 'subflows', '2', 'add_addr_accepted', '1');
    setNsSysctl(n, 'net.ipv4.conf.d0.rp_filter', '2');
    const before = snapshot(n);
    const r = await doctorJson('--netns', n);
    expect(r.code).toBe(0);
    expect(r.json.node).toBe('doc-node');
    expect(r.json.namespaces).toEqual([{ netns: n, findings: [], capabilities: expect.objectContaining({ release: expect.any(String) }) }]);
    expect(r.json.summary).toEqual({ errors: 0, warnings: 0, infos: 0 });
    expect(snapshot(n)).toBe(before);
  });

  it('rules 1, 2, 3, 7: strict rp_filter, endpoint without dev, limits, misplaced endpoints; exit 1; text output', async () => {
    const n = ns('dbad');
    dummy(n, 'd0', '192.0.2.1/24');
    dummy(n, 'd1', '198.51.100.1/24', false);
    dummy(n, 'd2', undefined);
    ip('-n', n, 'route', 'add', 'default', 'dev', 'd0');
    setNsSysctl(n, 'net.ipv4.conf.d0.rp_filter', '1');
    ip('-n', n, 'mptcp', 'endpoint', 'add', '192.0.2.1', 'subflow');
    ip('-n', n, 'mptcp', 'endpoint', 'add', '203.0.113.5', 'dev', 'd0', 'subflow');
    ip('-n', n, 'mptcp', 'endpoint', 'add', '198.51.100.1', 'dev', 'd1', 'subflow');
    ip('-n', n, 'mptcp', 'endpoint', 'add', '192.0.2.1', 'port', '10000', 'dev', 'd2', 'signal');
    ip('-n', n, 'link', 'del', 'd2');
    ip('-n', n, 'mptcp', 'limits', 'set', 'subflows', '1', 'add_addr_accepted', '0');
    const before = snapshot(n);

    const r = await doctorJson('--netns', n);
    expect(r.code).toBe(1);
    const fs = findingsOf(r.json, n);
    expect(fs.map((f) => [f.severity, f.code, f.subject])).toEqual([
      ['error', 'MPTCP001', 'd0'],
      ['warning', 'MPTCP002', 'endpoint 192.0.2.1'],
      ['warning', 'MPTCP003', 'limits.subflows'],
      ['warning', 'MPTCP011', 'endpoint 203.0.113.5'],
      ['warning', 'MPTCP012', 'endpoint 192.0.2.1:10000'],
      ['warning', 'MPTCP012', 'endpoint 198.51.100.1'],
      ['info', 'MPTCP004', 'limits.add_addr_accepted'],
    ]);
    const rp = fs[0]!;
    expect(rp.evidence).toEqual(
      expect.arrayContaining(['net.ipv4.conf.d0.rp_filter = 1 (strict)', 'd0 carries the IPv4 default route']),
    );
    // The fix names the namespace: pasted, it changes this namespace and not the host.
    expect(rp.fix).toBe(`declare \`rpFilter: { d0: loose }\` in the config, or run \`ip netns exec ${n} sysctl -w net.ipv4.conf.d0.rp_filter=2\``);
    const limitsFix = fs.find((f) => f.code === 'MPTCP003')!.fix!;
    expect(limitsFix).toContain(`\`ip -n ${n} mptcp limits set subflows 3\``);
    expect(fs.find((f) => f.code === 'MPTCP002')!.fix).toContain('dev d0 subflow');
    expect(fs.find((f) => f.code === 'MPTCP003')!.message).toContain('3 subflow endpoint(s) need 3 additional subflow(s) but limits.subflows is 1');
    expect(r.json.summary).toEqual({ errors: 1, warnings: 5, infos: 1 });

    const t = io();
    expect(await main(['doctor', '--netns', n], t.io)).toBe(1);
    expect(t.out()).toContain(`netns ${n}: 1 error, 5 warnings, 1 info\n  ERROR   MPTCP001 d0: strict reverse path filtering`);
    expect(t.out()).toMatch(/\n {10}- net\.ipv4\.conf\.d0\.rp_filter = 1 \(strict\)\n/);
    expect(t.out()).toContain('\n          fix: declare `rpFilter: { d0: loose }`');
    expect(snapshot(n)).toBe(before);

    // The fix the finding gives, run exactly as printed, makes it go away, and
    // changes nothing in the host namespace.
    const hostRp = sh('sysctl', ['-a', '--pattern', 'rp_filter$']);
    sh('sh', ['-c', /or run `([^`]+)`/.exec(rp.fix!)![1]!]);
    expect(nsSysctl(n, 'net.ipv4.conf.d0.rp_filter')).toBe('2');
    expect(sh('sysctl', ['-a', '--pattern', 'rp_filter$'])).toBe(hostRp);
    expect(findingsOf((await doctorJson('--netns', n)).json, n).map((f) => f.code)).not.toContain('MPTCP001');
  });

  it('rule 5: MPTCP disabled is an error; the userspace path manager with endpoints and without mptcpd', async () => {
    const off = ns('doff');
    setNsSysctl(off, 'net.mptcp.enabled', '0');
    const us = ns('dus');
    dummy(us, 'd0', '192.0.2.1/24');
    ip('-n', us, 'mptcp', 'endpoint', 'add', '192.0.2.1', 'dev', 'd0', 'signal');
    setNsSysctl(us, 'net.mptcp.path_manager', 'userspace');
    const before = [snapshot(off), snapshot(us)];

    const r = await doctorJson('--netns', off);
    expect(r.code).toBe(1);
    expect(findingsOf(r.json, off).map((f) => [f.severity, f.code])).toEqual([['error', 'MPTCP006']]);
    const u = await doctorJson('--netns', us);
    expect(u.code).toBe(0);
    expect(findingsOf(u.json, us).map((f) => [f.severity, f.code])).toEqual([
      ['warning', 'MPTCP007'],
      ['warning', 'MPTCP008'],
    ]);

    // A running mptcpd in that namespace (found through /proc) satisfies the daemon check.
    const daemon = fakeManager(us, 'mptcpd');
    await waitFor('mptcpd to start', () => (daemon.pid && commOf(daemon.pid) === 'mptcpd' ? true : undefined));
    const w = await doctorJson('--netns', us);
    expect(findingsOf(w.json, us).map((f) => f.code)).toEqual(['MPTCP007', 'MPTCP026']);
    daemon.kill('SIGKILL');
    expect([snapshot(off), snapshot(us)]).toEqual(before);
  });

  it('rule 6: NetworkManager and mptcpd in one namespace is an error; next to a config that manages it, errors under conflicts: fail', async () => {
    const n = ns('dmgr');
    const emptyEtc = mkdtempSync(join(dir, 'etc-'));
    const nmProc = fakeManager(n, 'NetworkManager');
    const mdProc = fakeManager(n, 'mptcpd');
    for (const [p, c] of [[nmProc, 'NetworkManager'], [mdProc, 'mptcpd']] as const) {
      await waitFor(`${c} to start`, () => (p.pid && commOf(p.pid) === c ? true : undefined));
    }
    const r = await doctorJson('--netns', n, '--etc-root', emptyEtc);
    expect(r.code).toBe(1);
    const fs = findingsOf(r.json, n);
    expect(fs.map((f) => [f.severity, f.code])).toEqual([['error', 'MPTCP009']]);
    expect(fs[0]!.evidence.join('\n')).toContain(`pid ${nmProc.pid}`);
    expect(fs[0]!.evidence.join('\n')).toContain(`pid ${mdProc.pid}`);

    const cfg = join(dir, 'mgr.yaml');
    writeFileSync(cfg, `version: 1\nnamespaces:\n  - netns: ${n}\n    limits: { subflows: 2 }\n    endpoints: []\n`);
    const withCfg = await doctorJson('-f', cfg, '--netns', n, '--etc-root', emptyEtc);
    expect(findingsOf(withCfg.json, n).map((f) => [f.severity, f.code, f.subject])).toEqual([
      ['error', 'MPTCP009', 'NetworkManager, mptcpd'],
      // conflicts: fail (the default): apply refuses and exits 1, so these are errors.
      ['error', 'MPTCP010', 'mptcpd'],
      ['error', 'MPTCP010', 'NetworkManager'],
    ]);
    nmProc.kill('SIGKILL');
    mdProc.kill('SIGKILL');
  });

  it('rule 9: with -f, the static checks of the resolved config and the comparison with live', async () => {
    const n = ns('dcfg');
    dummy(n, 'd0', '192.0.2.1/24');
    setNsSysctl(n, 'net.ipv4.conf.d0.rp_filter', '2');
    const cfg = join(dir, 'cfg.yaml');
    writeFileSync(
      cfg,
      [
        'version: 1',
        'namespaces:',
        `  - netns: ${n}`,
        '    limits: { subflows: 1, addAddrAccepted: 1 }',
        '    rpFilter: { d0: strict }',
        '    endpoints:',
        '      - { address: 192.0.2.1, dev: d0, flags: [backup] }',
        '      - { address: 192.0.2.2, dev: d0, flags: [subflow] }',
        '      - { address: 192.0.2.3, dev: wwan9, flags: [subflow] }',
        `  - netns: ${n}-gone`,
        '    limits: { subflows: 2 }',
        '',
      ].join('\n'),
    );
    const before = snapshot(n);
    const r = await doctorJson('-f', cfg, '--netns', `${n}*`);
    expect(r.err).toBe('');
    expect(findingsOf(r.json, n).map((f) => [f.severity, f.code, f.subject])).toEqual([
      ['warning', 'MPTCP017', 'config endpoint 192.0.2.1'],
      ['warning', 'MPTCP018', 'config limits.subflows'],
      ['warning', 'MPTCP019', 'config rpFilter.d0'],
      ['warning', 'MPTCP020', 'config endpoint 192.0.2.3'],
      ['info', 'MPTCP019', 'config rpFilter.wwan9'],
      ['info', 'MPTCP021', 'config endpoints'],
    ]);
    expect(findingsOf(r.json, `${n}-gone`).map((f) => f.code)).toEqual(['MPTCP022']);
    expect(r.code).toBe(0);
    expect(snapshot(n)).toBe(before);
  });

  it('an invalid config or a --netns matching nothing is a user error: exit 1, a message, no stack trace', async () => {
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'version: 1\nnamespaces:\n  - netns: x\n    limits: { subflows: 9 }\n');
    const t = io();
    expect(await main(['doctor', '-f', bad], t.io)).toBe(1);
    expect(t.err()).toMatch(/bad\.yaml:4/);
    expect(t.err()).not.toMatch(/\n\s+at /);
    const u = io();
    expect(await main(['doctor', '--netns', 'mrdoc-none-*'], u.io)).toBe(1);
    expect(u.err()).toContain('no namespace matches --netns "mrdoc-none-*"');
  });

  it('rule 8: per-connection counters over sock_diag match ss -Mi; a connection below its endpoints and limits is reported', async () => {
    const s = ns('dsrv');
    const c = ns('dcli');
    veth(s, 'v0', c, 'v1');
    veth(s, 'w0', c, 'w1');
    ip('-n', s, 'addr', 'add', '192.0.2.1/24', 'dev', 'v0');
    ip('-n', c, 'addr', 'add', '192.0.2.2/24', 'dev', 'v1');
    ip('-n', s, 'addr', 'add', '198.51.100.1/24', 'dev', 'w0');
    ip('-n', c, 'addr', 'add', '198.51.100.2/24', 'dev', 'w1');
    for (const [n, l] of [[s, 'v0'], [s, 'w0'], [c, 'v1'], [c, 'w1']] as const) ip('-n', n, 'link', 'set', l, 'up');
    ip('-n', c, 'mptcp', 'endpoint', 'add', '198.51.100.2', 'dev', 'w1', 'subflow');
    ip('-n', c, 'mptcp', 'limits', 'set', 'subflows', '2', 'add_addr_accepted', '1');
    ip('-n', s, 'mptcp', 'limits', 'set', 'subflows', '2', 'add_addr_accepted', '0');

    const server = await mptcpServer(s, '192.0.2.1', 8080, 2, procs);
    const client = () => startMptcpClient(c, '192.0.2.1', 8080, procs);
    const byPort = (port: number) => (list: MptcpConnection[]) => list.find((x) => x.local.port === port);
    const clientPort = async (): Promise<number> => {
      const known = new Set(readMptcpConnections(c).map((x) => x.local.port));
      return waitFor('a new client connection', () => readMptcpConnections(c).find((x) => !known.has(x.local.port))?.local.port);
    };

    // First connection: the server accepts the join, so the subflow from w1 is established.
    const c1 = client();
    const p1 = await clientPort();
    await waitFor('the second subflow', () => (byPort(p1)(readMptcpConnections(c))?.info?.subflows === 1 ? true : undefined));
    // Second connection: the server's limit is now 0, so it refuses the join.
    ip('-n', s, 'mptcp', 'limits', 'set', 'subflows', '0');
    const c2 = client();
    const p2 = await clientPort();
    await waitFor('the refused join', () => {
      const i = byPort(p2)(readMptcpConnections(c))?.info;
      return i && i.localAddrUsed === 1 && i.subflows === 0 ? true : undefined;
    });
    const before = [snapshot(s), snapshot(c)];

    const rc = await doctorJson('--netns', c);
    const rs = await doctorJson('--netns', s);
    // A connection whose join failed (nothing in flight) is an error: exit 1.
    expect(rc.code).toBe(1);
    const cf = findingsOf(rc.json, c).filter((f) => f.subject.startsWith('connection'));
    const first = cf.find((f) => f.subject.includes(`:${p1} ->`))!;
    const second = cf.find((f) => f.subject.includes(`:${p2} ->`))!;
    expect(first.code).toBe('MPTCP013');
    expect(first.message).toContain('1 additional subflow(s)');
    expect(first.message).toContain('limits reached: local_addr (1/1)');
    expect(second.code).toBe('MPTCP014');
    expect(second.message).toContain('0 additional subflow(s) established where the endpoints and limits allow 1');
    expect(second.severity).toBe('error');
    expect(second.evidence).toContain('subflows 0 (additional; 1 in total) subflows_max 2');
    expect(second.evidence).toContain('local_addr_used 1 local_addr_max 1');
    expect(findingsOf(rs.json, s).filter((f) => f.subject.startsWith('connection')).map((f) => f.code)).toEqual(['MPTCP013', 'MPTCP013']);

    // Oracle: ss -Mi shows the same connections with the same tokens and subflow counts.
    const ss = sh('ip', ['netns', 'exec', c, 'ss', '-HMin']);
    for (const [f, subflows] of [[first, 1], [second, 0]] as const) {
      const token = /token (\w+)/.exec(f.evidence[0]!)![1]!;
      const block = ss.split(/\n(?=\S)/).find((b) => new RegExp(`token:0*${parseInt(token, 16).toString(16)}\\b`).test(b));
      expect(block, `ss shows token ${token}`).toBeDefined();
      const m = /subflows:(\d+)/.exec(block!);
      expect(m ? Number(m[1]) : 0).toBe(subflows);
    }

    expect([snapshot(s), snapshot(c)]).toEqual(before);
    for (const p of [c1, c2, server]) p.stop();
    await waitFor('the peers to exit', () => ([c1, c2, server].every((p) => p.proc.exitCode !== null) ? true : undefined));
    expect([c1, c2, server].map((p) => p.proc.exitCode)).toEqual([0, 0, 0]);
  });
});
