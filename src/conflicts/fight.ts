// Pure fight detection, per key. A key is one thing we set: an endpoint (by
// address and port), one limit, one sysctl, the rp_filter of one interface.
// The clock is injected.
//
// A fight is someone undoing OUR change to a key that the environment did not
// move: after our own first write of the key, the same key had to be repaired
// `threshold` times within `windowMs`, and between each repair and the one
// before, the namespace's links and addresses stayed as they were. So:
// - our own first write never counts (the third hand deletion is repaired);
// - an address that goes and comes back (DHCP, a cellular link) moves the
//   environment: the endpoint derived from it is deleted and added again every
//   time, and none of that counts;
// - the fight suspends only that key: every other key stays enforced.
//
// A suspended key is left alone for a backoff (backoffBaseMs, doubled with each
// further repair while the fight lasts, at most backoffMaxMs); when it ends the
// key is tried again. The fight on a key ends once our write of it has held for
// `windowMs` (a pass saw nothing to repair there). reset() forgets a namespace
// (SIGHUP, new config, namespace re-created).
import { canonicalAddress } from '../core/address.js';
import type { LiveNamespace, Operation } from '../core/model.js';

export interface FightOptions {
  /** Repairs of one key within the window that make a fight (default 3). */
  threshold?: number;
  /** Window in ms (default 5 minutes). */
  windowMs?: number;
  /** First suspension in ms (default 10 s). */
  backoffBaseMs?: number;
  /** Longest suspension in ms (default 10 minutes). */
  backoffMaxMs?: number;
  /** Clock in ms (default Date.now). */
  now?: () => number;
}

export const FIGHT_DEFAULTS = { threshold: 3, windowMs: 5 * 60_000, backoffBaseMs: 10_000, backoffMaxMs: 10 * 60_000 } as const;

export interface ContestedKey {
  key: string;
  /** Repairs within the window. */
  count: number;
  firstAt: number;
  lastAt: number;
}

/** A key left alone because of a fight over it. JSON-able (GET /status). */
export interface SuspendedKey {
  key: string;
  /** The last change we made to it, as the operation reads. */
  change: string;
  /** Repairs within the window. */
  repairs: number;
  since: number;
  /** Tried again from this time (ms); in the past once the backoff ended and the fight is not over yet. */
  until: number;
  backoffMs: number;
}

/** JSON-able state of one namespace. */
export interface FightState {
  netns: string;
  /** Some key is in a fight. */
  fighting: boolean;
  /** When the oldest current fight was detected (ms). */
  since?: number;
  /** Keys repaired more than once in the window, most repaired first. */
  contested: ContestedKey[];
  /** Keys in a fight. */
  suspended: SuspendedKey[];
  /** Longest current backoff (0 when not fighting). */
  backoffMs: number;
  /** Latest end of a current suspension (ms; 0 = nothing is suspended now). */
  nextAllowedAt: number;
  /** Manager the fight is attributed to ('unknown' unless evidence named one). */
  manager: string;
}

interface KeyRecord {
  /** Environment epoch at our last write of the key. */
  epoch: number;
  /** Repairs in the window (our first write is not one). */
  times: number[];
  change: string;
  fighting: boolean;
  since: number;
  level: number;
  until: number;
  backoffMs: number;
  lastRepairAt: number;
}

interface NsRecord {
  keys: Map<string, KeyRecord>;
  /** Bumped whenever a pass sees the links or addresses differ from the pass before. */
  epoch: number;
  envSig: string | undefined;
  envOf: LiveNamespace | undefined;
  manager: string;
}

/** An endpoint as a person writes it (the key is shown in logs and status). */
function endpointLabel(address: string, port?: number): string {
  return port !== undefined ? `${canonicalAddress(address)} port ${port}` : canonicalAddress(address);
}

/** Stable identity of an operation for drift counting: what it sets, including the value. */
export function operationKey(op: Operation): string {
  switch (op.op) {
    case 'add':
    case 'delete':
      return `${op.op} ${endpointLabel(op.endpoint.address, op.endpoint.port)}`;
    case 'set-flags':
      return `set-flags ${endpointLabel(op.endpoint.address, op.endpoint.port)} backup=${op.backup} fullmesh=${op.fullmesh}`;
    case 'set-limits': {
      const parts: string[] = [];
      if (op.subflows !== undefined) parts.push(`subflows=${op.subflows}`);
      if (op.addAddrAccepted !== undefined) parts.push(`addAddrAccepted=${op.addAddrAccepted}`);
      return `set-limits ${parts.join(' ')}`;
    }
    case 'set-sysctl':
      return `set-sysctl ${op.sysctl}=${String(op.value)}`;
    case 'set-rp-filter':
      return `set-rp-filter ${op.iface}=${op.value}`;
  }
}

/** The keys an operation sets (a set-limits may set two limits; everything else one key). */
export function operationSubjects(op: Operation): string[] {
  switch (op.op) {
    case 'add':
    case 'delete':
    case 'set-flags':
      return [`endpoint ${endpointLabel(op.endpoint.address, op.endpoint.port)}`];
    case 'set-limits': {
      const out: string[] = [];
      if (op.subflows !== undefined) out.push('limit subflows');
      if (op.addAddrAccepted !== undefined) out.push('limit add_addr_accepted');
      return out;
    }
    case 'set-sysctl':
      return [`sysctl ${op.sysctl}`];
    case 'set-rp-filter':
      return [`rp_filter ${op.iface}`];
  }
}

/**
 * Splits operations into those to run and those of suspended keys. A set-limits
 * with one limit suspended keeps the other; an operation that depends on a
 * suspended one (`dependsOn` gives the index, or -1) is held back with it.
 */
export function withoutSuspended(ops: readonly Operation[], suspended: ReadonlySet<string>, dependsOn: (i: number) => number): { run: Operation[]; held: Operation[] } {
  const run: Operation[] = [];
  const held: Operation[] = [];
  const heldIdx = new Set<number>();
  ops.forEach((op, i) => {
    const subjects = operationSubjects(op);
    const off = subjects.filter((s) => suspended.has(s));
    const dep = dependsOn(i);
    if (off.length === 0 && !(dep >= 0 && heldIdx.has(dep))) return void run.push(op);
    if (op.op === 'set-limits' && off.length < subjects.length) {
      const { subflows, addAddrAccepted, ...rest } = op;
      const keep = { ...rest, ...(off.includes('limit subflows') ? {} : { subflows }), ...(off.includes('limit add_addr_accepted') ? {} : { addAddrAccepted }) };
      const drop = { ...rest, ...(off.includes('limit subflows') ? { subflows } : {}), ...(off.includes('limit add_addr_accepted') ? { addAddrAccepted } : {}) };
      run.push(keep as Operation);
      held.push(drop as Operation);
      return;
    }
    heldIdx.add(i);
    held.push(op);
  });
  return { run, held };
}

/**
 * What the environment is, for fight detection: the links and addresses a pass
 * read (endpoint and rp_filter desired states are derived from them). Endpoints,
 * limits, sysctls and rp_filter values are what we write, so they are not in it.
 */
export function environmentSignature(live: LiveNamespace): string {
  const links = live.links.map((l) => `${l.ifindex}:${l.name}:${l.up ? 1 : 0}${l.lowerUp ? 1 : 0}`).sort();
  const addrs = live.addresses.filter((a) => !a.tentative && !a.dadfailed).map((a) => `${a.ifindex}:${a.address}/${a.prefixlen}:${a.deprecated ? 'd' : ''}`).sort();
  return `${links.join(',')}|${addrs.join(',')}`;
}

/** Limits and sysctls do not follow links or addresses: only endpoints and rp_filter keys do. */
function followsEnvironment(key: string): boolean {
  return key.startsWith('endpoint ') || key.startsWith('rp_filter ');
}

export class FightDetector {
  readonly threshold: number;
  readonly windowMs: number;
  readonly backoffBaseMs: number;
  readonly backoffMaxMs: number;
  private readonly now: () => number;
  private readonly ns = new Map<string, NsRecord>();

  constructor(opts: FightOptions = {}) {
    this.threshold = Math.max(2, opts.threshold ?? FIGHT_DEFAULTS.threshold);
    this.windowMs = opts.windowMs ?? FIGHT_DEFAULTS.windowMs;
    this.backoffBaseMs = opts.backoffBaseMs ?? FIGHT_DEFAULTS.backoffBaseMs;
    this.backoffMaxMs = Math.max(this.backoffBaseMs, opts.backoffMaxMs ?? FIGHT_DEFAULTS.backoffMaxMs);
    this.now = opts.now ?? Date.now;
  }

  private rec(netns: string): NsRecord {
    let r = this.ns.get(netns);
    if (!r) {
      r = { keys: new Map(), epoch: 0, envSig: undefined, envOf: undefined, manager: 'unknown' };
      this.ns.set(netns, r);
    }
    return r;
  }

  /** What a pass read before planning: a change of links or addresses since the last pass moves the environment. */
  observe(netns: string, live: LiveNamespace): void {
    const r = this.rec(netns);
    // The pass memo hands back the very same object when nothing changed.
    if (r.envOf === live) return;
    r.envOf = live;
    const sig = environmentSignature(live);
    if (r.envSig !== undefined && sig !== r.envSig) r.epoch++;
    r.envSig = sig;
  }

  /**
   * Records one pass: `applied` are the operations written with success, `held`
   * those of suspended keys (not written). A key in a fight that the pass found
   * nothing to do for has held; once that lasts `windowMs`, its fight ends.
   */
  recordPass(netns: string, applied: readonly Operation[], held: readonly Operation[] = [], manager?: string): FightState {
    this.record(netns, applied, held, manager);
    return this.state(netns);
  }

  /** recordPass without building the state: the daemon's per-pass call, cheap when nothing happened. */
  record(netns: string, applied: readonly Operation[], held: readonly Operation[] = [], manager?: string): void {
    // A quiet pass in a namespace without a fight changes nothing here.
    if (applied.length === 0 && held.length === 0 && !this.isFighting(netns)) return;
    const t = this.now();
    const r = this.rec(netns);
    const touched = new Set<string>();
    for (const op of applied) {
      for (const key of operationSubjects(op)) {
        if (touched.has(key)) continue;
        touched.add(key);
        this.repaired(r, key, operationKey(op), t);
      }
    }
    for (const op of held) for (const key of operationSubjects(op)) touched.add(key);
    for (const [key, k] of r.keys) {
      k.times = k.times.filter((x) => t - x < this.windowMs);
      if (k.fighting && !touched.has(key) && t - k.lastRepairAt >= this.windowMs) {
        k.fighting = false;
        k.level = 0;
        k.until = 0;
        k.backoffMs = 0;
      }
    }
    if (manager && this.isFighting(netns)) r.manager = manager;
  }

  /** Some key of the namespace is in a fight (cheap: no state is built). */
  isFighting(netns: string): boolean {
    const r = this.ns.get(netns);
    if (!r) return false;
    for (const k of r.keys.values()) if (k.fighting) return true;
    return false;
  }

  private repaired(r: NsRecord, key: string, change: string, t: number): void {
    const epoch = followsEnvironment(key) ? r.epoch : 0;
    const k = r.keys.get(key);
    if (!k) {
      // Our own first write: nobody undid anything yet.
      r.keys.set(key, { epoch, times: [], change, fighting: false, since: 0, level: 0, until: 0, backoffMs: 0, lastRepairAt: -Infinity });
      return;
    }
    k.change = change;
    k.lastRepairAt = t;
    if (k.epoch !== epoch) {
      // The links or addresses changed since our last write: the environment moved the key, nobody undid us.
      k.epoch = epoch;
      k.times = [];
      if (!k.fighting) return;
    } else {
      k.times = k.times.filter((x) => t - x < this.windowMs);
      k.times.push(t);
    }
    if (!k.fighting && k.times.length >= this.threshold) {
      k.fighting = true;
      k.since = t;
      k.level = 0;
    }
    if (k.fighting) {
      k.backoffMs = Math.min(this.backoffMaxMs, this.backoffBaseMs * 2 ** k.level);
      k.level += 1;
      k.until = t + k.backoffMs;
    }
  }

  /** Keys not to write now: in a fight and inside their backoff. */
  suspendedKeys(netns: string): Set<string> {
    const t = this.now();
    const out = new Set<string>();
    for (const [key, k] of this.ns.get(netns)?.keys ?? []) if (k.fighting && k.until > t) out.add(key);
    return out;
  }

  state(netns: string): FightState {
    const t = this.now();
    const r = this.ns.get(netns);
    if (!r) return { netns, fighting: false, contested: [], suspended: [], backoffMs: 0, nextAllowedAt: 0, manager: 'unknown' };
    const contested: ContestedKey[] = [];
    const suspended: SuspendedKey[] = [];
    for (const [key, k] of r.keys) {
      const times = k.times.filter((x) => t - x < this.windowMs);
      if (times.length >= 2 || k.fighting) contested.push({ key, count: times.length, firstAt: times[0] ?? k.since, lastAt: times[times.length - 1] ?? k.since });
      if (k.fighting) suspended.push({ key, change: k.change, repairs: times.length, since: k.since, until: k.until, backoffMs: k.backoffMs });
    }
    contested.sort((a, b) => b.count - a.count || a.key.localeCompare(b.key));
    suspended.sort((a, b) => a.key.localeCompare(b.key));
    const fighting = suspended.length > 0;
    const active = suspended.filter((s) => s.until > t);
    return {
      netns,
      fighting,
      ...(fighting ? { since: Math.min(...suspended.map((s) => s.since)) } : {}),
      contested,
      suspended,
      backoffMs: Math.max(0, ...suspended.map((s) => s.backoffMs)),
      nextAllowedAt: Math.max(0, ...active.map((s) => s.until)),
      manager: fighting ? r.manager : 'unknown',
    };
  }

  /** Forget a namespace (deleted, re-created, its desired state changed, or SIGHUP). */
  reset(netns: string): void {
    this.ns.delete(netns);
  }

  /** Namespaces with a key in a fight. */
  fighting(): string[] {
    return [...this.ns.keys()].filter((n) => this.state(n).fighting);
  }

  namespaces(): string[] {
    return [...this.ns.keys()];
  }
}
