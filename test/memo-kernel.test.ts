// The converged-pass memo on the real kernel: a pass whose read finds the bytes of
// the last converged pass (same desired object, same handle) is answered without
// planning; every kind of drift made by hand after many such passes is still
// found and repaired, and a config edit, a new link or a namespace re-created
// under its name still gets a full pass. iproute2 is the oracle.
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { reconcileAll, reconcileNamespace, type ReconcileResult } from '../src/apply/reconcile.js';
import { PassMemo } from '../src/apply/pass-memo.js';
import { parseConfigFiles, resolveAll } from '../src/config/index.js';
import type { DesiredNamespace } from '../src/core/model.js';
import { closeAllNamespaces, KEEP_WATCHED_MS, openNamespace } from '../src/kernel/namespace.js';
import { listNamespaces, netnsIdentity } from '../src/kernel/netns.js';
import { deleteNetns, ip, ipEndpoints, ipLimits, nsSysctl, requireRoot, setNsSysctl, uniqueName, veth } from './helpers/netns.js';

const made: string[] = [];
beforeAll(() => requireRoot());
afterAll(() => {
  closeAllNamespaces();
  for (const n of made) deleteNetns(n);
});

/** A namespace with two up interfaces, under `name` (a fresh unique one by default). */
function makeNs(name = uniqueName('memo')): string {
  ip('netns', 'add', name);
  if (!made.includes(name)) made.push(name);
  ip('-n', name, 'link', 'set', 'lo', 'up');
  veth(name, 'eth0', undefined, 'eth1');
  ip('-n', name, 'link', 'set', 'eth0', 'up');
  ip('-n', name, 'link', 'set', 'eth1', 'up');
  return name;
}

function desiredFor(ns: string, body: string): DesiredNamespace {
  const r = parseConfigFiles([{ file: 'memo.yaml', content: `version: 1\nnamespaces:\n  - netns: ${ns}\n${body}` }], { node: 'test-node' });
  if (!r.ok) throw new Error(JSON.stringify(r.diagnostics));
  const d = resolveAll(r.config, 'test-node', listNamespaces()).find((x) => x.netns === ns);
  if (!d) throw new Error(`config does not apply to ${ns}`);
  return d;
}

const BODY = `    limits: { subflows: 4, addAddrAccepted: 3 }
    rpFilter: { eth0: loose, eth1: loose }
    endpoints:
      - { address: 192.0.2.1, flags: [subflow] }
      - { address: 198.51.100.1, flags: [signal, backup] }
      - { address: 2001:db8::1, flags: [subflow] }
`;

// The memo a daemon would own: one for every pass of this file.
const memo = new PassMemo();
const passMemoStats = memo.stats;

async function pass(d: DesiredNamespace, mode: 'enforce' | 'observe' = 'enforce'): Promise<ReconcileResult & { memo: boolean }> {
  const hits = passMemoStats.hits;
  const [r] = await reconcileAll([d], { mode, memo, openNamespace, identityOf: netnsIdentity, existing: listNamespaces() });
  return { ...r!, memo: passMemoStats.hits > hits };
}

/** Runs unchanged passes and checks each was answered from the memo and stayed converged. */
async function unchangedPasses(d: DesiredNamespace, n = 20): Promise<void> {
  for (let i = 0; i < n; i++) {
    const r = await pass(d);
    expect(r).toMatchObject({ converged: true, operations: [], errors: [], memo: true });
  }
}

/** Converges `d` and runs the full pass after the writes, which stores the memo. */
async function converge(d: DesiredNamespace): Promise<ReconcileResult & { memo: boolean }> {
  const r = await pass(d);
  expect(await pass(d)).toMatchObject({ converged: true, operations: [], memo: false });
  return r;
}

function assertDesired(ns: string): void {
  const eps = ipEndpoints(ns).map((e) => `${e.address} ${e.signal ? 'signal' : ''}${e.subflow ? 'subflow' : ''}${e.backup ? ' backup' : ''}`).sort();
  expect(eps).toEqual(['192.0.2.1 subflow', '198.51.100.1 signal backup', '2001:db8::1 subflow']);
  expect(ipLimits(ns)).toEqual({ subflows: 4, addAddrAccepted: 3 });
  expect(nsSysctl(ns, 'net.ipv4.conf.eth0.rp_filter')).toBe('2');
  expect(nsSysctl(ns, 'net.ipv4.conf.eth1.rp_filter')).toBe('2');
}

describe('converged-pass memo', () => {
  it('re-reads links, addresses and rp_filter after KEEP_WATCHED_MS even without a notification (RTM_SETLINK sends none)', async () => {
    const ns = makeNs();
    const d = desiredFor(ns, BODY);
    await converge(d);
    await unchangedPasses(d, 3);
    // A change whose notification never reaches the handle (as a write over
    // RTM_SETLINK would send none): taken off the handle's watch socket here.
    setNsSysctl(ns, 'net.ipv4.conf.eth0.rp_filter', '1');
    const handle = openNamespace(ns) as unknown as { linkWatch?: { drainNotifications(): boolean } };
    expect(handle.linkWatch?.drainNotifications()).toBe(true);
    // Within the max age the kept value is believed.
    expect(await pass(d)).toMatchObject({ converged: true, operations: [], memo: true });
    // Kept values expire on the monotonic clock, so that is the one moved forward.
    const now = process.hrtime.bigint();
    const clock = vi.spyOn(process.hrtime, 'bigint').mockReturnValue(now + BigInt(KEEP_WATCHED_MS + 1_000) * 1_000_000n);
    try {
      // What was kept is dropped: read again, the change is seen and repaired.
      const repaired = await pass(d);
      expect(repaired).toMatchObject({ converged: true, memo: false });
      expect(repaired.operations.map((o) => o.op)).toEqual(['set-rp-filter']);
      expect(await pass(d)).toMatchObject({ converged: true, operations: [], memo: false });
      expect(await pass(d)).toMatchObject({ converged: true, operations: [], memo: true });
    } finally {
      clock.mockRestore();
    }
    assertDesired(ns);
    // Expiry again with nothing changed: the re-read finds the same and the memo still answers
    // (a fleet is not planned in full once per max age, all at once).
    const later = process.hrtime.bigint();
    const clock2 = vi.spyOn(process.hrtime, 'bigint').mockReturnValue(later + BigInt(2 * KEEP_WATCHED_MS + 2_000) * 1_000_000n);
    try {
      expect(await pass(d)).toMatchObject({ converged: true, operations: [], memo: true });
    } finally {
      clock2.mockRestore();
    }
  });

  it('answers unchanged passes from the memo, and still repairs each kind of drift made by hand', async () => {
    const ns = makeNs();
    const d = desiredFor(ns, BODY);
    const first = await pass(d);
    expect(first).toMatchObject({ converged: true, errors: [], memo: false });
    expect(first.operations.length).toBeGreaterThan(0);
    assertDesired(ns);
    // The pass after a write reads and plans in full; from then on the memo answers.
    expect(await pass(d)).toMatchObject({ converged: true, operations: [], memo: false });
    await unchangedPasses(d);

    const id = (addr: string) => ipEndpoints(ns).find((e) => e.address === addr)!.id;
    const drifts: [string, () => void, string][] = [
      ['endpoint deleted', () => ip('-n', ns, 'mptcp', 'endpoint', 'delete', 'id', String(id('192.0.2.1'))), 'add'],
      ['limits changed', () => ip('-n', ns, 'mptcp', 'limits', 'set', 'subflows', '1', 'add_addr_accepted', '3'), 'set-limits'],
      ['rp_filter changed', () => setNsSysctl(ns, 'net.ipv4.conf.eth1.rp_filter', '1'), 'set-rp-filter'],
      ['flag flipped in place', () => ip('-n', ns, 'mptcp', 'endpoint', 'change', 'id', String(id('198.51.100.1')), 'nobackup'), 'set-flags'],
      ['foreign endpoint added', () => ip('-n', ns, 'mptcp', 'endpoint', 'add', '203.0.113.7', 'subflow'), 'delete'],
    ];
    for (const [what, drift, op] of drifts) {
      drift();
      const r = await pass(d);
      expect(r.memo, what).toBe(false);
      expect(r.converged, what).toBe(true);
      expect(r.operations.map((o) => `${o.op} ${o.result}`), what).toEqual([`${op} ok`]);
      assertDesired(ns);
      expect((await pass(d)).memo, `${what}: first pass after the repair`).toBe(false);
      await unchangedPasses(d, 5);
    }
  });

  it('observe mode reports drift behind a memo, writes nothing, and is answered from the memo once converged', async () => {
    const ns = makeNs();
    const d = desiredFor(ns, BODY);
    await converge(d);
    expect((await pass(d, 'observe')).memo).toBe(true);
    ip('-n', ns, 'mptcp', 'limits', 'set', 'subflows', '2', 'add_addr_accepted', '3');
    for (let i = 0; i < 3; i++) {
      const r = await pass(d, 'observe');
      expect(r).toMatchObject({ converged: false, memo: false, applied: false });
      expect(r.operations.map((o) => o.op)).toEqual(['set-limits']);
    }
    expect(ipLimits(ns).subflows).toBe(2);
    await pass(d);
    expect(ipLimits(ns).subflows).toBe(4);
    await pass(d);
    expect(await pass(d, 'observe')).toMatchObject({ converged: true, memo: true });
  });

  it('a config edit (a new desired object) is planned and applied, even when the kernel did not change', async () => {
    const ns = makeNs();
    const d = desiredFor(ns, BODY);
    await converge(d);
    await unchangedPasses(d, 3);
    const edited = desiredFor(ns, BODY.replace('subflows: 4', 'subflows: 6'));
    const r = await pass(edited);
    expect(r).toMatchObject({ converged: true, memo: false });
    expect(r.operations.map((o) => o.op)).toEqual(['set-limits']);
    expect(ipLimits(ns)).toEqual({ subflows: 6, addAddrAccepted: 3 });
    // The same content resolved again is another object: planned in full, nothing to do.
    expect(await pass(desiredFor(ns, BODY.replace('subflows: 4', 'subflows: 6')))).toMatchObject({ converged: true, operations: [], memo: false });
  });

  it('a new interface (a link notification) makes the next pass read and plan in full', async () => {
    const ns = makeNs();
    const d = desiredFor(ns, BODY.replace('rpFilter: { eth0: loose, eth1: loose }', 'rpFilter: { eth0: loose, eth1: loose, eth9: strict }'));
    const r0 = await converge(d);
    expect(r0.pending.map((p) => p.what).join()).toContain('eth9');
    await unchangedPasses(d, 3);
    ip('-n', ns, 'link', 'add', 'eth9', 'type', 'veth', 'peer', 'name', 'eth9p');
    const r = await pass(d);
    expect(r).toMatchObject({ converged: true, memo: false, pending: [] });
    expect(r.operations.map((o) => o.op)).toEqual(['set-rp-filter']);
    expect(nsSysctl(ns, 'net.ipv4.conf.eth9.rp_filter')).toBe('1');
  });

  it('a namespace deleted and re-created under the same name is reconciled in full', async () => {
    const ns = makeNs();
    const d = desiredFor(ns, BODY);
    await converge(d);
    await unchangedPasses(d, 3);
    ip('netns', 'del', ns);
    makeNs(ns);
    expect(ipEndpoints(ns)).toEqual([]);
    const r = await pass(d);
    expect(r).toMatchObject({ converged: true, errors: [], memo: false });
    expect(r.operations.length).toBeGreaterThanOrEqual(6);
    assertDesired(ns);
  });

  it('interface-derived endpoints: addresses whose lifetimes count down still hit the memo; a removed address does not', async () => {
    const ns = makeNs();
    ip('-n', ns, 'addr', 'add', '192.0.2.20/24', 'dev', 'eth0', 'valid_lft', '3000', 'preferred_lft', '2000');
    // Another subnet: deleting a primary address takes its subnet's secondaries with it.
    ip('-n', ns, 'addr', 'add', '198.51.100.21/24', 'dev', 'eth0');
    const d = desiredFor(ns, `    endpoints:\n      - { dev: eth0, family: ipv4, flags: [subflow] }\n`);
    // IPv6 link-local addresses finish DAD a second or two after the link is up (a
    // real change, announced): let that settle first.
    for (let i = 0; i < 100 && ip('-n', ns, 'addr', 'show', 'tentative').trim() !== ''; i++) await new Promise((r) => setTimeout(r, 50));
    await converge(d);
    // Lifetimes are reported in whole seconds: wait for at least one to tick.
    await new Promise((r) => setTimeout(r, 1100));
    expect(await pass(d)).toMatchObject({ converged: true, memo: true });
    expect(ipEndpoints(ns).map((e) => e.address).sort()).toEqual(['192.0.2.20', '198.51.100.21']);
    ip('-n', ns, 'addr', 'del', '192.0.2.20/24', 'dev', 'eth0');
    const r = await pass(d);
    expect(r).toMatchObject({ converged: true, memo: false });
    expect(ipEndpoints(ns).map((e) => e.address)).toEqual(['198.51.100.21']);
  });

  it('kept addresses and rp_filter values: every change made by hand is seen by the next read', async () => {
    const ns = makeNs();
    const k = openNamespace(ns);
    const select = { links: true, addresses: true, rpFilter: ['all', 'default', 'eth0', 'eth1'] };
    const read = async () => {
      const live = await k.readLive(select);
      return { rp: live.rpFilter, addrs: live.addresses.filter((a) => a.family === 4 && a.address !== '127.0.0.1').map((a) => `${a.address}${a.deprecated ? ' deprecated' : ''}`).sort() };
    };
    const oracle = () => ({
      rp: Object.fromEntries(['all', 'default', 'eth0', 'eth1'].map((i) => [i, Number(nsSysctl(ns, `net.ipv4.conf.${i}.rp_filter`))])),
      addrs: ip('-n', ns, '-4', '-o', 'addr', 'show')
        .split('\n')
        .filter((l) => l.includes('inet ') && !/^\d+: lo\s/.test(l))
        .map((l) => `${/inet (\S+)\//.exec(l)![1]}${l.includes('deprecated') ? ' deprecated' : ''}`)
        .sort(),
    });
    expect(await read()).toEqual(oracle());
    const changes = [
      () => setNsSysctl(ns, 'net.ipv4.conf.eth0.rp_filter', '1'),
      () => setNsSysctl(ns, 'net.ipv4.conf.all.rp_filter', '2'),
      () => setNsSysctl(ns, 'net.ipv4.conf.default.rp_filter', '1'),
      () => ip('-n', ns, 'addr', 'add', '192.0.2.40/24', 'dev', 'eth1'),
      () => ip('-n', ns, 'addr', 'add', '198.51.100.40/24', 'dev', 'eth0', 'valid_lft', '100', 'preferred_lft', '100'),
      () => ip('-n', ns, 'addr', 'change', '198.51.100.40/24', 'dev', 'eth0', 'valid_lft', '100', 'preferred_lft', '0'),
      () => setNsSysctl(ns, 'net.ipv4.conf.eth1.rp_filter', '2'),
      () => ip('-n', ns, 'addr', 'del', '192.0.2.40/24', 'dev', 'eth1'),
      () => setNsSysctl(ns, 'net.ipv4.conf.eth0.rp_filter', '0'),
    ];
    for (const change of changes) {
      expect(await read()).toEqual(await read());
      change();
      expect(await read()).toEqual(oracle());
    }
    expect(oracle().addrs).toEqual(['198.51.100.40 deprecated']);
  });

  it('a memo serves only the passes it is given to: one-shot passes (none) plan in full, another memo starts empty', async () => {
    const ns = makeNs();
    const d = desiredFor(ns, BODY);
    await converge(d);
    await unchangedPasses(d, 2);
    const real = openNamespace(ns);
    for (let i = 0; i < 2; i++) expect((await reconcileNamespace(real, d, { mode: 'enforce' })).converged).toBe(true);
    const other = new PassMemo();
    await reconcileNamespace(real, d, { mode: 'enforce', memo: other });
    expect(other.stats).toEqual({ hits: 0, stored: 1 });
    await reconcileNamespace(real, d, { mode: 'enforce', memo: other });
    expect(other.stats).toEqual({ hits: 1, stored: 1 });
    assertDesired(ns);
  });
});
