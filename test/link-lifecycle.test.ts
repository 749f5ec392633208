// Withdrawing and restoring the endpoints of a link that lost carrier, over a
// fake monotonic clock: flaps shorter than the hold change nothing, a longer
// loss withdraws at hold, carrier back restores only once it has been stable
// (or the gateway answered), ids come back, and the timer says when to look.
import { describe, expect, it } from 'vitest';
import { LinkLifecycle, partitionByLink } from '../src/core/link-lifecycle.js';
import type { LiveAddress, LiveLink } from '../src/core/model.js';

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
