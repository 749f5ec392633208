// The watch daemon with the converged-pass memo: resyncs of an unchanged
// namespace are answered from it (also across /run/netns changes that do not
// concern the namespace), and drift made by hand, a config edit and a namespace
// re-created under its name are still acted on. iproute2 is the oracle.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { atomicWrite, eventually, startTestDaemon, tempDir } from './helpers/daemon.js';
import { createNetns, deleteNetns, ip, ipEndpoints, ipLimits, nsSysctl, requireRoot, setNsSysctl, uniqueName, veth } from './helpers/netns.js';

const made: string[] = [];
const cleanups: (() => void)[] = [];
beforeAll(() => requireRoot());
afterAll(() => {
  for (const n of made) deleteNetns(n);
  for (const c of cleanups) c();
});

function makeNs(name: string): string {
  ip('netns', 'add', name);
  if (!made.includes(name)) made.push(name);
  ip('-n', name, 'link', 'set', 'lo', 'up');
  veth(name, 'eth0', undefined, 'eth1');
  ip('-n', name, 'link', 'set', 'eth0', 'up');
  return name;
}

const config = (ns: string, subflows: number) => `version: 1
namespaces:
  - netns: ${ns}
    limits: { subflows: ${subflows}, addAddrAccepted: 2 }
    rpFilter: { eth0: loose }
    endpoints:
      - { address: 192.0.2.1, flags: [subflow] }
      - { address: 198.51.100.1, flags: [signal, backup] }
`;

const endpoints = (ns: string) =>
  ipEndpoints(ns)
    .map((e) => `${e.address}${e.signal ? ' signal' : ''}${e.subflow ? ' subflow' : ''}${e.backup ? ' backup' : ''}`)
    .sort()
    .join(', ');
const WANT = '192.0.2.1 subflow, 198.51.100.1 signal backup';

/** Waits until `n` more passes were answered from the memo. */
async function memoHits(stats: { hits: number }, n: number): Promise<void> {
  const from = stats.hits;
  await eventually(`${n} memo hits`, () => stats.hits >= from + n, 10_000);
}

describe('watch daemon with the converged-pass memo', () => {
  it('answers unchanged resyncs from the memo and still repairs drift, applies edits, and reconciles a re-created namespace', async () => {
    const ns = makeNs(uniqueName('memod'));
    const t = tempDir('memod');
    cleanups.push(t.cleanup);
    const file = join(t.dir, 'mptcp.yaml');
    writeFileSync(file, config(ns, 3));
    const d = await startTestDaemon(file, { resyncMs: 50 });
    const passMemoStats = d.daemon.memo.stats;
    try {
      expect(endpoints(ns)).toBe(WANT);
      await memoHits(passMemoStats, 10);

      // A namespace the config does not name appears: the managed one keeps its memo.
      const stored = passMemoStats.stored;
      const other = createNetns('memox');
      made.push(other);
      // The /run/netns watch fires within its 20 ms debounce; give it ample time.
      await new Promise((r) => setTimeout(r, 300));
      await memoHits(passMemoStats, 10);
      expect(passMemoStats.stored).toBe(stored);

      // Drift that no notification reports, after many memo hits.
      const id = ipEndpoints(ns).find((e) => e.address === '198.51.100.1')!.id;
      ip('-n', ns, 'mptcp', 'endpoint', 'change', 'id', String(id), 'nobackup');
      await eventually('flag flip repaired', () => endpoints(ns) === WANT);
      ip('-n', ns, 'mptcp', 'endpoint', 'delete', 'id', String(ipEndpoints(ns).find((e) => e.address === '192.0.2.1')!.id));
      await eventually('deleted endpoint restored', () => endpoints(ns) === WANT);
      ip('-n', ns, 'mptcp', 'limits', 'set', 'subflows', '1', 'add_addr_accepted', '2');
      await eventually('limits restored', () => ipLimits(ns).subflows === 3);
      setNsSysctl(ns, 'net.ipv4.conf.eth0.rp_filter', '0');
      await eventually('rp_filter restored', () => nsSysctl(ns, 'net.ipv4.conf.eth0.rp_filter') === '2');
      await memoHits(passMemoStats, 5);

      // A config edit reaches a namespace whose passes come from the memo.
      atomicWrite(file, config(ns, 5));
      await eventually('config edit applied', () => ipLimits(ns).subflows === 5);
      await memoHits(passMemoStats, 5);

      // Re-created under the same name: empty again, and fully configured.
      ip('netns', 'del', ns);
      makeNs(ns);
      await eventually('re-created namespace reconciled', () => endpoints(ns) === WANT && ipLimits(ns).subflows === 5 && nsSysctl(ns, 'net.ipv4.conf.eth0.rp_filter') === '2');
      await memoHits(passMemoStats, 5);
      const st = (await (await fetch(`${d.url}/status`)).json()) as { namespaces: Record<string, { converged: boolean; lastResult: string }> };
      expect(st.namespaces[ns]).toMatchObject({ converged: true, lastResult: 'converged' });
    } finally {
      await d.daemon.stop();
    }
  });
});
