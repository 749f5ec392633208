// What a finished pass tells the outside: its result label, the namespace's
// status (GET /status), the Prometheus series, and one log line. Resync passes
// that find nothing log only at debug level: a large fleet would otherwise fill
// the log every few seconds.
import type { LinkDownEndpoint, NamespaceResult, Operation } from '../core/model.js';
import { describeOperation } from '../core/vocabulary.js';
import { operationKey, type SuspendedKey } from '../conflicts/fight.js';
import { errorFields } from '../log.js';
import type { Logger as PassLogger } from '../apply/reconcile.js';
import type { DaemonMetrics, PassResultLabel } from './metrics.js';

export type Mode = 'enforce' | 'observe';

export interface ConflictFindingLike {
  manager: string;
  evidence?: string[];
  detail?: string;
  blocking?: boolean;
}

/** A pass result as the apply engine returns it (NamespaceResult plus what the daemon reports). */
export type PassResult = NamespaceResult & {
  conflicts?: ConflictFindingLike[];
  applied?: boolean;
  /** Keys in a fight with someone else, and the operations held back for them. */
  suspended?: SuspendedKey[];
  held?: Operation[];
  /** Source routing writes (routes and rules), beside the endpoint operations. */
  routing?: { op: string; result?: string }[];
};

/** Every write a pass planned: endpoint operations and routing writes. */
const writesOf = (r: PassResult) => r.operations.length + (r.routing?.length ?? 0);

/** A key in a fight as /status shows it. */
export interface SuspendedKeyStatus {
  key: string;
  change: string;
  repairs: number;
  since: string;
  /** When its backoff ends: the first pass after it writes the key again. */
  until: string;
  backoffSeconds: number;
}

export interface NamespaceStatus {
  netns: string;
  converged: boolean;
  lastPass?: string;
  lastResult?: PassResultLabel;
  passId?: string;
  passes: number;
  /** Operations still to do: all planned ones in observe mode, the failed or skipped ones otherwise. */
  pendingOperations: Operation[];
  /** Declared things that cannot be acted on yet (e.g. a missing interface). */
  pending: NamespaceResult['pending'];
  errors: NamespaceResult['errors'];
  conflicts: ConflictFindingLike[];
  /** Keys left alone because someone keeps undoing our changes to them; everything else is enforced. */
  suspended: SuspendedKeyStatus[];
  firstDifference?: string;
  consecutiveFailures: number;
  /** Passes in a row that ended in an error (blocked passes and suspended keys are not failures). */
  failedPasses: number;
  /** Declared endpoints held back because their interface lost carrier (linkDown: withdraw). */
  withdrawn: LinkDownEndpoint[];
}

/** Passes in a row that fail before a namespace makes the daemon unready (see `failingReason`). */
export const FAILING_PASSES = 3;
const PRIVILEGE_ERRNOS = new Set(['EPERM', 'EACCES']);

/**
 * Why a namespace counts as "keeps failing" for readiness, or undefined: its last
 * FAILING_PASSES passes failed, or every pass so far failed and the error is one
 * that retrying will not fix (missing privilege, a non-retryable kernel error).
 * A namespace blocked by its `conflicts:` policy is doing what it was told and
 * never counts here.
 */
export function failingReason(st: NamespaceStatus): string | undefined {
  if (st.failedPasses === 0 || st.lastResult !== 'error') return undefined;
  const first = st.errors[0];
  const what = first ? `${first.message}${first.errno ? ` (${first.errno})` : ''}` : 'error';
  if (st.failedPasses >= FAILING_PASSES) return `${st.netns}: last ${st.failedPasses} passes failed: ${what}`;
  const hopeless = st.errors.some((e) => (e.errno !== undefined && PRIVILEGE_ERRNOS.has(e.errno)) || e.retryable === false);
  if (hopeless && st.failedPasses === st.passes) return `${st.netns}: every pass failed: ${what}`;
  return undefined;
}

/** One finished pass, as the pass runner saw it. */
export interface PassOutcomeReport {
  netns: string;
  passId: string;
  reasons: readonly string[];
  result: PassResult;
  /** What the pass threw instead of returning a result (the result then describes it). */
  crashed: unknown;
  seconds: number;
  retry: boolean;
  /** Failures before this one in a row (the scheduler's count). */
  failuresBefore: number;
}

export function passLabel(mode: Mode, r: PassResult): PassResultLabel {
  // Blocked by policy, or stopped mid-pass because a manager started (the retry decides again).
  if (r.errors.some((e) => e.op === 'conflict' || e.op === 'conflict-recheck')) return 'conflict';
  if (r.errors.length > 0) return 'error';
  if (writesOf(r) === 0) return r.held?.length ? 'conflict' : 'converged';
  return mode === 'observe' || r.applied === false ? 'observed' : 'changed';
}

const NOTHING: readonly never[] = Object.freeze([]);

/** The managers found active in a pass's conflicts. */
export function activeManagers(result: PassResult): readonly string[] {
  if (!result.conflicts?.length) return NOTHING;
  return [...new Set((result.conflicts ?? []).filter((c) => (c as { active?: boolean }).active !== false).map((c) => c.manager))];
}

/** The per-namespace gauge values last written, so that a resync that changes none writes none. */
interface Written {
  converged: number;
  withdrawn: number;
  suspended: number;
  backoff: number;
  /** When the last pass ended (epoch ms): turned into text only when someone asks. */
  at: number;
}

export class PassReport {
  private readonly statuses = new Map<string, NamespaceStatus>();
  private readonly written = new Map<string, Written>();
  /** The difference the last pass found and did not repair, per namespace. */
  private readonly lastDrift = new Map<string, string>();
  /** What the last pass line of a namespace in conflict said: the same again is not worth a line. */
  private readonly lastSaid = new Map<string, string>();

  constructor(
    private readonly mode: Mode,
    private readonly metrics: DaemonMetrics,
    private readonly debugEnabled: () => boolean,
  ) {}

  statusOf(ns: string): NamespaceStatus {
    let s = this.statuses.get(ns);
    if (!s) {
      s = { netns: ns, converged: false, passes: 0, pendingOperations: [], pending: [], errors: [], conflicts: [], suspended: [], consecutiveFailures: 0, failedPasses: 0, withdrawn: [] };
      this.statuses.set(ns, s);
    }
    return s;
  }

  forget(ns: string): void {
    this.statuses.delete(ns);
    this.written.delete(ns);
    this.lastDrift.delete(ns);
    this.lastSaid.delete(ns);
    this.metrics.forget(ns);
  }

  /** Records a finished pass in the metrics, the status and the log (through the pass's own logger). */
  record(p: PassOutcomeReport, plog: PassLogger): void {
    const { result, netns: ns } = p;
    const label = passLabel(this.mode, result);
    const managers = activeManagers(result);
    const m = this.metrics;
    m.passesOf(label).inc();
    m.passDuration.observe(p.seconds);
    let w = this.written.get(ns);
    if (!w) this.written.set(ns, (w = { converged: -1, withdrawn: -1, suspended: -1, backoff: -1, at: 0 }));
    w.at = Date.now();
    const st = this.statusOf(ns);
    if (this.quiet(st, label, result, p)) {
      // A converged resync like the one before: the status and gauges already say it all.
      st.passes++;
      st.passId = p.passId;
      st.consecutiveFailures = 0;
      if (this.debugEnabled()) this.log(p, label, managers, 0, plog);
      return;
    }
    if (w.converged !== (result.converged ? 1 : 0)) m.converged.set({ netns: ns }, (w.converged = result.converged ? 1 : 0));
    // A drift is counted once: a blocked pass sees the same difference again and
    // again, and that is not new drift. After a pass that repaired it, the same
    // difference coming back is new drift. Held operations (keys in a fight) are
    // not drift: they are reported as suspended. Withdrawing the endpoints of a
    // dead link, and restoring them, is the config at work, not drift.
    const drifted = result.operations.filter((o) => o.linkDown === undefined);
    const routingSig = (result.routing ?? []).map((o) => JSON.stringify({ ...o, result: undefined, error: undefined }));
    const sig = drifted.length + routingSig.length > 0 ? [...drifted.map((o) => operationKey(o)), ...routingSig].join('\n') : undefined;
    if (sig !== undefined && sig !== this.lastDrift.get(ns)) m.drift.inc({ netns: ns });
    const repaired = sig !== undefined && label === 'changed';
    if (sig === undefined || repaired) this.lastDrift.delete(ns);
    else this.lastDrift.set(ns, sig);
    if (result.applied !== false && this.mode === 'enforce') {
      for (const o of [...result.operations, ...(result.routing ?? [])]) if (o.result === 'ok') m.operations.inc({ op: o.op });
    }
    m.setConflicts(ns, managers);
    const withdrawn = (result.linkDown ?? []).filter((e) => e.state === 'withdrawn');
    if (w.withdrawn !== withdrawn.length) m.withdrawn.set({ netns: ns }, (w.withdrawn = withdrawn.length));
    // Left alone now; a key whose backoff ended is being tried again (its fight shows in conflicts until a write holds).
    const suspended = (result.suspended ?? []).filter((k) => k.until > w.at);
    const backoff = Math.max(0, ...suspended.map((k) => k.backoffMs)) / 1000;
    if (w.suspended !== suspended.length || w.backoff !== backoff) {
      m.setSuspended(ns, suspended);
      w.suspended = suspended.length;
      w.backoff = backoff;
    }

    st.passes++;
    st.converged = result.converged;
    st.lastResult = label;
    st.passId = p.passId;
    st.pendingOperations = result.operations.filter((o) => this.mode === 'observe' || o.result !== 'ok').map(({ result: _r, error: _e, ...op }) => op as Operation);
    st.pending = result.pending;
    st.errors = result.errors;
    st.conflicts = result.conflicts ?? [];
    st.withdrawn = withdrawn;
    st.suspended = suspended.map((k) => ({
      key: k.key,
      change: k.change,
      repairs: k.repairs,
      since: new Date(k.since).toISOString(),
      until: new Date(k.until).toISOString(),
      backoffSeconds: k.backoffMs / 1000,
    }));
    st.consecutiveFailures = p.retry ? p.failuresBefore + 1 : 0;
    st.failedPasses = label === 'error' ? st.failedPasses + 1 : 0;
    if (result.firstDifference !== undefined) st.firstDifference = result.firstDifference;
    else delete st.firstDifference;

    if (this.mode === 'observe') {
      for (const o of result.operations) plog.info({ op: o.op, what: describeOperation(o, 'full'), reason: o.reason, disruptive: o.disruptive }, 'would apply (observe mode)');
    }
    this.log(p, label, managers, st.consecutiveFailures, plog);
  }

  private log(p: PassOutcomeReport, label: PassResultLabel, managers: readonly string[], failures: number, plog: PassLogger): void {
    const { result } = p;
    // A namespace in a steady conflict (blocked, or keys suspended) says so once, not every resync.
    const said = label === 'conflict' ? this.conflictLine(p.netns, result, managers) : (this.lastSaid.delete(p.netns), false);
    const quiet = p.crashed === undefined && ((label === 'converged' && p.reasons.every((r) => r === 'resync')) || said);
    if (quiet && !this.debugEnabled()) return;
    const line = {
      result: label,
      reasons: p.reasons,
      operations: writesOf(result),
      converged: result.converged,
      durationMs: Math.round(p.seconds * 1e4) / 10,
      ...(result.pending.length ? { pending: result.pending.map((x) => `${x.what}: ${x.reason}`) } : {}),
      ...(result.errors.length ? { errors: result.errors.map((e) => e.message) } : {}),
      ...(result.firstDifference ? { firstDifference: result.firstDifference } : {}),
      ...(p.retry ? { failures } : {}),
      ...(result.suspended?.length ? { suspended: result.suspended.map((k) => k.key) } : {}),
      ...(managers.length ? { conflictsWith: managers } : {}),
    };
    if (p.crashed !== undefined) plog.error({ ...line, ...errorFields(p.crashed) }, 'pass failed');
    else if (quiet) plog.debug(line, 'pass');
    else if (label === 'error' || label === 'conflict') plog.warn(line, 'pass');
    else plog.info(line, 'pass');
  }

  /**
   * A pass that ends as the namespace's last one did, converged with nothing to
   * say: no operation, difference, pending item, error, conflict, suspended key
   * or withdrawn endpoint, before and now.
   */
  private quiet(st: NamespaceStatus, label: PassResultLabel, r: PassResult, p: PassOutcomeReport): boolean {
    if (label !== 'converged' || st.lastResult !== 'converged' || !r.converged || p.crashed !== undefined || p.retry) return false;
    if (r.operations.length > 0 || r.pending.length > 0 || r.errors.length > 0 || r.firstDifference !== undefined) return false;
    if ((r.conflicts?.length ?? 0) > 0 || (r.suspended?.length ?? 0) > 0 || (r.held?.length ?? 0) > 0 || (r.linkDown?.length ?? 0) > 0) return false;
    return st.pendingOperations.length === 0 && st.pending.length === 0 && st.errors.length === 0 && st.conflicts.length === 0 && st.suspended.length === 0 && st.withdrawn.length === 0 && st.firstDifference === undefined && !this.lastDrift.has(p.netns) && !this.lastSaid.has(p.netns);
  }

  /** True when this conflict pass says what the namespace's last one said. */
  private conflictLine(ns: string, result: PassResult, managers: readonly string[]): boolean {
    const sig = JSON.stringify([managers, result.errors.map((e) => e.message), result.operations.map(operationKey), (result.held ?? []).map(operationKey)]);
    if (this.lastSaid.get(ns) === sig) return true;
    this.lastSaid.set(ns, sig);
    return false;
  }

  /** Status of the managed namespaces, in their order. */
  snapshot(names: Iterable<string>): Record<string, NamespaceStatus> {
    const out: Record<string, NamespaceStatus> = {};
    for (const ns of names) {
      const st = this.statusOf(ns);
      const at = this.written.get(ns)?.at;
      if (at !== undefined) st.lastPass = new Date(at).toISOString();
      out[ns] = st;
    }
    return out;
  }
}
