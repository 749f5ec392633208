// Pure fight detection: someone undoes our changes when the same corrective
// operation has to be applied again and again. The clock is injected.
//
// Use: after each pass, call recordCorrections(netns, keys) with the keys
// (operationKey) of the operations actually applied, or recordConverged(netns)
// when the pass found nothing to change. Before applying, check
// mayApply(netns) / nextAllowedAt(netns).
//
// - A key re-applied `threshold` times within `windowMs` starts a fight. Our
//   own first write of a key is not a correction of anyone (nobody undid
//   anything yet), so it never counts: the third hand deletion of an endpoint
//   is still repaired. The fight the namespace then backs off: backoffMs doubles with every
//   further correction while the fight lasts (base .. max).
// - The fight is sticky while we back off (no applies means no repeats, which
//   would otherwise look like peace); it clears once a correction has held: a
//   converged pass after the last correction and `windowMs` without one.
import { canonicalAddress } from '../core/address.js';
import type { Operation } from '../core/model.js';

export interface FightOptions {
  /** Occurrences of one key within the window that make a fight (default 3). */
  threshold?: number;
  /** Window in ms (default 5 minutes). */
  windowMs?: number;
  /** First backoff in ms (default 30 s). */
  backoffBaseMs?: number;
  /** Largest backoff in ms (default 30 minutes). */
  backoffMaxMs?: number;
  /** Clock in ms (default Date.now). */
  now?: () => number;
}

export interface ContestedKey {
  key: string;
  /** Applications within the window. */
  count: number;
  firstAt: number;
  lastAt: number;
}

/** JSON-able state of one namespace. */
export interface FightState {
  netns: string;
  fighting: boolean;
  /** When the current fight was detected (ms). */
  since?: number;
  /** Keys with repeats in the window, most repeated first. */
  contested: ContestedKey[];
  /** Current backoff (0 when not fighting). */
  backoffMs: number;
  /** Do not apply before this time (ms; 0 = now is fine). */
  nextAllowedAt: number;
  /** Manager the fight is attributed to ('unknown' unless evidence named one). */
  manager: string;
}

interface NsRecord {
  times: Map<string, number[]>;
  /** Keys we have written at least once: only writes after the first count. */
  written: Set<string>;
  fighting: boolean;
  since?: number;
  level: number;
  nextAllowedAt: number;
  lastCorrectionAt: number;
  lastConvergedAt: number;
  manager: string;
}

/** An endpoint as a person writes it (the key is shown in logs and status). */
function endpointLabel(address: string, port?: number): string {
  return port !== undefined ? `${canonicalAddress(address)} port ${port}` : canonicalAddress(address);
}

/** Stable identity of an operation for repeat counting: what it sets, including the value. */
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

export class FightDetector {
  readonly threshold: number;
  readonly windowMs: number;
  readonly backoffBaseMs: number;
  readonly backoffMaxMs: number;
  private readonly now: () => number;
  private readonly ns = new Map<string, NsRecord>();

  constructor(opts: FightOptions = {}) {
    this.threshold = Math.max(2, opts.threshold ?? 3);
    this.windowMs = opts.windowMs ?? 5 * 60_000;
    this.backoffBaseMs = opts.backoffBaseMs ?? 30_000;
    this.backoffMaxMs = Math.max(this.backoffBaseMs, opts.backoffMaxMs ?? 30 * 60_000);
    this.now = opts.now ?? Date.now;
  }

  private rec(netns: string): NsRecord {
    let r = this.ns.get(netns);
    if (!r) {
      r = { times: new Map(), written: new Set(), fighting: false, level: 0, nextAllowedAt: 0, lastCorrectionAt: -Infinity, lastConvergedAt: -Infinity, manager: 'unknown' };
      this.ns.set(netns, r);
    }
    return r;
  }

  private prune(r: NsRecord, t: number): void {
    for (const [k, ts] of r.times) {
      const kept = ts.filter((x) => t - x < this.windowMs);
      if (kept.length) r.times.set(k, kept);
      else r.times.delete(k);
    }
  }

  private settle(r: NsRecord, t: number): void {
    this.prune(r, t);
    if (r.fighting && r.lastConvergedAt > r.lastCorrectionAt && t - r.lastCorrectionAt >= this.windowMs) {
      r.fighting = false;
      r.since = undefined;
      r.level = 0;
      r.nextAllowedAt = 0;
      r.manager = 'unknown';
    }
  }

  /**
   * Records operations applied in one pass (keys from operationKey). `manager`
   * attributes a fight to a detected manager; default 'unknown'.
   */
  recordCorrections(netns: string, keys: readonly string[], manager?: string): FightState {
    const t = this.now();
    const r = this.rec(netns);
    this.settle(r, t);
    if (keys.length === 0) return this.state(netns);
    r.lastCorrectionAt = t;
    let repeated = false;
    for (const k of new Set(keys)) {
      if (!r.written.has(k)) {
        r.written.add(k);
        continue;
      }
      const ts = r.times.get(k) ?? [];
      ts.push(t);
      r.times.set(k, ts);
      if (ts.length >= this.threshold) repeated = true;
    }
    if (repeated && !r.fighting) {
      r.fighting = true;
      r.since = t;
      r.level = 0;
    }
    if (r.fighting) {
      if (manager) r.manager = manager;
      const backoff = Math.min(this.backoffMaxMs, this.backoffBaseMs * 2 ** r.level);
      r.level += 1;
      r.nextAllowedAt = t + backoff;
    }
    return this.state(netns);
  }

  /** Records a pass that found nothing to change. */
  recordConverged(netns: string): FightState {
    const t = this.now();
    const r = this.rec(netns);
    r.lastConvergedAt = t;
    this.settle(r, t);
    return this.state(netns);
  }

  state(netns: string): FightState {
    const t = this.now();
    const r = this.ns.get(netns);
    if (!r) return { netns, fighting: false, contested: [], backoffMs: 0, nextAllowedAt: 0, manager: 'unknown' };
    this.settle(r, t);
    const contested: ContestedKey[] = [...r.times]
      .filter(([, ts]) => ts.length >= 2)
      .map(([key, ts]) => ({ key, count: ts.length, firstAt: ts[0]!, lastAt: ts[ts.length - 1]! }))
      .sort((a, b) => b.count - a.count || a.key.localeCompare(b.key));
    const backoffMs = r.fighting ? Math.min(this.backoffMaxMs, this.backoffBaseMs * 2 ** Math.max(0, r.level - 1)) : 0;
    return {
      netns,
      fighting: r.fighting,
      ...(r.since !== undefined ? { since: r.since } : {}),
      contested,
      backoffMs,
      nextAllowedAt: r.fighting ? r.nextAllowedAt : 0,
      manager: r.manager,
    };
  }

  // Asked before every pass: the answer of state() without building its report.
  nextAllowedAt(netns: string): number {
    const r = this.ns.get(netns);
    if (!r) return 0;
    this.settle(r, this.now());
    return r.fighting ? r.nextAllowedAt : 0;
  }

  mayApply(netns: string): boolean {
    return this.now() >= this.nextAllowedAt(netns);
  }

  /** Forget a namespace (deleted, or its desired state changed so old repeats mean nothing). */
  reset(netns: string): void {
    this.ns.delete(netns);
  }

  namespaces(): string[] {
    return [...this.ns.keys()];
  }
}
