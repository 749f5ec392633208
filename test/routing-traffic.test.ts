// Source routing on real traffic, without the daemon. A client with two uplinks
// (c1 198.51.100.2 via 198.51.100.1, the default; c2 203.0.113.2 via
// 203.0.113.1) talks to a service address 192.0.2.1 behind a gateway that
// filters strictly (rp_filter 1) and answers no ARP for the service address.
// Without source routing the join from c2 never establishes, with or without
// `dev` on the endpoint (without it the SYN leaves by c1 with c2's source and is
// dropped; with it there is no route out of c2). After `apply` of a config with
// `sourceRouting` (the product, through main()), a new connection gets its
// subflow from c2. The oracle is `ss` in the client namespace, never the tool.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { main } from '../src/cli/main.js';
import { closeAllNamespaces } from '../src/kernel/namespace.js';
import { captureIO } from './helpers/io.js';
import { killPeers, mptcpClient, mptcpServer, waitFor, type Peer } from './helpers/mptcp-peer.js';
import { deleteNetns, ip, requireRoot, sh } from './helpers/netns.js';
import { PORT, SERVICE, subflows, twoUplinks } from './helpers/two-uplinks.js';

requireRoot();
const made: string[] = [];
const peers: Peer[] = [];
const dir = mkdtempSync(join(tmpdir(), 'mr-rtA-'));
afterAll(() => {
  killPeers(peers);
  closeAllNamespaces();
  for (const n of made) deleteNetns(n);
  rmSync(dir, { recursive: true, force: true });
});

/** `apply` of the client's config through the CLI, as a user runs it; its exit code and output. */
async function apply(cli: string, withDev: boolean): Promise<{ code: number; out: string }> {
  const file = join(dir, 'client.yaml');
  writeFileSync(
    file,
    [
      'version: 1',
      'namespaces:',
      `  - netns: ${cli}`,
      '    endpoints:',
      `      - address: 203.0.113.2${withDev ? '\n        dev: c2' : ''}`,
      '        flags: [subflow]',
      '    sourceRouting:',
      '      c2: { table: 102, gateway: 203.0.113.1 }',
      '',
    ].join('\n'),
  );
  const t = captureIO({ env: { NODE_NAME: 'test-node' } });
  const code = await main(['apply', '-f', file], t.io);
  return { code, out: t.out() + t.err() };
}

function endpoint(cli: string, withDev: boolean): void {
  ip('-n', cli, 'mptcp', 'endpoint', 'flush');
  ip('-n', cli, 'mptcp', 'endpoint', 'add', '203.0.113.2', ...(withDev ? ['dev', 'c2'] : []), 'subflow');
}

/**
 * Opens a new connection; true when a subflow from c2 of that same connection
 * got established within `ms` (older connections' joins may still be retrying
 * and must not count), else what ss showed.
 */
async function joinsFromC2(cli: string, ms: number): Promise<true | string> {
  const known = new Set(subflows(cli).map((s) => s.token));
  peers.push(await mptcpClient(cli, SERVICE, PORT));
  const token = await waitFor('the new connection', () => subflows(cli).find((s) => s.src === '198.51.100.2' && s.state === 'ESTAB' && !known.has(s.token))?.token);
  try {
    await waitFor('its subflow from 203.0.113.2', () => (subflows(cli).some((s) => s.token === token && s.src === '203.0.113.2' && s.state === 'ESTAB') ? true : undefined), ms);
    return true;
  } catch {
    // What ss saw, so a failure explains itself.
    return `no established subflow from 203.0.113.2 for token ${token}:\n${sh('ip', ['netns', 'exec', cli, 'ss', '-Htna', 'dst', SERVICE])}`;
  }
}

describe('source routing on real traffic', () => {
  it('without it the join from the second uplink fails (with or without dev); with it a new connection gets its subflow', async () => {
    const { cli, srv } = twoUplinks('rtA', made);
    peers.push(await mptcpServer(srv, SERVICE, PORT, 4));

    // A working join takes milliseconds here; three seconds covers the first SYN retransmission.
    endpoint(cli, true);
    expect(await joinsFromC2(cli, 3000)).not.toBe(true);
    endpoint(cli, false);
    expect(await joinsFromC2(cli, 3000)).not.toBe(true);

    const first = await apply(cli, false);
    expect(first, first.out).toMatchObject({ code: 0 });
    expect(ip('-n', cli, 'rule', 'show')).toMatch(/from 203\.0\.113\.2 lookup 102 proto 213/);
    expect(ip('-n', cli, 'route', 'show', 'table', '102')).toMatch(/default via 203\.0\.113\.1 dev c2 proto 213/);

    expect(await joinsFromC2(cli, 15_000)).toBe(true);
    const second = await apply(cli, true);
    expect(second, second.out).toMatchObject({ code: 0 });
    expect(await joinsFromC2(cli, 15_000)).toBe(true);

    for (const p of peers.splice(0)) expect(await p.stop()).toBe(0);
  }, 60_000);
});
