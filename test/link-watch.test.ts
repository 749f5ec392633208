// watch's link lifecycle per namespace, without a kernel: a fake monotonic
// clock and vitest's fake timers. A hold that runs out marks the namespace for
// a pass (and nothing else); a link already without carrier when first seen
// counts as down for the hold; a re-created namespace starts clean; forgetting
// a namespace cancels its timer.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { endpointKey } from '../src/core/address.js';
import type { DesiredNamespace, LiveEndpoint, LiveLink, LiveNamespace } from '../src/core/model.js';
import { LinkWatch } from '../src/daemon/link-watch.js';

const log = { info: () => {}, warn: () => {}, error: () => {}, debug: () => {} };
const desired: DesiredNamespace = {
  netns: 'n1',
  mptcp: {},
  limits: {},
  endpoints: [{ address: '203.0.113.2', dev: 'c2', flags: ['subflow'] }],
  rpFilter: {},
  prune: true,
  conflicts: 'fail',
  linkDown: { policy: 'withdraw', holdMs: 3000 },
};
const ep: LiveEndpoint = { id: 7, family: 4, address: '203.0.113.2', flags: ['subflow'], ifindex: 3 };
const live = (lowerUp: boolean, endpoints: LiveEndpoint[] = [ep]): LiveNamespace => ({
  netns: 'n1',
  endpoints,
  limits: { subflows: 2, addAddrAccepted: 0 },
  mptcp: {},
  rpFilter: {},
  links: [{ ifindex: 3, name: 'c2', up: true, lowerUp } satisfies LiveLink],
  addresses: [],
});

let clock = 0;
let marks: string[] = [];
const watch = () => new LinkWatch({ mark: (ns, why) => marks.push(`${ns}:${why}`), now: () => clock });
beforeEach(() => {
  vi.useFakeTimers();
  clock = 100_000;
  marks = [];
});
afterEach(() => vi.useRealTimers());

describe('LinkWatch', () => {
  it('a hold that runs out marks the namespace; the pass then withdraws and remembers the id', () => {
    const w = watch();
    const id = { dev: 1, ino: 1 };
    expect(w.holdFor('n1', id, desired, log)!(live(true)).withdrawn.size).toBe(0);
    clock += 10;
    expect(w.holdFor('n1', id, desired, log)!(live(false)).withdrawn.size).toBe(0);
    vi.advanceTimersByTime(2999);
    expect(marks).toEqual([]);
    clock += 3000;
    vi.advanceTimersByTime(1);
    expect(marks).toEqual(['n1:link-hold']);
    const hold = w.holdFor('n1', id, desired, log)!(live(false));
    expect([...hold.withdrawn.keys()]).toEqual(['c2']);
    expect(hold.withdrawn.get('c2')!.reason).toBe('link c2 without carrier for 3s');
    expect(hold.ids.get(endpointKey('203.0.113.2'))).toBe(7);
    // Carrier back: restored after the settle time; the id is forgotten once the endpoint is back.
    clock += 100;
    expect(w.holdFor('n1', id, desired, log)!(live(true, [])).withdrawn.size).toBe(1);
    clock += 1000;
    vi.advanceTimersByTime(1000);
    expect(marks).toEqual(['n1:link-hold', 'n1:link-hold']);
    expect(w.holdFor('n1', id, desired, log)!(live(true, [])).withdrawn.size).toBe(0);
    expect(w.holdFor('n1', id, desired, log)!(live(true)).ids.size).toBe(0);
  });

  it('the very same live state (a resync answered from the pass memo) still withdraws once the hold runs out', () => {
    const w = watch();
    const id = { dev: 1, ino: 1 };
    const up = live(true);
    const first = w.holdFor('n1', id, desired, log)!(up);
    // Nothing running: the hold of a repeated read is the one already made.
    expect(w.holdFor('n1', id, desired, log)!(up)).toBe(first);
    clock += 10;
    const down = live(false);
    expect(w.holdFor('n1', id, desired, log)!(down).withdrawn.size).toBe(0);
    clock += 3000;
    vi.advanceTimersByTime(3000);
    expect(marks).toEqual(['n1:link-hold']);
    expect([...w.holdFor('n1', id, desired, log)!(down).withdrawn.keys()]).toEqual(['c2']);
    // A new desired state (a reload) is decided again, never served from before.
    const reloaded = { ...desired, linkDown: { policy: 'keep' as const, holdMs: 3000 } };
    expect(w.holdFor('n1', id, reloaded, log)!(down).withdrawn.size).toBe(0);
  });

  it('a link without carrier when first seen is withdrawn at once; a re-created namespace starts clean', () => {
    const w = watch();
    const first = w.holdFor('n1', { dev: 1, ino: 1 }, desired, log)!(live(false));
    expect([...first.withdrawn]).toEqual([['c2', { reason: 'link c2 without carrier when first seen (for how long is unknown)' }]]);
    expect(w.withdrawn('n1')).toEqual(['c2']);
    expect(w.holdFor('n1', { dev: 1, ino: 2 }, desired, log)!(live(true)).withdrawn.size).toBe(0);
  });

  it('forgetting a namespace cancels its timer; without managed endpoints there is no hold', () => {
    const w = watch();
    const id = { dev: 1, ino: 1 };
    w.holdFor('n1', id, desired, log)!(live(true));
    w.holdFor('n1', id, desired, log)!(live(false));
    w.forget('n1');
    vi.advanceTimersByTime(10_000);
    expect(marks).toEqual([]);
    expect(w.holdFor('n1', id, { ...desired, endpoints: undefined }, log)).toBeUndefined();
    w.holdFor('n1', id, desired, log)!(live(true));
    w.holdFor('n1', id, desired, log)!(live(false));
    w.stop();
    vi.advanceTimersByTime(10_000);
    expect(marks).toEqual([]);
  });
});
