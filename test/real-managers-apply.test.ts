// `apply` next to the real mptcpd and the real NetworkManager, each running only
// inside the test's namespace: under `conflicts: fail` it changes nothing and
// names the manager (pid, command line, the file it reads), under `warn` it
// applies and says so. iproute2 is the oracle for "changed nothing".
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../src/cli/main.js';
import { captureIO } from './helpers/io.js';
import { createNetns, deleteNetns, ip, ipEndpoints, ipLimits, requireRoot, veth } from './helpers/netns.js';
import { requireRealManagers, startMptcpd, startNetworkManager, staticProfile, stopAllManagers, waitFor } from './helpers/real-managers.js';

const made: string[] = [];
const dir = mkdtempSync(join(tmpdir(), 'mr-x15-apply-'));
const emptyEtc = mkdtempSync(join(tmpdir(), 'mr-x15-etc-'));

beforeAll(() => {
  requireRoot();
  requireRealManagers();
});

afterEach(async () => {
  // Managers first (they write to the namespace), then the namespaces, by exact name.
  await stopAllManagers();
});

afterAll(async () => {
  try {
    await stopAllManagers();
  } finally {
    for (const n of made) deleteNetns(n);
    rmSync(dir, { recursive: true, force: true });
    rmSync(emptyEtc, { recursive: true, force: true });
  }
});

function ns(): string {
  const n = createNetns('x15');
  made.push(n);
  return n;
}

let fileNo = 0;
function config(yaml: string): string {
  const p = join(dir, `c${fileNo++}.yaml`);
  writeFileSync(p, yaml);
  return p;
}

async function cli(...argv: string[]) {
  const t = captureIO({ env: { NODE_NAME: 'test-node' } });
  const code = await main(argv, t.io);
  return { code, out: t.out(), err: t.err() };
}

type JsonConflict = { manager: string; kind: string; pid?: number; file?: string; argv?: string[]; plugins?: string[]; blocking: boolean };
type JsonNs = { netns: string; converged: boolean; errors: { message: string }[]; conflicts?: JsonConflict[]; warnings?: string[] };
const nsOf = (out: string) => (JSON.parse(out) as { namespaces: JsonNs[] }).namespaces[0]!;

const entry = (netns: string, policy: string) => `version: 1
namespaces:
  - netns: ${netns}
    conflicts: ${policy}
    limits: { subflows: 1, addAddrAccepted: 1 }
    endpoints:
      - { address: 198.51.100.5, flags: [signal] }
`;

describe('apply with the real mptcpd running in the namespace', () => {
  it('refuses under fail (nothing written, pid and command line named) and applies with a warning under warn', async () => {
    const a = ns();
    veth(a, 'x15m0', undefined, 'x15m1');
    ip('-n', a, 'addr', 'add', '192.0.2.20/24', 'dev', 'x15m0');
    ip('-n', a, 'link', 'set', 'x15m0', 'up');
    ip('-n', a, 'link', 'set', 'x15m1', 'up'); // carrier: mptcpd skips links that are not running
    const md = await startMptcpd(a, ['--path-manager=addr_adv', '--addr-flags=subflow', '--notify-flags=existing,skip_link_local,skip_loopback']);
    // mptcpd really writes here: its endpoint for the veth address, and raised limits.
    await waitFor('mptcpd to add its endpoint', () => ipEndpoints(a).some((e) => e.address === '192.0.2.20' && e.subflow));
    await waitFor('mptcpd to raise the limits', () => ipLimits(a).subflows > 2);
    const before = { endpoints: ipEndpoints(a), limits: ipLimits(a) };

    const r = await cli('apply', '-f', config(entry(a, 'fail')), '--netns', a, '-o', 'json', '--etc-root', emptyEtc);
    expect(r.code).toBe(1);
    const n = nsOf(r.out);
    const proc = n.conflicts!.find((c) => c.kind === 'process')!;
    expect(proc).toMatchObject({ manager: 'mptcpd', pid: md.pid, blocking: true, plugins: ['addr_adv', 'sspi'] });
    expect(proc.argv).toEqual(['--path-manager=addr_adv', '--addr-flags=subflow', '--notify-flags=existing,skip_link_local,skip_loopback']);
    expect(n.errors[0]!.message).toMatch(/not changed \(conflicts: fail\)/);
    expect({ endpoints: ipEndpoints(a), limits: ipLimits(a) }).toEqual(before);

    const t = await cli('apply', '-f', config(entry(a, 'fail')), '--netns', a, '--etc-root', emptyEtc);
    expect(t.code).toBe(1);
    expect(t.out).toContain(`mptcpd (pid ${md.pid}) runs in this namespace; command line: --path-manager=addr_adv`);

    const w = await cli('apply', '-f', config(entry(a, 'warn')), '--netns', a, '--etc-root', emptyEtc);
    expect(w.code).toBe(0);
    expect(w.out).toMatch(/warning: .*mptcpd/);
    expect(ipEndpoints(a).map((e) => [e.address, e.signal === true])).toEqual([['198.51.100.5', true]]);
    expect(ipLimits(a)).toEqual({ subflows: 1, addAddrAccepted: 1 });
  });
});

describe('apply with the real NetworkManager running in the namespace', () => {
  it('refuses under fail naming its pid and its own profile (not in our /etc), and applies under warn', async () => {
    const a = ns();
    veth(a, 'x15n0', undefined, 'x15n1');
    ip('-n', a, 'link', 'set', 'x15n1', 'up');
    const nm = await startNetworkManager(a, {
      devicePrefix: 'x15n0',
      profiles: { x15n0: staticProfile('x15n0', '192.0.2.30/24', '192.0.2.254') },
    });
    // NetworkManager adds a subflow endpoint for an interface with a default route.
    await waitFor('NetworkManager to add its endpoint', () => ipEndpoints(a).some((e) => e.address === '192.0.2.30' && e.subflow), 20_000);
    const before = { endpoints: ipEndpoints(a), limits: ipLimits(a) };

    const r = await cli('apply', '-f', config(entry(a, 'fail')), '--netns', a, '-o', 'json', '--etc-root', emptyEtc);
    expect(r.code).toBe(1);
    const n = nsOf(r.out);
    expect(n.conflicts!.find((c) => c.kind === 'process')).toMatchObject({ manager: 'NetworkManager', pid: nm.pid, blocking: true });
    // Its configuration comes from its own mount namespace; the --etc-root given here is empty.
    const conf = n.conflicts!.find((c) => c.kind === 'config') as JsonConflict & { detail: string };
    expect(conf).toMatchObject({ manager: 'NetworkManager', pid: nm.pid });
    expect(conf.detail).toMatch(/^no connection\.mptcp-flags default in /);
    expect(conf.detail).toContain(`/proc/${nm.pid}/root/etc/NetworkManager/NetworkManager.conf`);
    expect(conf.detail).toContain('profile(s) without their own mptcp-flags (x15n0)');
    expect({ endpoints: ipEndpoints(a), limits: ipLimits(a) }).toEqual(before);

    const w = await cli('apply', '-f', config(entry(a, 'warn')), '--netns', a, '--etc-root', emptyEtc);
    expect(w.code).toBe(0);
    expect(w.out).toMatch(/warning: .*NetworkManager/);
    expect(ipEndpoints(a).map((e) => e.address)).toEqual(['198.51.100.5']);
  });
});
