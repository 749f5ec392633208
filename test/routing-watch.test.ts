// Source routing under `watch` on the real kernel: route and rule drift is
// repaired from rtnetlink notifications (no resync timer in these tests: it is
// a minute), an address added to a listed interface gets its rule and one
// removed loses it, an interface down and up gets its flushed table back, and
// removing `sourceRouting` from the config removes only what the tool created;
// the change feed wakes a namespace only for routes that matter to it.
// iproute2 is the oracle.
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { ip, requireRoot } from './helpers/netns.js';
import { daemonTestScope, eventually, metrics, metricValue } from './helpers/daemon.js';
import { closeNamespace, openNamespace, subscribeNamespace } from '../src/kernel/namespace.js';
import type { RtnlEvent } from '../src/kernel/events.js';

requireRoot();
const scope = daemonTestScope('rtA');
afterEach(() => scope.stopDaemons());
afterAll(() => scope.cleanup());

/** A namespace with two veth uplinks (peers stay in it, so carrier is up): c1 198.51.100.2/24, c2 203.0.113.2/24. */
function client(): string {
  const ns = scope.netns();
  for (const [l, p] of [
    ['c1', 'p1'],
    ['c2', 'p2'],
  ] as const) {
    ip('-n', ns, 'link', 'add', l, 'type', 'veth', 'peer', 'name', p);
    ip('-n', ns, 'link', 'set', p, 'up');
    ip('-n', ns, 'link', 'set', l, 'up');
  }
  ip('-n', ns, 'addr', 'add', '198.51.100.2/24', 'dev', 'c1');
  ip('-n', ns, 'addr', 'add', '203.0.113.2/24', 'dev', 'c2');
  return ns;
}

function config(ns: string, routing: boolean): string {
  return [
    'version: 1',
    'namespaces:',
    `  - netns: ${ns}`,
    '    endpoints:',
    '      - dev: c1',
    '        flags: [subflow]',
    '      - dev: c2',
    '        flags: [subflow]',
    ...(routing ? ['    sourceRouting:', '      c1: { table: 101, gateway: 198.51.100.1 }', '      c2: { table: 102, gateway: 203.0.113.1 }'] : []),
    '',
  ].join('\n');
}

const rules = (ns: string) => ip('-n', ns, 'rule', 'show');
const table = (ns: string, t: number) => ip('-n', ns, 'route', 'show', 'table', String(t));

describe('source routing under watch', () => {
  it('repairs a route and a rule deleted by hand, and follows addresses of a listed interface', async () => {
    const ns = client();
    const d = await scope.start(scope.configFile(config(ns, true)));
    await eventually('table 102 and both rules', () => /default via 203\.0\.113\.1 dev c2 proto 213/.test(table(ns, 102)) && /from 198\.51\.100\.2 lookup 101 proto 213/.test(rules(ns)) && /from 203\.0\.113\.2 lookup 102 proto 213/.test(rules(ns)));

    ip('-n', ns, 'route', 'del', 'default', 'table', '102');
    await eventually('the default route of table 102 back', () => /default via 203\.0\.113\.1 dev c2 proto 213/.test(table(ns, 102)));
    // Four routes at start and the repair: routing writes count as operations like endpoint writes.
    expect(metricValue(await metrics(d.url), 'mptcp_reconciler_operations_total', { op: 'add-route' })).toBeGreaterThanOrEqual(5);
    ip('-n', ns, 'rule', 'del', 'from', '198.51.100.2', 'lookup', '101');
    await eventually('the rule of 198.51.100.2 back', () => /from 198\.51\.100\.2 lookup 101 proto 213/.test(rules(ns)));

    // A second address on c2: its endpoint (derived from dev) and its rule, and the rule goes with the address.
    ip('-n', ns, 'addr', 'add', '203.0.113.9/24', 'dev', 'c2');
    await eventually('a rule for 203.0.113.9', () => /from 203\.0\.113\.9 lookup 102 proto 213/.test(rules(ns)));
    expect(ip('-n', ns, 'mptcp', 'endpoint', 'show')).toMatch(/203\.0\.113\.9 id \d+ subflow dev c2/);
    ip('-n', ns, 'addr', 'del', '203.0.113.9/24', 'dev', 'c2');
    await eventually('the rule of 203.0.113.9 gone', () => !/203\.0\.113\.9/.test(rules(ns)));
    expect(rules(ns)).toMatch(/from 203\.0\.113\.2 lookup 102 proto 213/);
  }, 30_000);

  it('an interface set down and up again gets its table back (the kernel flushed it); the rules stay throughout', async () => {
    const ns = client();
    await scope.start(scope.configFile(config(ns, true)));
    await eventually('table 102 filled', () => /default via 203\.0\.113\.1 dev c2 proto 213/.test(table(ns, 102)));
    ip('-n', ns, 'link', 'set', 'c2', 'down');
    await eventually('table 102 flushed by the kernel', () => table(ns, 102).trim() === '');
    expect(rules(ns)).toMatch(/from 203\.0\.113\.2 lookup 102 proto 213/);
    ip('-n', ns, 'link', 'set', 'c2', 'up');
    await eventually('table 102 filled again', () => /default via 203\.0\.113\.1 dev c2 proto 213/.test(table(ns, 102)) && /203\.0\.113\.0\/24 dev c2 proto 213/.test(table(ns, 102)));
    expect(rules(ns)).toMatch(/from 203\.0\.113\.2 lookup 102 proto 213/);
  }, 30_000);

  it('removing sourceRouting removes only what the tool created; foreign routes and rules in its tables stay', async () => {
    const ns = client();
    const file = scope.configFile(config(ns, true));
    await scope.start(file);
    await eventually('both tables filled', () => /default via 198\.51\.100\.1/.test(table(ns, 101)) && /default via 203\.0\.113\.1/.test(table(ns, 102)));
    // Someone else's route and rule in the tool's table: never the tool's to touch.
    ip('-n', ns, 'route', 'add', '192.0.2.0/24', 'dev', 'c2', 'table', '102');
    ip('-n', ns, 'rule', 'add', 'from', '192.0.2.5', 'lookup', '102', 'pref', '10000');

    writeFileSync(file, config(ns, false));
    await eventually('the tool\'s rules gone', () => !/proto 213/.test(rules(ns)), 10_000);
    await eventually('the tool\'s routes gone', () => !/proto 213/.test(ip('-n', ns, 'route', 'show', 'table', 'all')), 10_000);
    expect(table(ns, 102)).toMatch(/192\.0\.2\.0\/24 dev c2/);
    expect(rules(ns)).toMatch(/from 192\.0\.2\.5 lookup 102/);
    // The endpoints stay: only the routing key went.
    expect(ip('-n', ns, 'mptcp', 'endpoint', 'show')).toMatch(/203\.0\.113\.2 id \d+ subflow dev c2/);
  }, 30_000);

  it('the change feed wakes a namespace for routes of its declared tables and the tool\'s own, not for the rest', async () => {
    const ns = client();
    const seen: RtnlEvent[] = [];
    const feed = subscribeNamespace(ns, undefined, { onEvents: (e) => seen.push(...e), onOverflow: () => {} });
    try {
      // The first routing read joins the route and rule groups.
      const live = await openNamespace(ns).readLive({ routing: { tables: [102] } });
      expect(live.rules?.some((r) => r.table === 254)).toBe(true);
      ip('-n', ns, 'route', 'add', '192.0.2.0/24', 'dev', 'c1', 'table', '500');
      ip('-n', ns, 'route', 'add', '192.0.2.0/24', 'dev', 'c2', 'table', '102');
      await eventually('the route in table 102', () => seen.some((e) => e.kind === 'newroute' && e.table === 102));
      ip('-n', ns, 'rule', 'add', 'from', '192.0.2.9', 'lookup', '500');
      await eventually('the rule', () => seen.some((e) => e.kind === 'newrule'));
      // Sent before the table-102 route, so it would have arrived by now: it was dropped.
      expect(seen.filter((e) => e.table === 500)).toEqual([]);
    } finally {
      feed.close();
      closeNamespace(ns);
    }
  });
});
