// `watch`'s side of `linkDown: withdraw`: one LinkLifecycle per managed
// namespace, fed by each pass with the links that pass read (never older
// evidence), and one timer per namespace for the moment a hold or a settle time
// runs out. The timer only marks the namespace: the pass that follows reads the
// links again, decides, and writes. Keyed by the namespace's identity, so one
// deleted and re-created under the same name starts with nothing withdrawn.
//
// No neighbour subscription: RTNLGRP_NEIGH fires on every ARP/ND refresh of
// every neighbour, and each notification would cost a pass; the settle time
// (carrier stable for DEFAULT_SETTLE_MS) makes the link usable again instead.
import { DEFAULT_SETTLE_MS, LinkLifecycle, linkTrouble, partitionByLink, type LinkDecision } from '../core/link-lifecycle.js';
import { formatDuration } from '../core/duration.js';
import { monotonicNow } from '../core/max-age.js';
import { DEFAULT_LINK_DOWN_HOLD_MS } from '../core/schema-routing.js';
import { endpointKey } from '../core/address.js';
import type { DesiredNamespace, LinkHold, LiveNamespace } from '../core/model.js';
import type { NetnsIdentity } from '../kernel/netns.js';
import type { Logger as PassLogger } from '../apply/reconcile.js';
import { sameIdentity } from './namespace-registry.js';

interface Entry {
  identity: NetnsIdentity | undefined;
  life: LinkLifecycle;
  timer?: NodeJS.Timeout;
  /** Withdrawn interface -> why and since when (wall clock, for people). */
  why: Map<string, { reason: string; since?: string }>;
  /** Links without carrier when first seen: how long they have been so is unknown. */
  unknown: Set<string>;
  /**
   * The last hold and what it was decided from. A converged resync hands back the
   * very same live state (the pass memo); with no hold or settle time running,
   * deciding again from it would find nothing new, so the hold is reused.
   */
  last?: { live: LiveNamespace; desired: DesiredNamespace; hold: LinkHold };
}

export interface LinkWatchOptions {
  /** The namespace needs a pass: a hold or a settle time ran out. */
  mark(netns: string, reason: string): void;
  settleMs?: number;
  /** Monotonic milliseconds (tests may drive it). */
  now?: () => number;
}

export class LinkWatch {
  private readonly entries = new Map<string, Entry>();
  private readonly now: () => number;
  private stopped = false;

  constructor(private readonly o: LinkWatchOptions) {
    this.now = o.now ?? monotonicNow;
  }

  /** The hook a pass gives the apply engine (ReconcileOptions.linkHold), or undefined when endpoints are not managed. */
  holdFor(ns: string, identity: NetnsIdentity | undefined, desired: DesiredNamespace, log: PassLogger): ((live: LiveNamespace) => LinkHold) | undefined {
    if (desired.endpoints === undefined) {
      this.forget(ns);
      return undefined;
    }
    return (live) => this.hold(ns, identity, desired, live, log);
  }

  private hold(ns: string, identity: NetnsIdentity | undefined, desired: DesiredNamespace, live: LiveNamespace, log: PassLogger): LinkHold {
    let e = this.entries.get(ns);
    if (e && !sameIdentity(e.identity, identity)) {
      this.forget(ns);
      e = undefined;
    }
    // Checked first: a converged resync of a namespace with nothing running ends here.
    if (e?.last?.live === live && e.last.desired === desired && e.timer === undefined) return e.last.hold;
    const opts = { policy: desired.linkDown?.policy ?? 'withdraw', holdMs: desired.linkDown?.holdMs ?? DEFAULT_LINK_DOWN_HOLD_MS, settleMs: this.o.settleMs ?? DEFAULT_SETTLE_MS };
    const now = this.now();
    if (!e) {
      e = { identity, life: new LinkLifecycle(opts), why: new Map(), unknown: new Set(live.links.filter((l) => !(l.up && l.lowerUp)).map((l) => l.name)) };
      this.entries.set(ns, e);
      // First sight (start, a new or re-created namespace): a link already without
      // carrier has been so for an unknown time. It counts as down for the hold
      // already, so that an endpoint is not added to a dead link only to be
      // withdrawn moments later; it comes back once the link is usable.
      e.life.observeAll(live.links, now - opts.holdMs);
    }
    e.life.configure(opts);
    e.life.observeAll(live.links, now);
    const { decisions, nextDueAt } = e.life.decide(now);
    for (const d of decisions) this.note(e, d, live, log);
    e.unknown.clear();
    const withdrawn = e.life.withdrawn();
    // Ids of the endpoints this pass is about to delete, so they come back with the same ones.
    const onWithdrawn = partitionByLink(live.endpoints, withdrawn, live.links, live.addresses).held;
    // An endpoint whose interface vanished is bound to an ifindex no link has: known by its declaration.
    const onVanished = new Set((desired.endpoints ?? []).filter((d) => d.address !== undefined && d.dev !== undefined && withdrawn.has(d.dev)).map((d) => endpointKey(d.address!, d.port)));
    for (const x of live.endpoints) if (onVanished.has(endpointKey(x.address, x.port)) && !onWithdrawn.includes(x)) onWithdrawn.push(x);
    e.life.rememberIds(onWithdrawn.filter((x) => !x.flags.includes('implicit')));
    for (const x of live.endpoints) if (!onWithdrawn.includes(x)) e.life.forgetId(x.address, x.port);
    this.arm(ns, e, nextDueAt);
    const hold: LinkHold = { withdrawn: new Map([...withdrawn].map((i) => [i, e.why.get(i) ?? { reason: linkTrouble(live.links, i) }])), ids: e.life.rememberedIds() };
    // Only a hold that no running time can change is worth keeping.
    e.last = nextDueAt === undefined ? { live, desired, hold } : undefined;
    return hold;
  }

  private note(e: Entry, d: LinkDecision, live: LiveNamespace, log: PassLogger): void {
    const trouble = linkTrouble(live.links, d.iface);
    if (d.action === 'withdraw' && e.unknown.has(d.iface)) {
      e.why.set(d.iface, { reason: `${trouble} when first seen (for how long is unknown)` });
      log.info({ iface: d.iface }, `${trouble} when first seen: withdrawing its endpoints until it is usable`);
    } else if (d.action === 'withdraw') {
      const since = new Date(Date.now() - d.after).toISOString();
      e.why.set(d.iface, { reason: `${trouble} for ${formatDuration(Math.round(d.after / 100) * 100)}`, since });
      log.info({ iface: d.iface, afterMs: Math.round(d.after), since }, `${trouble} for the hold: withdrawing its endpoints`);
    } else {
      e.why.delete(d.iface);
      log.info({ iface: d.iface, afterMs: Math.round(d.after) }, `link ${d.iface} usable again: restoring its endpoints`);
    }
  }

  private arm(ns: string, e: Entry, dueAt: number | undefined): void {
    if (e.timer) clearTimeout(e.timer);
    e.timer = undefined;
    if (dueAt === undefined || this.stopped) return;
    e.timer = setTimeout(() => {
      e.timer = undefined;
      this.o.mark(ns, 'link-hold');
    }, Math.max(0, Math.ceil(dueAt - this.now())));
    // A pending hold must not keep a stopping daemon alive.
    e.timer.unref();
  }

  /** Interfaces withdrawn now, per namespace (for tests and status). */
  withdrawn(ns: string): string[] {
    return [...(this.entries.get(ns)?.life.withdrawn() ?? [])].sort();
  }

  /** The namespace left the managed set, or is another one now: nothing of it is kept. */
  forget(ns: string): void {
    const e = this.entries.get(ns);
    if (e?.timer) clearTimeout(e.timer);
    this.entries.delete(ns);
  }

  stop(): void {
    this.stopped = true;
    for (const ns of [...this.entries.keys()]) this.forget(ns);
  }
}
