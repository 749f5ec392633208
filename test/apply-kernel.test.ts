// `apply` and `plan` on the real kernel, through main(argv, io), with iproute2 as
// the independent oracle. Every test uses its own namespaces; the host namespace is
// only read (before and after) to prove it was never touched.
import { spawn } from 'node:child_process';
import { copyFileSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../src/cli/main.js';
import {
  createNetns,
  deleteNetns,
  ip,
  ipEndpoints,
  ipLimits,
  nsSysctl,
  requireRoot,
  setNsSysctl,
  sh,
  uniqueName,
  veth,
} from './helpers/netns.js';
import { captureIO } from './helpers/io.js';

requireRoot();

const made: string[] = [];
const dir = mkdtempSync(join(tmpdir(), 'mr-apply-'));
let hostBefore: string;

function hostState(): string {
  // Read-only view of everything a bug could change in the host namespace.
  const sysctls = sh('sysctl', ['-a', '--pattern', '^net\\.mptcp\\.']).split('\n').filter((l) => !l.includes('available_')).sort();
  const rp = sh('sysctl', ['-a', '--pattern', 'rp_filter$']).trim();
  return [ip('-j', 'mptcp', 'endpoint', 'show'), ip('mptcp', 'limits'), sysctls.join('\n'), rp].join('\n--\n');
}

function ns(prefix: string): string {
  const n = createNetns(prefix);
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

type JsonNs = {
  netns: string;
  converged: boolean;
  operations: { op: string; disruptive: boolean; result?: string; error?: string; reason?: string; id?: number }[];
  errors: { message: string; op?: string; errno?: string }[];
};
function json(out: string): { node: string; namespaces: JsonNs[] } {
  return JSON.parse(out) as { node: string; namespaces: JsonNs[] };
}

/** Waits until a process named `comm` runs inside namespace `netns` (ip netns exec has exec'd it). */
async function waitForComm(comm: string, netns: string): Promise<void> {
  const want = ip('netns', 'exec', netns, 'readlink', '/proc/self/ns/net').trim();
  for (let i = 0; i < 200; i++) {
    for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
      try {
        if (readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === comm && readlinkSync(`/proc/${pid}/ns/net`) === want) return;
      } catch {
        /* exited */
      }
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`no ${comm} process appeared in ${netns}`);
}

beforeAll(() => {
  hostBefore = hostState();
});

afterAll(() => {
  for (const n of made) deleteNetns(n);
  rmSync(dir, { recursive: true, force: true });
  // The host namespace is exactly as it was.
  expect(hostState()).toBe(hostBefore);
});

describe('apply on the real kernel', () => {
  it('applies from empty, verifies, and plan then has nothing to do', async () => {
    const a = ns('ap');
    veth(a, 've0', undefined, 've1');
    ip('-n', a, 'addr', 'add', '192.0.2.1/24', 'dev', 've0');
    ip('-n', a, 'link', 'set', 've0', 'up');
    const f = config(`version: 1
namespaces:
  - netns: ${a}
    mptcp: { enabled: true, addAddrTimeout: 60 }
    limits: { subflows: 4, addAddrAccepted: 3 }
    endpoints:
      - { address: 192.0.2.1, port: 10100, flags: [signal] }
      - { address: 198.51.100.7, dev: ve0, flags: [subflow, backup] }
      - { address: 2001:db8::7, flags: [signal] }
    rpFilter: { ve0: loose, all: off }
`);
    const r = await cli('apply', '-f', f, '-o', 'json');
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const doc = json(r.out);
    expect(doc.node).toBe('test-node');
    expect(doc.namespaces).toHaveLength(1);
    expect(doc.namespaces[0]!.converged).toBe(true);
    expect(doc.namespaces[0]!.operations.every((o) => o.result === 'ok')).toBe(true);

    const eps = ipEndpoints(a);
    expect(eps.map((e) => [e.address, e.port ?? null, !!e.signal, !!e.subflow, !!e.backup, e.dev ?? null]).sort()).toEqual(
      [
        ['192.0.2.1', 10100, true, false, false, null],
        ['198.51.100.7', null, false, true, true, 've0'],
        ['2001:db8::7', null, true, false, false, null],
      ].sort(),
    );
    expect(ipLimits(a)).toEqual({ subflows: 4, addAddrAccepted: 3 });
    expect(nsSysctl(a, 'net.mptcp.add_addr_timeout')).toBe('60');
    expect(nsSysctl(a, 'net.ipv4.conf.ve0.rp_filter')).toBe('2');
    expect(nsSysctl(a, 'net.ipv4.conf.all.rp_filter')).toBe('0');

    const p = await cli('plan', '-f', f, '--detailed-exitcode');
    expect(p.code).toBe(0);
    expect(p.out).toContain('no changes');
  });

  it('toggles backup in place (the kernel id stays), restores a deleted endpoint, prunes a foreign one', async () => {
    const a = ns('ap');
    const base = (flags: string) => `version: 1
namespaces:
  - netns: ${a}
    endpoints:
      - { address: 192.0.2.10, flags: [${flags}] }
      - { address: 192.0.2.11, flags: [signal] }
`;
    expect((await cli('apply', '-f', config(base('subflow')))).code).toBe(0);
    const id10 = ipEndpoints(a).find((e) => e.address === '192.0.2.10')!.id;

    const f2 = config(base('subflow, backup'));
    const plan = await cli('plan', '-f', f2, '-o', 'json', '--detailed-exitcode');
    expect(plan.code).toBe(2);
    const ops = json(plan.out).namespaces[0]!.operations;
    expect(ops.map((o) => o.op)).toEqual(['set-flags']);
    expect(ops[0]!.disruptive).toBe(false);
    expect((await cli('apply', '-f', f2)).code).toBe(0);
    const after = ipEndpoints(a).find((e) => e.address === '192.0.2.10')!;
    expect(after.id).toBe(id10);
    expect(after.backup).toBe(true);

    // Drift by hand: one endpoint deleted, a foreign one added.
    ip('-n', a, 'mptcp', 'endpoint', 'delete', 'id', String(ipEndpoints(a).find((e) => e.address === '192.0.2.11')!.id));
    ip('-n', a, 'mptcp', 'endpoint', 'add', '203.0.113.5', 'signal');
    const drift = await cli('plan', '-f', f2, '--detailed-exitcode');
    expect(drift.code).toBe(2);
    expect(drift.out).toMatch(/\+.*192\.0\.2\.11/);
    expect(drift.out).toMatch(/-.*203\.0\.113\.5/);
    expect(drift.out).toMatch(/delete endpoint .*203\.0\.113\.5.*\[disruptive\]/);
    const fix = await cli('apply', '-f', f2);
    expect(fix.code).toBe(0);
    expect(ipEndpoints(a).map((e) => e.address).sort()).toEqual(['192.0.2.10', '192.0.2.11']);

    // prune: false keeps what someone else added.
    ip('-n', a, 'mptcp', 'endpoint', 'add', '203.0.113.6', 'signal');
    const keep = config(`${base('subflow, backup')}    prune: false\n`);
    expect((await cli('apply', '-f', keep)).code).toBe(0);
    expect(ipEndpoints(a).map((e) => e.address).sort()).toEqual(['192.0.2.10', '192.0.2.11', '203.0.113.6']);
  });

  it('reports an endpoint whose dev does not exist yet as pending, and applies the rest', async () => {
    const a = ns('ap');
    const f = config(`version: 1
namespaces:
  - netns: ${a}
    endpoints:
      - { dev: wwan0, family: ipv4, flags: [subflow, backup] }
      - { address: 192.0.2.90, dev: usb7, flags: [subflow] }
      - { address: 192.0.2.91, flags: [signal] }
`);
    const r = await cli('apply', '-f', f, '-o', 'json');
    expect(r.code).toBe(0);
    const n = json(r.out).namespaces[0]! as JsonNs & { pending: { what: string; reason: string }[] };
    expect(n.pending.map((p) => p.reason).join('\n')).toMatch(/wwan0 does not exist/);
    expect(n.pending.map((p) => p.reason).join('\n')).toMatch(/usb7 does not exist/);
    expect(ipEndpoints(a).map((e) => e.address)).toEqual(['192.0.2.91']);
    const t = await cli('plan', '-f', f);
    expect(t.out).toMatch(/pending: .*wwan0.*does not exist/);
  });

  it('changes only the declared limit and sysctls', async () => {
    const a = ns('ap');
    ip('-n', a, 'mptcp', 'limits', 'set', 'subflows', '5', 'add_addr_accepted', '3');
    setNsSysctl(a, 'net.mptcp.checksum_enabled', '1');
    const f = config(`version: 1
namespaces:
  - netns: ${a}
    limits: { subflows: 2 }
    mptcp: { allowJoinInitialAddrPort: false }
`);
    expect((await cli('apply', '-f', f)).code).toBe(0);
    expect(ipLimits(a)).toEqual({ subflows: 2, addAddrAccepted: 3 });
    expect(nsSysctl(a, 'net.mptcp.allow_join_initial_addr_port')).toBe('0');
    expect(nsSysctl(a, 'net.mptcp.checksum_enabled')).toBe('1');
  });

  it('reports a failing operation with op, errno and extack and still applies the rest', async () => {
    const a = ns('ap');
    const f = config(`version: 1
namespaces:
  - netns: ${a}
    limits: { subflows: 3 }
    endpoints:
      - { address: 203.0.113.99, port: 10200, flags: [signal] }
      - { address: 192.0.2.20, flags: [subflow] }
`);
    const r = await cli('apply', '-f', f, '-o', 'json');
    expect(r.code).toBe(1);
    const n = json(r.out).namespaces[0]!;
    expect(n.converged).toBe(false);
    const failed = n.operations.find((o) => o.result === 'failed')!;
    expect(failed.op).toBe('add');
    expect(n.errors[0]!.errno).toBe('EADDRNOTAVAIL');
    expect(n.errors[0]!.op).toMatch(/203\.0\.113\.99/);
    expect(n.errors[0]!.message).toMatch(/listen socket/);
    expect(ipLimits(a).subflows).toBe(3);
    expect(ipEndpoints(a).map((e) => e.address)).toEqual(['192.0.2.20']);
    const text = await cli('apply', '-f', f);
    expect(text.code).toBe(1);
    expect(text.out).toMatch(/FAILED.*EADDRNOTAVAIL/);
    expect(text.out).toContain('NOT converged');
  });

  it('reports a named namespace that does not exist, and still applies the others', async () => {
    const a = ns('ap');
    const missing = uniqueName('gone');
    const f = config(`version: 1
namespaces:
  - netns: ${missing}
    limits: { subflows: 1 }
  - netns: ${a}
    limits: { subflows: 1 }
  - netns: "mrnomatch-*"
    limits: { subflows: 1 }
`);
    const r = await cli('apply', '-f', f, '--netns', 'mr*');
    expect(r.code).toBe(1);
    expect(r.out).toContain(`netns ${missing}: not found in /run/netns; will be configured when it appears`);
    expect(ipLimits(a).subflows).toBe(1);
  });

  it('round trip: show -o yaml of one namespace applied to an empty one reproduces it', async () => {
    const a = ns('ap');
    const b = ns('ap');
    ip('-n', a, 'mptcp', 'endpoint', 'add', '192.0.2.30', 'subflow', 'backup');
    ip('-n', a, 'mptcp', 'endpoint', 'add', '198.51.100.30', 'id', '7', 'signal');
    ip('-n', a, 'mptcp', 'limits', 'set', 'subflows', '6', 'add_addr_accepted', '1');
    const shown = await cli('show', '--netns', a, '-o', 'yaml');
    expect(shown.code).toBe(0);
    const f = config(shown.out.split(a).join(b));
    const r = await cli('apply', '-f', f, '--netns', b);
    expect(r.code).toBe(0);
    const strip = (eps: ReturnType<typeof ipEndpoints>) => eps.map(({ dev: _d, ...e }) => e);
    expect(strip(ipEndpoints(b))).toEqual(strip(ipEndpoints(a)));
    expect(ipLimits(b)).toEqual(ipLimits(a));
  });

  it('refuses to fight a NetworkManager running in the namespace (conflicts: fail), and manages it with warn', async () => {
    const a = ns('ap');
    // A process whose comm is NetworkManager, living in the test namespace only.
    const bin = join(dir, 'NetworkManager');
    copyFileSync('/bin/sleep', bin);
    const nm = spawn('ip', ['netns', 'exec', a, bin, '120'], { stdio: 'ignore' });
    try {
      await waitForComm('NetworkManager', a);
      const entry = (policy: string) => `version: 1
namespaces:
  - netns: ${a}
    conflicts: ${policy}
    limits: { subflows: 5 }
    endpoints:
      - { address: 192.0.2.80, flags: [subflow] }
`;
      const r = await cli('apply', '-f', config(entry('fail')), '-o', 'json');
      expect(r.code).toBe(1);
      const n = json(r.out).namespaces[0]! as JsonNs & { conflicts: { manager: string; pid?: number; fix: string }[] };
      expect(n.conflicts[0]!.manager).toBe('NetworkManager');
      expect(n.conflicts[0]!.fix).toMatch(/mptcp-flags/);
      expect(n.errors[0]!.message).toMatch(/not changed \(conflicts: fail\).*NetworkManager/);
      expect(ipLimits(a).subflows).toBe(2);
      expect(ipEndpoints(a)).toEqual([]);
      const t = await cli('apply', '-f', config(entry('fail')));
      expect(t.out).toMatch(/NetworkManager \(pid \d+\)[\s\S]*fix: /);

      const w = await cli('apply', '-f', config(entry('warn')));
      expect(w.code).toBe(0);
      expect(w.out).toMatch(/warning: .*changing despite NetworkManager/);
      expect(ipLimits(a).subflows).toBe(5);
    } finally {
      nm.kill('SIGKILL');
    }
  });

  it('leaves a config error with positioned diagnostics and applies nothing', async () => {
    const a = ns('ap');
    const f = config(`version: 1
namespaces:
  - netns: ${a}
    limits: { subflows: 3 }
    endpoints:
      - { address: 192.0.2.40, flags: [fullmesh] }
`);
    const r = await cli('apply', '-f', f);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/c\d+\.yaml:6:\d+/);
    expect(r.err).not.toMatch(/\n\s+at /);
    expect(ipLimits(a).subflows).toBe(2);
  });
});
