// Withdrawing and restoring the endpoints of a link that lost carrier, over a
// fake monotonic clock: flaps shorter than the hold change nothing, a longer
// loss withdraws at hold, carrier back restores only once it has been stable
// (or the gateway answered), ids come back, and the timer says when to look.
import { describe, expect, it } from 'vitest';
import { LinkLifecycle, partitionByLink } from '../src/core/link-lifecycle.js';
import type { DesiredNamespace, LinkHold, LiveAddress, LiveEndpoint, LiveLink, LiveNamespace } from '../src/core/model.js';
import { planNamespace } from '../src/core/plan.js';
import { verifyNamespace } from '../src/core/verify.js';
import { endpointKey } from '../src/core/address.js';

const down = (name: string, at: number) => ({ name, up: true, lowerUp: false, at });
const upAt = (name: string, at: number) => ({ name, up: true, lowerUp: true, at });

function lifecycle(policy: 'withdraw' | 'keep' = 'withdraw') {
  const l = new LinkLifecycle({ policy, holdMs: 3000, settleMs: 1000 });
  l.observe(upAt('c1', 0));
  l.observe(upAt('c2', 0));
  return l;
}

describe('LinkLifecycle', () => {
  it('a flap shorter than the hold changes nothing, and no timer is left behind', () => {
    const l = lifecycle();
    l.observe(down('c2', 10_000));
    expect(l.decide(10_000)).toEqual({ decisions: [], nextDueAt: 13_000 });
    l.observe(upAt('c2', 11_000));
    expect(l.decide(13_000)).toEqual({ decisions: [] });
    expect(l.withdrawn()).toEqual(new Set());
  });

  it('carrier lost for the hold withdraws at exactly the hold, not before', () => {
    const l = lifecycle();
    l.observe(down('c2', 10_000));
    expect(l.decide(12_999).decisions).toEqual([]);
    expect(l.decide(13_000)).toEqual({ decisions: [{ iface: 'c2', action: 'withdraw', at: 13_000, after: 3000 }] });
    expect(l.withdrawn()).toEqual(new Set(['c2']));
    // Decided once: a later pass does not withdraw again.
    expect(l.decide(20_000).decisions).toEqual([]);
  });

  it('admin down and a deleted interface count as no carrier', () => {
    const l = lifecycle();
    l.observe({ name: 'c1', up: false, lowerUp: false, at: 1000 });
    l.observeAll([{ ifindex: 2, name: 'c1', up: false, lowerUp: false }], 1500);
    // c1 went down at 1000; c2 vanished from the dump at 1500.
    expect(l.decide(4000).decisions.map((d) => d.iface)).toEqual(['c1']);
    expect(l.decide(4500).decisions.map((d) => d.iface)).toEqual(['c2']);
  });

  it('carrier back restores only after it has been stable for the settle time', () => {
    const l = lifecycle();
    l.observe(down('c2', 0));
    l.decide(3000);
    l.observe(upAt('c2', 5000));
    expect(l.decide(5000)).toEqual({ decisions: [], nextDueAt: 6000 });
    // It bounced while settling: the settle time starts again.
    l.observe(down('c2', 5500));
    l.observe(upAt('c2', 5700));
    expect(l.decide(6000)).toEqual({ decisions: [], nextDueAt: 6700 });
    expect(l.decide(6700)).toEqual({ decisions: [{ iface: 'c2', action: 'restore', at: 6700, after: 1000 }] });
    expect(l.withdrawn()).toEqual(new Set());
  });

  it('a reachable gateway neighbour restores at once; one seen before carrier returned does not count', () => {
    const l = lifecycle();
    l.observe(down('c2', 0));
    l.decide(3000);
    l.neighbourReachable('c2');
    l.observe(upAt('c2', 5000));
    expect(l.decide(5100).decisions).toEqual([]);
    l.neighbourReachable('c2');
    expect(l.decide(5200).decisions).toEqual([{ iface: 'c2', action: 'restore', at: 5200, after: 200 }]);
  });

  it('keep never withdraws; switching to keep restores what was withdrawn', () => {
    const k = lifecycle('keep');
    k.observe(down('c2', 0));
    expect(k.decide(60_000)).toEqual({ decisions: [] });
    const l = lifecycle();
    l.observe(down('c2', 0));
    l.decide(3000);
    l.configure({ policy: 'keep', holdMs: 3000 });
    expect(l.decide(3500).decisions).toEqual([{ iface: 'c2', action: 'restore', at: 3500, after: 3500 }]);
  });

  it('the next due time is the earliest of several interfaces', () => {
    const l = lifecycle();
    l.observe(down('c1', 1000));
    l.observe(down('c2', 500));
    expect(l.decide(600).nextDueAt).toBe(3500);
  });

  it('remembers the ids of withdrawn endpoints so they come back with the same id', () => {
    const l = lifecycle();
    l.rememberIds([{ address: '203.0.113.10', id: 7 }, { address: '2001:db8::10', port: 10000, id: 9 }]);
    expect(l.idFor('203.0.113.10')).toBe(7);
    expect(l.idFor('2001:db8::10', 10000)).toBe(9);
    expect(l.idFor('2001:db8::10')).toBeUndefined();
    l.forgetId('203.0.113.10');
    expect(l.idFor('203.0.113.10')).toBeUndefined();
  });
});

describe('partitionByLink', () => {
  const links: LiveLink[] = [
    { ifindex: 2, name: 'c1', up: true, lowerUp: true },
    { ifindex: 3, name: 'c2', up: true, lowerUp: false },
  ];
  const addr = (ifindex: number, address: string): LiveAddress => ({ ifindex, family: 4, address, prefixlen: 24, scope: 'global', tentative: false, dadfailed: false, deprecated: false, temporary: false });
  const addresses = [addr(2, '198.51.100.10'), addr(3, '203.0.113.10')];

  it('holds back endpoints on a withdrawn interface, by dev, by ifindex or by the address it holds', () => {
    const eps = [
      { address: '198.51.100.10', dev: 'c1' },
      { address: '203.0.113.10' },
      { address: '203.0.113.11', ifindex: 3 },
      { address: '192.0.2.1' },
    ];
    expect(partitionByLink(eps, new Set(['c2']), links, addresses)).toEqual({
      active: [eps[0], eps[3]],
      held: [eps[1], eps[2]],
    });
    expect(partitionByLink(eps, new Set(), links, addresses)).toEqual({ active: eps, held: [] });
  });
});

describe('the planner under a link hold', () => {
  const links: LiveLink[] = [
    { ifindex: 2, name: 'c1', up: true, lowerUp: true },
    { ifindex: 3, name: 'c2', up: true, lowerUp: false },
  ];
  const addr = (ifindex: number, address: string): LiveAddress => ({ ifindex, family: 4, address, prefixlen: 24, scope: 'global', tentative: false, dadfailed: false, deprecated: false, temporary: false });
  const live = (endpoints: LiveEndpoint[]): LiveNamespace => ({
    netns: 'n1',
    endpoints,
    limits: { subflows: 2, addAddrAccepted: 0 },
    mptcp: {},
    rpFilter: {},
    links,
    addresses: [addr(2, '198.51.100.2'), addr(3, '203.0.113.2')],
  });
  const desired = (linkDown?: DesiredNamespace['linkDown'], prune = true): DesiredNamespace => ({
    netns: 'n1',
    mptcp: {},
    limits: {},
    endpoints: [
      { address: '198.51.100.2', flags: ['subflow'] },
      { dev: 'c2', flags: ['subflow'] },
    ],
    rpFilter: {},
    prune,
    conflicts: 'fail',
    ...(linkDown && { linkDown }),
  });
  const c1: LiveEndpoint = { id: 1, family: 4, address: '198.51.100.2', flags: ['subflow'] };
  const c2: LiveEndpoint = { id: 7, family: 4, address: '203.0.113.2', flags: ['subflow'], ifindex: 3 };
  const hold = (ids: [string, number][] = []): LinkHold => ({
    withdrawn: new Map([['c2', { reason: 'link c2 without carrier for 3s', since: '2026-12-01T10:00:00.000Z' }]]),
    ids: new Map(ids),
  });

  it('deletes the endpoints of a withdrawn interface, says why, marks it as no drift, and verifies their absence', () => {
    for (const prune of [true, false]) {
      const plan = planNamespace(desired(undefined, prune), live([c1, c2]), undefined, hold());
      expect(plan.operations).toEqual([
        { op: 'delete', id: 7, endpoint: { address: '203.0.113.2', id: 7, flags: ['subflow'], dev: 'c2', ifindex: 3 }, disruptive: true, reason: 'link c2 without carrier for 3s', linkDown: 'withdraw' },
      ]);
      expect(plan.linkDown).toEqual([
        { endpoint: '203.0.113.2', iface: 'c2', state: 'withdrawn', reason: 'link c2 without carrier since 2026-12-01T10:00:00.000Z', since: '2026-12-01T10:00:00.000Z', id: 7 },
      ]);
      expect(verifyNamespace(desired(undefined, prune), live([c1, c2]), hold()).differences).toEqual([
        'endpoints[203.0.113.2]: want absent (link c2 without carrier: withdrawn), have present id 7',
      ]);
      expect(verifyNamespace(desired(undefined, prune), live([c1]), hold()).converged).toBe(true);
      // Already gone: nothing to do, still named as held back.
      expect(planNamespace(desired(undefined, prune), live([c1]), undefined, hold()).operations).toEqual([]);
    }
  });

  it('restores with the remembered id, even where file order would give another one', () => {
    const plan = planNamespace(desired(), live([c1]), undefined, { withdrawn: new Map(), ids: new Map([[endpointKey('203.0.113.2'), 7]]) });
    expect(plan.operations).toEqual([
      { op: 'add', endpoint: { address: '203.0.113.2', id: 7, flags: ['subflow'], dev: 'c2', ifindex: 3 }, disruptive: false, reason: 'link usable again: back with id 7', linkDown: 'restore' },
    ]);
    expect(plan.linkDown).toBeUndefined();
  });

  it('keep leaves the endpoint in place, withdrawn interface or not', () => {
    const plan = planNamespace(desired({ policy: 'keep', holdMs: 3000 }), live([c1, c2]), undefined, hold());
    expect(plan.operations).toEqual([]);
    expect(plan.linkDown).toBeUndefined();
  });

  it('without a hold (apply, plan) an endpoint on a link without carrier is added anyway and named', () => {
    const plan = planNamespace(desired({ policy: 'withdraw', holdMs: 5000 }), live([c1]));
    expect(plan.operations.map((o) => [o.op, o.op === 'add' && o.endpoint.address])).toEqual([['add', '203.0.113.2']]);
    expect(plan.linkDown).toEqual([
      { endpoint: '203.0.113.2', iface: 'c2', state: 'no-carrier', reason: 'link c2 without carrier now; kept anyway (a one-shot run cannot tell for how long; watch withdraws it after 5s)' },
    ]);
    expect(planNamespace(desired({ policy: 'keep', holdMs: 5000 }), live([c1])).linkDown).toBeUndefined();
  });
});

describe('restoring under a pinned or taken id', () => {
  const links: LiveLink[] = [{ ifindex: 3, name: 'c2', up: true, lowerUp: true }];
  const live = (endpoints: LiveEndpoint[]): LiveNamespace => ({ netns: 'n1', endpoints, limits: { subflows: 2, addAddrAccepted: 0 }, mptcp: {}, rpFilter: {}, links, addresses: [] });
  const desired = (id?: number): DesiredNamespace => ({
    netns: 'n1',
    mptcp: {},
    limits: {},
    endpoints: [{ address: '203.0.113.2', dev: 'c2', flags: ['subflow'], ...(id !== undefined && { id }) }, { address: '192.0.2.9', flags: ['signal'] }],
    rpFilter: {},
    prune: true,
    conflicts: 'fail',
  });
  const hold: LinkHold = { withdrawn: new Map(), ids: new Map([[endpointKey('203.0.113.2'), 7]]) };
  const add = (d: DesiredNamespace, l: LiveEndpoint[]) => planNamespace(d, live(l), undefined, hold).operations.find((o) => o.op === 'add' && o.endpoint.address === '203.0.113.2');

  it('is still a restoration (neither drift nor a fight) when the config pins the id or someone took the old one', () => {
    expect(add(desired(9), [])).toMatchObject({ endpoint: { id: 9 }, linkDown: 'restore', reason: 'link usable again: back with id 9 (pinned)' });
    const squatter: LiveEndpoint = { id: 7, family: 4, address: '192.0.2.9', flags: ['signal'] };
    expect(add(desired(), [squatter])).toMatchObject({ linkDown: 'restore', reason: expect.stringMatching(/^link usable again: back with id \d+ \(its id 7 is taken\)$/) });
  });
});
