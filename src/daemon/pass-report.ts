// What a finished pass tells the outside: its result label, the namespace's
// status (GET /status), the Prometheus series, and one log line. Resync passes
// that find nothing log only at debug level: a large fleet would otherwise fill
// the log every few seconds.
import type { NamespaceResult, Operation } from '../core/model.js';
import { describeOperation } from '../core/vocabulary.js';
import { operationKey } from '../conflicts/fight.js';
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
};

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
  firstDifference?: string;
  consecutiveFailures: number;
  /** Passes in a row that ended in an error (conflicts and deferred passes are not failures). */
  failedPasses: number;
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
  /** A fight is backing off: the pass was run in observe mode. */
  deferred: boolean;
  seconds: number;
  retry: boolean;
  /** Failures before this one in a row (the scheduler's count). */
  failuresBefore: number;
}

export function passLabel(mode: Mode, r: PassResult, deferred: boolean): PassResultLabel {
  if (r.errors.some((e) => e.op === 'conflict')) return 'conflict';
  if (deferred && r.operations.length > 0) return 'conflict';
  if (r.errors.length > 0) return 'error';
  if (r.operations.length === 0) return 'converged';
  return mode === 'observe' || r.applied === false ? 'observed' : 'changed';
}

/** The managers found active in a pass's conflicts. */
export function activeManagers(result: PassResult): string[] {
  return [...new Set((result.conflicts ?? []).filter((c) => (c as { active?: boolean }).active !== false).map((c) => c.manager))];
}

export class PassReport {
  private readonly statuses = new Map<string, NamespaceStatus>();
  /** The difference the last pass found and did not repair, per namespace. */
  private readonly lastDrift = new Map<string, string>();

  constructor(
    private readonly mode: Mode,
    private readonly metrics: DaemonMetrics,
    private readonly debugEnabled: () => boolean,
  ) {}

  statusOf(ns: string): NamespaceStatus {
    let s = this.statuses.get(ns);
    if (!s) {
      s = { netns: ns, converged: false, passes: 0, pendingOperations: [], pending: [], errors: [], conflicts: [], consecutiveFailures: 0, failedPasses: 0 };
      this.statuses.set(ns, s);
    }
    return s;
  }

  forget(ns: string): void {
    this.statuses.delete(ns);
    this.lastDrift.delete(ns);
    this.metrics.forget(ns);
  }

  /** Records a finished pass in the metrics, the status and the log (through the pass's own logger). */
  record(p: PassOutcomeReport, plog: PassLogger): void {
    const { result, netns: ns } = p;
    const label = passLabel(this.mode, result, p.deferred);
    const managers = activeManagers(result);
    const m = this.metrics;
    m.passes.inc({ result: label });
    m.passDuration.observe(p.seconds);
    m.converged.set({ netns: ns }, result.converged ? 1 : 0);
    // A drift is counted once: a deferred or blocked pass sees the same difference
    // again and again, and that is not new drift. After a pass that repaired it,
    // the same difference coming back is new drift.
    const sig = result.operations.length > 0 ? result.operations.map((o) => operationKey(o)).join('\n') : undefined;
    if (sig !== undefined && sig !== this.lastDrift.get(ns)) m.drift.inc({ netns: ns });
    const repaired = sig !== undefined && !p.deferred && label === 'changed';
    if (sig === undefined || repaired) this.lastDrift.delete(ns);
    else this.lastDrift.set(ns, sig);
    if (result.applied !== false && this.mode === 'enforce') {
      for (const o of result.operations) if (o.result === 'ok') m.operations.inc({ op: o.op });
    }
    m.setConflicts(ns, managers);

    const st = this.statusOf(ns);
    st.passes++;
    st.converged = result.converged;
    st.lastPass = new Date().toISOString();
    st.lastResult = label;
    st.passId = p.passId;
    st.pendingOperations = result.operations.filter((o) => this.mode === 'observe' || o.result !== 'ok').map(({ result: _r, error: _e, ...op }) => op as Operation);
    st.pending = result.pending;
    st.errors = result.errors;
    st.conflicts = result.conflicts ?? [];
    st.consecutiveFailures = p.retry ? p.failuresBefore + 1 : 0;
    st.failedPasses = label === 'error' ? st.failedPasses + 1 : 0;
    if (result.firstDifference !== undefined) st.firstDifference = result.firstDifference;
    else delete st.firstDifference;

    if (this.mode === 'observe') {
      for (const o of result.operations) plog.info({ op: o.op, what: describeOperation(o, 'full'), reason: o.reason, disruptive: o.disruptive }, 'would apply (observe mode)');
    }
    this.log(p, label, managers, st.consecutiveFailures, plog);
  }

  private log(p: PassOutcomeReport, label: PassResultLabel, managers: string[], failures: number, plog: PassLogger): void {
    const { result } = p;
    const quiet = p.crashed === undefined && label === 'converged' && p.reasons.every((r) => r === 'resync');
    if (quiet && !this.debugEnabled()) return;
    const line = {
      result: label,
      reasons: p.reasons,
      operations: result.operations.length,
      converged: result.converged,
      durationMs: Math.round(p.seconds * 1e4) / 10,
      ...(result.pending.length ? { pending: result.pending.map((x) => `${x.what}: ${x.reason}`) } : {}),
      ...(result.errors.length ? { errors: result.errors.map((e) => e.message) } : {}),
      ...(result.firstDifference ? { firstDifference: result.firstDifference } : {}),
      ...(p.retry ? { failures } : {}),
      ...(p.deferred ? { deferred: 'a fight with another manager is backing off' } : {}),
      ...(managers.length ? { conflictsWith: managers } : {}),
    };
    if (p.crashed !== undefined) plog.error({ ...line, ...errorFields(p.crashed) }, 'pass failed');
    else if (label === 'error' || label === 'conflict') plog.warn(line, 'pass');
    else if (quiet) plog.debug(line, 'pass');
    else plog.info(line, 'pass');
  }

  /** Status of the managed namespaces, in their order. */
  snapshot(names: Iterable<string>): Record<string, NamespaceStatus> {
    const out: Record<string, NamespaceStatus> = {};
    for (const ns of names) out[ns] = this.statusOf(ns);
    return out;
  }
}
