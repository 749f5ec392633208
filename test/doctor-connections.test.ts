// doctor on real MPTCP connections between two namespaces (python peer), with
// `ss` and `ip` as the oracles:
// - joins that hang in SYN-SENT (their SYN-ACK is blackholed in the server
//   namespace) are reported as joins in flight, not as subflows;
// - ADD_ADDRs received and ignored (add_addr_accepted 0) are an error, and the
//   fix doctor prints, run as printed, gives the next connection its subflows;
// - under the userspace path manager no "limits reached: subflows (0/0)".
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { main } from '../src/cli/main.js';
import type { DoctorJson } from '../src/doctor/report.js';
import { captureIO } from './helpers/io.js';
import { killPeers, mptcpServer, startMptcpClient, waitFor, type Peer } from './helpers/mptcp-peer.js';
import { ip, ipLimits, namespacesFor, setNsSysctl, sh, veth } from './helpers/netns.js';

const procs: ChildProcess[] = [];
const dir = mkdtempSync(join(tmpdir(), 'mr-doctor-conn-'));

// Peers first: a namespace is deleted only once nothing runs in it.
const ns = namespacesFor('x16', () => killPeers(procs));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Server s and client c joined by three links: v 192.0.2.0/24, w 198.51.100.0/24, x 203.0.113.0/24 (.1 server, .2 client). */
function pair(): { s: string; c: string } {
  const s = ns();
  const c = ns();
  for (const [l, net] of [['v', '192.0.2'], ['w', '198.51.100'], ['x', '203.0.113']] as const) {
    veth(s, `${l}0`, c, `${l}1`);
    ip('-n', s, 'addr', 'add', `${net}.1/24`, 'dev', `${l}0`);
    ip('-n', c, 'addr', 'add', `${net}.2/24`, 'dev', `${l}1`);
    ip('-n', s, 'link', 'set', `${l}0`, 'up');
    ip('-n', c, 'link', 'set', `${l}1`, 'up');
  }
  return { s, c };
}

async function doctor(...args: string[]): Promise<{ code: number; json: DoctorJson }> {
  const t = captureIO({ env: { NODE_NAME: 'x16-node' }, cwd: dir });
  const code = await main(['doctor', '-o', 'json', ...args], t.io);
  return { code, json: JSON.parse(t.out()) as DoctorJson };
}

const findings = (json: DoctorJson, netns: string) => json.namespaces.find((x) => x.netns === netns)!.findings;

/** `ss -HMin` of the namespace: subflows:N of the MPTCP connection from local port `port` (0 when absent). */
function ssSubflows(n: string, port: number): number | undefined {
  const blocks = sh('ip', ['netns', 'exec', n, 'ss', '-HMin']).split(/\n(?=\S)/);
  const b = blocks.find((x) => new RegExp(`:${port}\\s`).test(x.split('\n')[0]!));
  if (!b) return undefined;
  return Number(/subflows:(\d+)/.exec(b)?.[1] ?? 0);
}

/** Local ports of the client's MPTCP connections to port 8080. */
function clientPorts(n: string): number[] {
  return sh('ip', ['netns', 'exec', n, 'ss', '-HMn'])
    .split('\n')
    .map((l) => /:(\d+)\s+\S+:8080\b/.exec(l)?.[1])
    .filter((p): p is string => p !== undefined)
    .map(Number);
}

async function connect(c: string, to: string): Promise<{ peer: Peer; port: number }> {
  const known = new Set(clientPorts(c));
  const peer = startMptcpClient(c, to, 8080, procs);
  await waitFor('the client to connect', () => (peer.out().includes('connected') ? true : undefined));
  const port = await waitFor('the new connection in ss', () => clientPorts(c).find((p) => !known.has(p)));
  return { peer, port };
}

describe('doctor on real connections', () => {
  it('joins hanging in SYN-SENT are joins in flight, not subflows (ss -tn state syn-sent as the oracle)', async () => {
    const { s, c } = pair();
    ip('-n', c, 'mptcp', 'endpoint', 'add', '198.51.100.2', 'dev', 'w1', 'subflow');
    ip('-n', c, 'mptcp', 'endpoint', 'add', '203.0.113.2', 'dev', 'x1', 'subflow');
    ip('-n', c, 'mptcp', 'limits', 'set', 'subflows', '2', 'add_addr_accepted', '0');
    ip('-n', s, 'mptcp', 'limits', 'set', 'subflows', '2', 'add_addr_accepted', '0');
    // The server gets the joins' SYNs but its SYN-ACKs go nowhere.
    ip('-n', s, 'route', 'add', 'blackhole', '198.51.100.2/32');
    ip('-n', s, 'route', 'add', 'blackhole', '203.0.113.2/32');
    const server = await mptcpServer(s, '192.0.2.1', 8080, 1, procs);
    const { peer, port } = await connect(c, '192.0.2.1');
    const synSent = () => sh('ip', ['netns', 'exec', c, 'ss', '-tnH', 'state', 'syn-sent']).trim().split('\n').filter(Boolean).length;
    await waitFor('both joins in SYN-SENT', () => (synSent() === 2 ? true : undefined));
    // The kernel's own counter includes them: ss -Mi says 2, and that is what doctor must not repeat.
    expect(ssSubflows(c, port)).toBe(2);

    const r = await doctor('--netns', c);
    const conn = findings(r.json, c).find((f) => f.subject.includes(`:${port} ->`))!;
    expect(conn.code).toBe('MPTCP014');
    expect(conn.severity).toBe('warning');
    expect(conn.message).toContain('0 additional subflow(s) established, 2 join(s) in flight (SYN-SENT) where the endpoints and limits allow 2');
    expect(conn.message).toContain('subflows (2/2, 2 of them joins in flight)');
    expect(conn.evidence).toContain('TCP subflows: 1 established, 2 in SYN-SENT, 0 in other states');
    for (const p of [peer, server]) p.stop();
  });

  it('ADD_ADDRs ignored for add_addr_accepted 0 are an error; the printed fix, run as printed, gives the next connection both subflows', async () => {
    const { s, c } = pair();
    ip('-n', s, 'mptcp', 'endpoint', 'add', '198.51.100.1', 'dev', 'w0', 'signal');
    ip('-n', s, 'mptcp', 'limits', 'set', 'subflows', '2', 'add_addr_accepted', '0');
    ip('-n', c, 'mptcp', 'endpoint', 'add', '203.0.113.2', 'dev', 'x1', 'subflow');
    ip('-n', c, 'mptcp', 'limits', 'set', 'subflows', '1', 'add_addr_accepted', '0');
    setNsSysctl(c, 'net.ipv4.conf.all.rp_filter', '0');
    // Bound to every address: joins go to the announced one too.
    const server = await mptcpServer(s, '0.0.0.0', 8080, 2, procs);
    const first = await connect(c, '192.0.2.1');
    await waitFor('the endpoint subflow', () => (ssSubflows(c, first.port) === 1 ? true : undefined));
    await waitFor('the ADD_ADDR to arrive', () => (/MPTcpExtAddAddr\s+[1-9]/.test(sh('ip', ['netns', 'exec', c, 'nstat', '-az', 'MPTcpExtAddAddr'])) ? true : undefined));

    const r = await doctor('--netns', c);
    expect(r.code).toBe(1);
    const ignored = findings(r.json, c).find((f) => f.code === 'MPTCP024')!;
    expect(ignored.severity).toBe('error');
    expect(ignored.message).toContain('ADD_ADDR(s) and acted on none');
    const cmd = /or run `([^`]+)`/.exec(ignored.fix!)![1]!;
    expect(cmd).toBe(`ip -n ${c} mptcp limits set add_addr_accepted 1 subflows 2`);
    sh('sh', ['-c', cmd]);
    expect(ipLimits(c)).toEqual({ subflows: 2, addAddrAccepted: 1 });

    const second = await connect(c, '192.0.2.1');
    // One subflow from the endpoint, one to the announced address: 2 were needed, not 1.
    await waitFor('both subflows of the new connection', () => (ssSubflows(c, second.port) === 2 ? true : undefined));
    const after = await doctor('--netns', c);
    const conn2 = findings(after.json, c).find((f) => f.subject.includes(`:${second.port} ->`))!;
    expect(conn2.message).toMatch(/^2 additional subflow\(s\) established, \d+ ADD_ADDR signalled, 1 accepted/);

    // With accepted ADD_ADDRs the subflows limit must cover them too.
    ip('-n', c, 'mptcp', 'limits', 'set', 'subflows', '1');
    const low = findings((await doctor('--netns', c)).json, c).find((f) => f.code === 'MPTCP003')!;
    expect(low.fix).toContain(`ip -n ${c} mptcp limits set subflows 2`);
    for (const p of [first.peer, second.peer, server]) p.stop();
  });

  it('under the userspace path manager a connection is not "limits reached: subflows (0/0)" although the config sets 2', async () => {
    const { s, c } = pair();
    setNsSysctl(c, 'net.mptcp.path_manager', 'userspace');
    ip('-n', c, 'mptcp', 'limits', 'set', 'subflows', '2');
    const cfg = join(dir, 'userspace.yaml');
    writeFileSync(cfg, `version: 1\nnamespaces:\n  - netns: ${c}\n    mptcp: { pathManager: userspace }\n    limits: { subflows: 2 }\n`);
    const server = await mptcpServer(s, '192.0.2.1', 8080, 1, procs);
    const { peer, port } = await connect(c, '192.0.2.1');
    const r = await doctor('--netns', c, '-f', cfg);
    const conn = findings(r.json, c).find((f) => f.subject.includes(`:${port} ->`))!;
    expect(conn.code).toBe('MPTCP013');
    expect(conn.message).not.toContain('limits reached');
    expect(conn.message).toContain('the userspace path manager decides the subflows');
    for (const p of [peer, server]) p.stop();
  });
});
