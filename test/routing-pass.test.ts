// The pure pieces around a source-routing pass: the endpoint adds held back when
// their rule failed, the tool's tables printed back as config (show, plan's
// diff), doctor's walk of the rules for a source address, and the change
// feed's route notifications (table and protocol, which decide whether a
// namespace is woken).
import { describe, expect, it } from 'vitest';
import { refuseWithoutRule } from '../src/apply/routing-step.js';
import { routingToConfig } from '../src/core/live-to-config.js';
import type { LiveNamespace, Operation, RoutingOpResult } from '../src/core/model.js';
import { RTPROT_RECONCILER, type LiveRoute, type LiveRule } from '../src/core/source-routing.js';
import { checkSourceRoute, routeFromSource, type NamespaceFacts } from '../src/doctor/rules.js';
import { parseRtnlMessages } from '../src/kernel/events.js';

const live = (extra: Partial<LiveNamespace> = {}): LiveNamespace => ({
  netns: 't',
  endpoints: [],
  limits: { subflows: 2, addAddrAccepted: 0 },
  mptcp: { enabled: true },
  rpFilter: {},
  links: [
    { ifindex: 2, name: 'c1', up: true, lowerUp: true },
    { ifindex: 3, name: 'c2', up: true, lowerUp: true },
  ],
  addresses: [
    { ifindex: 2, family: 4, address: '198.51.100.2', prefixlen: 24, scope: 'global', tentative: false, dadfailed: false, deprecated: false, temporary: false },
    { ifindex: 3, family: 4, address: '203.0.113.2', prefixlen: 24, scope: 'global', tentative: false, dadfailed: false, deprecated: false, temporary: false },
  ],
  ...extra,
});
const route = (r: Partial<LiveRoute>): LiveRoute => ({ family: 4, table: 102, dst: '0.0.0.0', dstLen: 0, ifindex: 3, scope: 'universe', protocol: RTPROT_RECONCILER, other: false, ...r });
const rule = (r: Partial<LiveRule>): LiveRule => ({ family: 4, priority: 10000, src: '203.0.113.2', srcLen: 32, table: 102, protocol: RTPROT_RECONCILER, other: false, ...r });
const mainRules = [rule({ priority: 0, src: '0.0.0.0', srcLen: 0, table: 255, protocol: 2 }), rule({ priority: 32766, src: '0.0.0.0', srcLen: 0, table: 254, protocol: 2 })];

describe('an endpoint waits for its rule', () => {
  it('holds back only the adds whose source rule failed, and keeps plan order', () => {
    const add = (address: string): Operation => ({ op: 'add', endpoint: { address, flags: ['subflow'] }, disruptive: false });
    const ops = [add('198.51.100.2'), add('203.0.113.2'), { op: 'delete', id: 9, endpoint: { address: '192.0.2.9', flags: [] }, disruptive: true } as Operation];
    const routing: RoutingOpResult[] = [
      { op: 'add-rule', rule: rule({}), reason: 'x', when: 'before', result: 'failed', error: 'EPERM' },
      { op: 'add-rule', rule: rule({ src: '198.51.100.2', table: 101 }), reason: 'x', when: 'before', result: 'ok' },
    ];
    const r = refuseWithoutRule(ops, routing);
    expect(r.run).toEqual([ops[0], ops[2]]);
    const merged = r.merge([{ ...ops[0]!, result: 'ok' }, { ...ops[2]!, result: 'ok' }]);
    expect(merged.map((o) => o.result)).toEqual(['ok', 'skipped', 'ok']);
    expect(merged[1]!.error).toContain('rule from 203.0.113.2');
  });
});

describe('the tool\'s tables as config', () => {
  it('shows only protocol-213 routes and rules, with gateway and a non-default priority', () => {
    const notes: string[] = [];
    const l = live({
      routes: [
        route({ gateway: '203.0.113.1' }),
        route({ dst: '203.0.113.0', dstLen: 24, scope: 'link' }),
        route({ family: 6, dst: '::', gateway: 'fe80::1' }),
        route({ table: 101, ifindex: 2, gateway: '198.51.100.1', protocol: 4 }),
      ],
      rules: [...mainRules, rule({ priority: 200 }), rule({ src: '198.51.100.2', table: 101, protocol: 3 })],
    });
    expect(routingToConfig(l, notes)).toEqual({ c2: { table: 102, gateway: '203.0.113.1', gateway6: 'fe80::1', priority: 200 } });
    expect(notes).toEqual([]);
  });

  it('says so when a rule of the tool points at a table without its routes', () => {
    const notes: string[] = [];
    expect(routingToConfig(live({ routes: [], rules: [rule({})] }), notes)).toEqual({});
    expect(notes[0]).toMatch(/rule from 203\.0\.113\.2 lookup 102 .* without the tool's routes/);
  });
});

describe('doctor: where joins from a source address leave', () => {
  const defaults = [
    { family: 4 as const, table: 254, ifindexes: [2], gateway: '198.51.100.1' },
    { family: 4 as const, table: 102, ifindexes: [3], gateway: '203.0.113.1' },
  ];
  it('walks the rules by priority to the first table with a default route', () => {
    expect(routeFromSource('203.0.113.2', 4, mainRules, defaults)?.route.ifindexes).toEqual([2]);
    expect(routeFromSource('203.0.113.2', 4, [...mainRules, rule({})], defaults)?.route.table).toBe(102);
    // A rule for another source, or with selectors a join does not carry, does not apply.
    expect(routeFromSource('203.0.113.2', 4, [...mainRules, rule({ src: '203.0.113.3' })], defaults)?.route.table).toBe(254);
    expect(routeFromSource('203.0.113.2', 4, [...mainRules, rule({ other: true })], defaults)?.route.table).toBe(254);
    expect(routeFromSource('203.0.113.2', 4, [...mainRules, rule({ src: '203.0.113.0', srcLen: 24 })], defaults)?.route.table).toBe(102);
  });

  it('flags the endpoint on c2 while its joins leave by c1, and only then', () => {
    const facts = (rules: LiveRule[]): NamespaceFacts => ({
      netns: 'edge',
      live: live({ endpoints: [{ id: 2, family: 4, address: '203.0.113.2', flags: ['subflow'], ifindex: 3 }, { id: 1, family: 4, address: '198.51.100.2', flags: ['subflow'], ifindex: 2 }] }),
      defaultRoutes: defaults,
      rules,
      managers: [],
    });
    const found = checkSourceRoute(facts(mainRules));
    expect(found.map((f) => [f.code, f.subject])).toEqual([['MPTCP027', 'endpoint 203.0.113.2']]);
    expect(found[0]!.fix).toMatch(/^in netns edge, declare `sourceRouting: \{ c2: \{ table: 101, gateway: GATEWAY \} \}`/);
    expect(checkSourceRoute(facts([...mainRules, rule({})]))).toEqual([]);
  });
});

describe('route notifications', () => {
  it('carry the table (RTA_TABLE beyond 255) and the protocol', () => {
    // nlmsghdr (16) + rtmsg (12) + RTA_TABLE (8): RTM_DELROUTE of table 1000, protocol 213.
    const b = Buffer.alloc(36);
    b.writeUInt32LE(36, 0);
    b.writeUInt16LE(25, 4);
    b[16] = 2; // AF_INET
    b[20] = 252; // RT_TABLE_COMPAT: the real table is in the attribute
    b[21] = 213;
    b.writeUInt16LE(8, 28);
    b.writeUInt16LE(15, 30);
    b.writeUInt32LE(1000, 32);
    expect(parseRtnlMessages(b).events).toEqual([{ kind: 'delroute', table: 1000, protocol: 213 }]);
  });
});
