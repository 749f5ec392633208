// Endpoints as the kernel holds them, on the real kernel through main(argv, io),
// with `ip -j mptcp endpoint show` and `ss` as the oracles:
// - the ids of the MPTCP selftests' "set ids" and "wrap-around ids" cases, on a
//   fresh namespace and on one whose hidden id counter has moved on;
// - an implicit endpoint made by a real connection is never deleted: another id
//   is refused at plan time, a plain declaration takes it over in place and the
//   connection keeps its subflow;
// - a declared endpoint whose dev is missing is pending work (exit 2), not "no changes".
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { main } from '../src/cli/main.js';
import { captureIO } from './helpers/io.js';
import { killPeers, mptcpServer, startMptcpClient, waitFor } from './helpers/mptcp-peer.js';
import { ip, ipEndpoints, namespacesFor, sh, veth } from './helpers/netns.js';

const procs: ChildProcess[] = [];
const dir = mkdtempSync(join(tmpdir(), 'mr-endpoints-'));

// Peers first: a namespace is deleted only once nothing runs in it.
const ns = namespacesFor('x16', () => killPeers(procs));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let fileNo = 0;
function config(netns: string, body: string): string {
  const p = join(dir, `c${fileNo++}.yaml`);
  writeFileSync(p, `version: 1\nnamespaces:\n  - netns: ${netns}\n${body}`);
  return p;
}

async function cli(...argv: string[]) {
  const t = captureIO({ env: { NODE_NAME: 'x16-node' }, cwd: dir });
  const code = await main(argv, t.io);
  return { code, out: t.out(), err: t.err() };
}

/** address -> id, as ip(8) shows them. */
const idsOf = (n: string) => Object.fromEntries(ipEndpoints(n).map((e) => [e.address, e.id]));

const SET_IDS = `    endpoints:
      - { address: 192.0.2.1, flags: [signal] }
      - { address: 192.0.2.2, flags: [signal] }
      - { address: 192.0.2.3, id: 100, flags: [signal] }
      - { address: 192.0.2.4, flags: [signal] }
      - { address: 192.0.2.5, id: 254, flags: [signal] }
      - { address: 192.0.2.6, flags: [signal] }
      - { address: 192.0.2.7, flags: [signal] }
      - { address: 192.0.2.8, flags: [signal] }
`;
const WRAP_IDS = `    endpoints:
      - { address: 192.0.2.1, flags: [signal] }
      - { address: 192.0.2.2, id: 254, flags: [signal] }
      - { address: 192.0.2.3, flags: [signal] }
      - { address: 192.0.2.4, flags: [signal] }
      - { address: 192.0.2.5, id: 253, flags: [signal] }
      - { address: 192.0.2.6, flags: [signal] }
      - { address: 192.0.2.7, flags: [signal] }
      - { address: 192.0.2.8, flags: [signal] }
`;

/** What `ip mptcp endpoint add` lines in file order give on a fresh namespace: the reference. */
function ipLinesIds(lines: string[][]): Record<string, number> {
  const n = ns();
  for (const l of lines) ip('-n', n, 'mptcp', 'endpoint', 'add', ...l);
  return idsOf(n);
}

describe('endpoint ids on the real kernel', () => {
  it('"set ids": apply gives the ids ip mptcp endpoint add lines give, also where the kernel counter moved on', async () => {
    const want = ipLinesIds([
      ['192.0.2.1', 'signal'], ['192.0.2.2', 'signal'], ['192.0.2.3', 'id', '100', 'signal'], ['192.0.2.4', 'signal'],
      ['192.0.2.5', 'id', '254', 'signal'], ['192.0.2.6', 'signal'], ['192.0.2.7', 'signal'], ['192.0.2.8', 'signal'],
    ]);
    // The selftest's expectation, checked on the reference too.
    expect(want).toEqual({
      '192.0.2.1': 1, '192.0.2.2': 2, '192.0.2.7': 3, '192.0.2.8': 4, '192.0.2.3': 100, '192.0.2.4': 101, '192.0.2.5': 254, '192.0.2.6': 255,
    });
    const fresh = ns();
    const r = await cli('apply', '-f', config(fresh, SET_IDS));
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(idsOf(fresh)).toEqual(want);

    // Another node of the fleet, where endpoints came and went: its hidden counter
    // stands at 8, so a plain ADD gets id 8 there, not 1.
    const used = ns();
    for (let i = 1; i <= 8; i++) ip('-n', used, 'mptcp', 'endpoint', 'add', `203.0.113.${i}`, 'signal');
    for (const e of ipEndpoints(used)) ip('-n', used, 'mptcp', 'endpoint', 'delete', 'id', String(e.id));
    ip('-n', used, 'mptcp', 'endpoint', 'add', '203.0.113.99', 'signal');
    expect(idsOf(used)).toEqual({ '203.0.113.99': 8 });
    ip('-n', used, 'mptcp', 'endpoint', 'delete', 'id', '8');
    expect((await cli('apply', '-f', config(used, SET_IDS))).code).toBe(0);
    expect(idsOf(used)).toEqual(want);
  });

  it('"wrap-around ids": the same on a fresh namespace', async () => {
    const want = ipLinesIds([
      ['192.0.2.1', 'signal'], ['192.0.2.2', 'id', '254', 'signal'], ['192.0.2.3', 'signal'], ['192.0.2.4', 'signal'],
      ['192.0.2.5', 'id', '253', 'signal'], ['192.0.2.6', 'signal'], ['192.0.2.7', 'signal'], ['192.0.2.8', 'signal'],
    ]);
    expect(want).toEqual({
      '192.0.2.1': 1, '192.0.2.4': 2, '192.0.2.6': 3, '192.0.2.7': 4, '192.0.2.8': 5, '192.0.2.5': 253, '192.0.2.2': 254, '192.0.2.3': 255,
    });
    const n = ns();
    expect((await cli('apply', '-f', config(n, WRAP_IDS))).code).toBe(0);
    expect(idsOf(n)).toEqual(want);
  });

  it('where file order collides with a pinned id, apply still converges and plan says which id it chose', async () => {
    const n = ns();
    const c = config(n, '    endpoints:\n      - { address: 192.0.2.1, flags: [subflow] }\n      - { address: 192.0.2.2, flags: [subflow] }\n      - { address: 192.0.2.3, id: 2, flags: [subflow] }\n');
    const p = await cli('plan', '-f', c);
    expect(p.out).toContain('id 3: file order gives id 2, which endpoints[192.0.2.3] pins');
    const a = await cli('apply', '-f', c);
    expect(a.code).toBe(0);
    expect(idsOf(n)).toEqual({ '192.0.2.1': 1, '192.0.2.3': 2, '192.0.2.2': 3 });
  });
});

describe('implicit endpoints on a real connection', () => {
  it('another id is refused with the reason and nothing changes; a plain declaration takes it over, keeping id and subflow', async () => {
    const s = ns();
    const c = ns();
    veth(s, 'v0', c, 'v1');
    veth(s, 'w0', c, 'w1');
    ip('-n', s, 'addr', 'add', '192.0.2.1/24', 'dev', 'v0');
    ip('-n', c, 'addr', 'add', '192.0.2.2/24', 'dev', 'v1');
    ip('-n', s, 'addr', 'add', '203.0.113.1/24', 'dev', 'w0');
    ip('-n', c, 'addr', 'add', '203.0.113.2/24', 'dev', 'w1');
    for (const [n, l] of [[s, 'v0'], [s, 'w0'], [c, 'v1'], [c, 'w1']] as const) ip('-n', n, 'link', 'set', l, 'up');
    // The server announces its second address; the client accepts it and joins
    // from 203.0.113.2, which has no endpoint: the kernel makes an implicit one.
    ip('-n', s, 'mptcp', 'endpoint', 'add', '203.0.113.1', 'dev', 'w0', 'signal');
    ip('-n', s, 'mptcp', 'limits', 'set', 'subflows', '2', 'add_addr_accepted', '0');
    ip('-n', c, 'mptcp', 'limits', 'set', 'subflows', '2', 'add_addr_accepted', '1');
    // Bound to every address: the join goes to the announced one.
    const server = await mptcpServer(s, '0.0.0.0', 8080, 1, procs);
    const client = startMptcpClient(c, '192.0.2.1', 8080, procs);
    // iproute2 6.1 knows no "implicit" keyword: it shows the flag as rawflags 10.
    const implicit = await waitFor('the implicit endpoint', () =>
      ipEndpoints(c).find((e) => e.address === '203.0.113.2' && (e.implicit === true || e.rawflags === '10')),
    );
    const subflows = () => /subflows:(\d+)/.exec(sh('ip', ['netns', 'exec', c, 'ss', '-HMin']))?.[1];
    await waitFor('the joined subflow', () => (subflows() === '1' ? true : undefined));
    // The join's TCP subflow, by its 4-tuple: it must survive everything below.
    const joinTuple = () => /203\.0\.113\.2:\d+\s+203\.0\.113\.1:8080/.exec(sh('ip', ['netns', 'exec', c, 'ss', '-tnH', 'state', 'established']))?.[0];
    const tuple = await waitFor('the join subflow in ss -tn', joinTuple);
    const before = JSON.stringify(ipEndpoints(c));

    const otherId = implicit.id === 33 ? 34 : 33;
    const bad = config(c, `    endpoints:\n      - { address: 203.0.113.2, id: ${otherId}, flags: [subflow] }\n`);
    const p = await cli('plan', '-f', bad);
    expect(p.code).toBe(1);
    expect(p.out).toContain(`implicit endpoint id ${implicit.id}`);
    expect(p.out).toContain('never deleted');
    expect(p.out).not.toMatch(/delete endpoint id/);
    const a = await cli('apply', '-f', bad);
    expect(a.code).not.toBe(0);
    expect(JSON.stringify(ipEndpoints(c))).toBe(before);
    expect(subflows()).toBe('1');
    expect(joinTuple()).toBe(tuple);

    const good = config(c, '    endpoints:\n      - { address: 203.0.113.2, dev: w1, flags: [subflow] }\n');
    const g = await cli('apply', '-f', good);
    expect(g.code).toBe(0);
    expect(ipEndpoints(c)).toEqual([{ address: '203.0.113.2', id: implicit.id, subflow: true, dev: 'w1' }]);
    // The subflow joined through the implicit endpoint is still the same socket.
    expect(sh('ip', ['netns', 'exec', c, 'ss', '-tnH', 'state', 'established'])).toContain(tuple);
    expect(client.out()).toContain('connected');
    for (const x of [client, server]) x.stop();
    await waitFor('the peers to exit', () => ([client, server].every((x) => x.proc.exitCode !== null) ? true : undefined));
  });
});

describe('pending work', () => {
  it('an endpoint on a missing dev shows in the diff, is reported pending, and --detailed-exitcode exits 2', async () => {
    const n = ns();
    const c = config(n, '    endpoints:\n      - { address: 198.51.100.10, dev: eth1, flags: [signal] }\n    rpFilter: { eth1: loose }\n');
    const r = await cli('plan', '-f', c, '--detailed-exitcode');
    expect(r.code).toBe(2);
    expect(r.out).not.toMatch(/^ {2}no changes$/m);
    expect(r.out).toMatch(/^\+ {2}- address: 198\.51\.100\.10$/m);
    expect(r.out).toContain('pending: endpoints[198.51.100.10]: dev eth1 does not exist (yet)');
    expect(r.out).toContain('pending: rpFilter.eth1');
    expect(ipEndpoints(n)).toEqual([]);
  });
});

describe('warnings where the config is written', () => {
  it('a strict rp_filter on an interface that carries an endpoint is a positioned warning from plan and validate', async () => {
    const n = ns();
    for (const rp of ['{ c1: strict }', '{ all: strict }']) {
      const c = config(n, `    endpoints:\n      - { address: 192.0.2.1, dev: c1, flags: [subflow] }\n    rpFilter: ${rp}\n`);
      const p = await cli('plan', '-f', c);
      expect(p.err, rp).toMatch(/c\d+\.yaml:5:\d+: warning.*192\.0\.2\.1 is on c1, whose rp_filter this entry makes strict/);
      const v = await cli('validate', '-f', c);
      expect(v.err + v.out, rp).toContain('whose rp_filter this entry makes strict');
    }
    // Loose on the interface wins over strict on all: no warning.
    const ok = config(n, '    endpoints:\n      - { address: 192.0.2.1, dev: c1, flags: [subflow] }\n    rpFilter: { all: strict, c1: loose }\n');
    expect((await cli('validate', '-f', ok)).err).not.toContain('rp_filter');
  });
});
