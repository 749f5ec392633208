// What happens to the endpoints of an interface that loses carrier, as decisions
// over time. Pure: the daemon feeds link observations and monotonic timestamps
// in, arms a timer for `nextDueAt`, and makes the pass honour `withdrawn`.
//
// Why withdraw at all: an endpoint on a dead link still makes the kernel spend a
// connection's subflow limit on joins that cannot succeed, and the kernel never
// retries a subflow that failed or closed. Deleting the endpoint and adding it
// back (same id) once the link works makes the kernel open a subflow from it on
// every existing connection, including those opened during the outage.
//
// Why wait before and after: an established subflow survives a short flap on
// its own (so a flap shorter than `holdMs` changes nothing), and a re-add the
// instant carrier returns can race neighbour resolution and lose the join for
// good; the link counts as usable again once carrier has been stable for
// `settleMs`, or earlier when its gateway neighbour is known to be reachable.
import type { LinkDownPolicy } from './schema-routing.js';
import { endpointKey } from './address.js';
import type { LinkHold, LiveAddress, LiveEndpoint, LiveLink, LiveNamespace } from './model.js';

/** Carrier stable this long before endpoints come back. */
export const DEFAULT_SETTLE_MS = 1000;

export interface LinkLifecycleOptions {
  policy: LinkDownPolicy;
  holdMs: number;
  settleMs?: number;
}

/** One observation of an interface: from a dump, an RTM_NEWLINK or RTM_DELLINK (present false). */
export interface LinkObservation {
  name: string;
  /** IFF_UP and IFF_LOWER_UP (carrier); a deleted interface has neither. */
  up: boolean;
  lowerUp: boolean;
  present?: boolean;
  /** Monotonic milliseconds (performance.now(), process.hrtime). */
  at: number;
}

interface LinkState {
  usable: boolean;
  /** When `usable` last changed (or was first seen). */
  since: number;
  withdrawn: boolean;
  /** The gateway neighbour answered since carrier came back. */
  neighbourOk: boolean;
}

export type LinkDecision = { iface: string; action: 'withdraw' | 'restore'; at: number; after: number };

export class LinkLifecycle {
  private readonly links = new Map<string, LinkState>();
  /** endpointKey -> the id a withdrawn endpoint had, so it comes back with the same one. */
  private readonly ids = new Map<string, number>();
  private opts: Required<LinkLifecycleOptions>;

  constructor(opts: LinkLifecycleOptions) {
    this.opts = { settleMs: DEFAULT_SETTLE_MS, ...opts };
  }

  /** A config change; `keep` restores every withdrawn interface at the next decide(). */
  configure(opts: LinkLifecycleOptions): void {
    this.opts = { settleMs: DEFAULT_SETTLE_MS, ...opts };
  }

  observe(o: LinkObservation): void {
    const usable = o.present !== false && o.up && o.lowerUp;
    const s = this.links.get(o.name);
    if (!s) {
      this.links.set(o.name, { usable, since: o.at, withdrawn: false, neighbourOk: false });
      return;
    }
    if (s.usable === usable) return;
    s.usable = usable;
    s.since = o.at;
    s.neighbourOk = false;
  }

  /** Every link of a dump at once (a resync); interfaces missing from it count as gone. */
  observeAll(links: readonly LiveLink[], at: number): void {
    const seen = new Set<string>();
    for (const l of links) {
      seen.add(l.name);
      this.observe({ name: l.name, up: l.up, lowerUp: l.lowerUp, at });
    }
    for (const name of this.links.keys()) if (!seen.has(name)) this.observe({ name, up: false, lowerUp: false, present: false, at });
  }

  /** The gateway neighbour of `iface` is reachable (NUD_REACHABLE): the link works now. */
  neighbourReachable(iface: string): void {
    const s = this.links.get(iface);
    if (s?.usable) s.neighbourOk = true;
  }

  /**
   * Withdrawals and restorations due at `now` (applied to the state: call once
   * per pass), and when the next one may fall due, for a timer.
   */
  decide(now: number): { decisions: LinkDecision[]; nextDueAt?: number } {
    const decisions: LinkDecision[] = [];
    let next: number | undefined;
    const due = (t: number) => {
      next = next === undefined ? t : Math.min(next, t);
    };
    for (const [iface, s] of [...this.links].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      if (this.opts.policy === 'keep') {
        if (s.withdrawn) {
          s.withdrawn = false;
          decisions.push({ iface, action: 'restore', at: now, after: now - s.since });
        }
        continue;
      }
      if (!s.usable && !s.withdrawn) {
        const at = s.since + this.opts.holdMs;
        if (now >= at) {
          s.withdrawn = true;
          decisions.push({ iface, action: 'withdraw', at: now, after: now - s.since });
        } else due(at);
      } else if (s.usable && s.withdrawn) {
        const at = s.since + this.opts.settleMs;
        if (now >= at || s.neighbourOk) {
          s.withdrawn = false;
          decisions.push({ iface, action: 'restore', at: now, after: now - s.since });
        } else due(at);
      }
    }
    return next === undefined ? { decisions } : { decisions, nextDueAt: next };
  }

  /** Interfaces whose endpoints must be absent now. */
  withdrawn(): Set<string> {
    return new Set([...this.links].filter(([, s]) => s.withdrawn).map(([n]) => n));
  }

  /** Remembers the ids of endpoints about to be deleted for a withdrawal. */
  rememberIds(endpoints: readonly Pick<LiveEndpoint, 'address' | 'port' | 'id'>[]): void {
    for (const e of endpoints) this.ids.set(endpointKey(e.address, e.port), e.id);
  }

  /** The id an endpoint had before it was withdrawn (undefined: let the kernel pick, or the config pins it). */
  idFor(address: string, port?: number): number | undefined {
    return this.ids.get(endpointKey(address, port));
  }

  /** Forgets an id once its endpoint is back (or no longer declared). */
  forgetId(address: string, port?: number): void {
    this.ids.delete(endpointKey(address, port));
  }

  /** endpointKey -> id of every endpoint withdrawn and not back yet (the planner's LinkHold.ids). */
  rememberedIds(): ReadonlyMap<string, number> {
    return this.ids;
  }
}

type Placed = { address: string; dev?: string; ifindex?: number };

/** Resolves the interface an endpoint belongs to: its `dev`, else the one holding its address. */
function linkNamer(links: readonly LiveLink[], addresses: readonly LiveAddress[]): (e: Placed) => string | undefined {
  const nameOf = new Map(links.map((l) => [l.ifindex, l.name]));
  const ifOfAddr = new Map(addresses.map((a) => [a.address, a.ifindex]));
  return (e) => {
    const ifindex = e.ifindex ?? ifOfAddr.get(e.address);
    return e.dev ?? (ifindex === undefined ? undefined : nameOf.get(ifindex));
  };
}

/**
 * Splits the endpoints the namespace should hold into those to keep and those
 * to hold back because their interface is withdrawn. An endpoint belongs to the
 * interface named by its `dev`, else to the one holding its address.
 */
export function partitionByLink<E extends { address: string; dev?: string; ifindex?: number }>(
  endpoints: readonly E[],
  withdrawn: ReadonlySet<string>,
  links: readonly LiveLink[],
  addresses: readonly LiveAddress[],
): { active: E[]; held: E[] } {
  if (withdrawn.size === 0) return { active: [...endpoints], held: [] };
  const linkOf = linkNamer(links, addresses);
  const active: E[] = [];
  const held: E[] = [];
  for (const e of endpoints) {
    const name = linkOf(e);
    (name !== undefined && withdrawn.has(name) ? held : active).push(e);
  }
  return { active, held };
}

/**
 * What the link lifecycle does to one pass's resolved endpoints. With a hold
 * (`watch`), endpoints on a withdrawn interface are held back; without one (a
 * one-shot `apply` or `plan`, which cannot tell how long a link has been down)
 * they stay, and those on an interface without carrier right now are named.
 */
export function splitByLink<E extends Placed>(
  endpoints: readonly E[],
  live: Pick<LiveNamespace, 'links' | 'addresses'>,
  policy: LinkDownPolicy,
  hold: LinkHold | undefined,
): { active: E[]; held: { e: E; iface: string }[]; noCarrier: { e: E; iface: string }[] } {
  const out = { active: [] as E[], held: [] as { e: E; iface: string }[], noCarrier: [] as { e: E; iface: string }[] };
  if (policy === 'keep' || endpoints.length === 0) return { ...out, active: [...endpoints] };
  const linkOf = linkNamer(live.links, live.addresses);
  const dead = new Set(live.links.filter((l) => !(l.up && l.lowerUp)).map((l) => l.name));
  for (const e of endpoints) {
    const iface = linkOf(e);
    if (iface !== undefined && hold?.withdrawn.has(iface)) {
      out.held.push({ e, iface });
      continue;
    }
    out.active.push(e);
    if (!hold && iface !== undefined && dead.has(iface)) out.noCarrier.push({ e, iface });
  }
  return out;
}

/** How a link that cannot carry traffic is described: down, without carrier, or gone. */
export function linkTrouble(links: readonly LiveLink[], iface: string): string {
  const l = links.find((x) => x.name === iface);
  if (!l) return `link ${iface} is gone`;
  return l.up ? `link ${iface} without carrier` : `link ${iface} down`;
}
