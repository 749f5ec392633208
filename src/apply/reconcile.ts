// One reconcile pass for one namespace, in five steps: read live (only what the
// desired state needs), plan, ask the conflict gate, execute, verify.
// Verification is the judge: an operation that failed because someone else
// already did the same thing (EEXIST on an add, "address not found" on a delete)
// is harmless exactly when the re-read state verifies, so no error code is
// special-cased here.
import { KernelError, type LiveReader, type LiveSelection, type NamespaceKernel } from '../kernel/api.js';
import type { DesiredNamespace, LinkHold, LiveNamespace, NamespacePlan, NamespaceResult, Operation, PlanCapabilities, RoutingOpResult } from '../core/model.js';
import type { MptcpKey } from '../core/schema.js';
import { planNamespace } from '../core/plan.js';
import { type VerifyResult, verifyNamespace } from '../core/verify.js';
import { describeOperation } from '../core/vocabulary.js';
import { withoutSuspended, type Conflict, type SuspendedKey } from '../conflicts/index.js';
import type { ConflictGate, ConflictVerdict } from './conflict-gate.js';
import { dependencyOf, executeOperations, type OpResult } from './executor.js';
import type { ConvergedPass, PassMemo } from './pass-memo.js';
import { refuseWithoutRule, routingResults, runRoutingPhase } from './routing-step.js';

export type { ConflictGate, ConflictVerdict } from './conflict-gate.js';
export { dependencyOf, type OpResult } from './executor.js';

/**
 * The subset of pino the shell uses; pino loggers fit, and so does nothing at
 * all. Lines carry neither passId nor netns: the caller binds them (a pino
 * child), so that no key appears twice in a line.
 */
export interface Logger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
  debug(obj: object, msg?: string): void;
}

export interface ReconcileOptions {
  mode: 'enforce' | 'observe';
  passId?: string;
  logger?: Logger;
  /** Checked only between independent operations: a replace always completes both halves. */
  signal?: AbortSignal;
  conflictGate?: ConflictGate;
  /** What the last converged pass of each handle concluded; without it every pass plans in full. */
  memo?: PassMemo;
  /** Sees the live state each pass planned from (plan output shows it as a diff). */
  onLive?: (live: LiveNamespace, plan: NamespacePlan) => void;
  /** The running kernel's capabilities per namespace (kernel/capabilities.ts): what it can't hold is refused. */
  capabilitiesOf?: (netns: string) => PlanCapabilities | undefined;
  /**
   * Called just before each operation is written. A test seam: fault tests delete a
   * namespace or an interface, or stop the daemon, exactly between two operations.
   */
  beforeOperation?: (op: Operation, index: number) => void | Promise<void>;
  /**
   * watch's link lifecycle: sees each pass's live links (read by this pass, never
   * older) and says which interfaces' endpoints to hold back. Without it (apply,
   * plan) nothing is held back.
   */
  linkHold?: (live: LiveNamespace) => LinkHold | undefined;
}

export interface ReconcileResult extends NamespaceResult {
  operations: OpResult[];
  /** Other managers found writing this namespace (also when they did not block). */
  conflicts: Conflict[];
  /** Things to tell the user that are not errors (conflicts under `warn`). */
  warnings: string[];
  /** True when the operations were written to the kernel (enforce mode, not blocked). */
  applied: boolean;
  /** Every difference verify found, first one also in firstDifference. */
  differences: string[];
  /** Keys in a fight with someone else (left alone while their backoff lasts). */
  suspended?: SuspendedKey[];
  /** Operations of suspended keys: not written, not drift, not errors. */
  held?: Operation[];
  /** Source routing writes (routes and rules), in run order; empty when there are none. */
  routing: RoutingOpResult[];
}

// A desired state is never changed once resolved (a reload makes new objects):
// what it selects, and a hold's key, are worked out once, not at every resync.
const selections = new WeakMap<DesiredNamespace, LiveSelection>();
const holdKeys = new WeakMap<LinkHold, string>();

function selectionOf(desired: DesiredNamespace): LiveSelection {
  let s = selections.get(desired);
  if (!s) selections.set(desired, (s = liveSelection(desired)));
  return s;
}

/** Reads only what the desired state declares, so a converged pass stays cheap. */
export function liveSelection(desired: DesiredNamespace): LiveSelection {
  const eps = desired.endpoints;
  const rpIfaces = Object.keys(desired.rpFilter);
  const mptcpKeys = Object.keys(desired.mptcp) as MptcpKey[];
  // The path manager in use tells whether someone switched to userspace (a conflict), so
  // it is read whenever endpoints or limits are managed; it is one small procfs read.
  const managesPm = eps !== undefined || desired.limits.subflows !== undefined || desired.limits.addAddrAccepted !== undefined;
  if (managesPm && !mptcpKeys.includes('pathManager')) mptcpKeys.push('pathManager');
  const usesDev = (eps ?? []).some((e) => e.dev !== undefined);
  // linkDown: withdraw needs every endpoint's link (carrier) and the interface holding its address.
  const followsLinks = (eps ?? []).length > 0 && desired.linkDown?.policy !== 'keep';
  return {
    endpoints: eps !== undefined,
    limits: desired.limits.subflows !== undefined || desired.limits.addAddrAccepted !== undefined,
    links: usesDev || rpIfaces.length > 0 || followsLinks,
    addresses: followsLinks || (eps ?? []).some((e) => e.dev !== undefined && e.address === undefined),
    mptcp: mptcpKeys.length > 0 ? mptcpKeys : false,
    rpFilter: rpIfaces.length > 0 ? rpIfaces : false,
    ...routingSelection(desired),
  };
}

/**
 * Source routing needs the interfaces, their addresses and the endpoints, with
 * the rules and the declared tables; without the key only what the tool may
 * have created before is looked for (nothing, once a read found none).
 */
function routingSelection(desired: DesiredNamespace): LiveSelection {
  const sr = desired.sourceRouting;
  if (sr === undefined) return { routing: 'owned' };
  return { links: true, addresses: true, endpoints: true, routing: { tables: Object.values(sr).map((r) => r.table) } };
}

/** Step 1: the live state, or the memo's when the kernel's bytes are those of the last converged pass. */
async function readStep(reader: LiveReader, desired: DesiredNamespace, select: LiveSelection, memo: PassMemo | undefined) {
  const last = memo?.take(reader);
  const since = last?.desired === desired ? last.fingerprint : undefined;
  const r = await reader.readLiveIfChanged(select, since);
  const hit: ConvergedPass | undefined = r.live ? undefined : last;
  return { live: r.live ?? hit!.live, fingerprint: r.fingerprint, hit };
}

/** Withdrawn interfaces and remembered ids: a pass memoised under another hold planned something else. */
function holdKey(hold: LinkHold | undefined): string {
  if (!hold) return '';
  let k = holdKeys.get(hold);
  // The ids map is the lifecycle's own and may change under the same hold object.
  if (k === undefined || hold.ids.size > 0) holdKeys.set(hold, (k = holdKeyOf(hold)));
  return k;
}

function holdKeyOf(hold: LinkHold): string {
  return `${[...hold.withdrawn.keys()].sort().join(',')}|${[...hold.ids].map(([k, id]) => `${k}=${id}`).sort().join(',')}`;
}

/** Step 3: the conflict gate's verdict, written into the result and the log (when the conflicts start, change or end). */
async function gateStep(gate: ConflictGate | undefined, desired: DesiredNamespace, live: LiveNamespace, plan: NamespacePlan, result: ReconcileResult, log: Logger | undefined): Promise<ConflictVerdict | undefined> {
  if (!gate) return undefined;
  const verdict: ConflictVerdict = await gate({ netns: desired.netns, desired, live, plan });
  result.conflicts = verdict.conflicts;
  if (verdict.block) result.errors.push({ message: verdict.message, op: 'conflict' });
  else if (verdict.report && verdict.message) result.warnings.push(verdict.message);
  if (verdict.report && verdict.message && !verdict.unchanged) {
    const managers = [...new Set(verdict.conflicts.map((c) => c.manager))];
    const suspended = verdict.suspended?.map((k) => k.key);
    (verdict.block ? log?.error : log?.warn)?.call(log, { managers, conflicts: verdict.conflicts.length, ...(suspended?.length ? { suspended } : {}) }, verdict.message);
  }
  if (verdict.ended) log?.info({}, verdict.ended);
  if (verdict.suspended?.length) result.suspended = verdict.suspended;
  return verdict;
}

/** The operations to write: those of keys in a fight are held back (reported, not written). */
function unsuspended(ops: readonly Operation[], verdict: ConflictVerdict | undefined, result: ReconcileResult): readonly Operation[] {
  if (!verdict?.suspend?.size) return ops;
  const { run, held } = withoutSuspended(ops, verdict.suspend, (i) => dependencyOf(ops, i));
  if (held.length === 0) return ops;
  result.held = held;
  result.operations = run.map((o) => ({ ...o }));
  return run;
}

/** Step 5: judges the state after the writes; failures it shows to be harmless become notes. */
function verifyStep(desired: DesiredNamespace, after: LiveNamespace, hit: ConvergedPass | undefined, result: ReconcileResult, hold: LinkHold | undefined): VerifyResult {
  const v = hit ? hit.verify : verifyNamespace(desired, after, hold);
  result.differences = v.differences;
  if (v.firstDifference !== undefined) result.firstDifference = v.firstDifference;
  if (result.applied && v.converged && (result.operations.length > 0 || result.routing.length > 0)) {
    // The state is as desired, so whatever failed was already done by someone else.
    const opErrors = new Set(result.operations.filter((o) => o.result === 'failed').map((o) => o.error));
    for (const o of result.operations) {
      if (o.result !== 'failed') continue;
      o.result = 'ok';
      o.note = `already as desired after: ${o.error}`;
      delete o.error;
    }
    for (const o of result.routing) {
      if (o.result !== 'failed') continue;
      opErrors.add(o.error);
      o.result = 'ok';
      delete o.error;
    }
    result.errors = result.errors.filter((e) => !opErrors.has(e.message));
  }
  return v;
}

/** One pass over one namespace. Never throws for kernel errors: they are in the result. */
export async function reconcileNamespace(kernel: NamespaceKernel, desired: DesiredNamespace, opts: ReconcileOptions): Promise<ReconcileResult> {
  const log = opts.logger;
  const select = selectionOf(desired);
  // 1. read
  const read = await readStep(kernel, desired, select, opts.memo);
  const { live, fingerprint } = read;
  const hold = opts.linkHold?.(live);
  const heldBy = holdKey(hold);
  const hit = read.hit && (read.hit.holdKey ?? '') === heldBy ? read.hit : undefined;
  // 2. plan
  const plan = hit ? hit.plan : planNamespace(desired, live, opts.capabilitiesOf?.(live.netns), hold);
  opts.onLive?.(live, plan);
  const result: ReconcileResult = {
    netns: desired.netns,
    operations: plan.operations.map((o) => ({ ...o })),
    converged: false,
    pending: plan.pending,
    errors: plan.errors.map((message) => ({ message })),
    conflicts: [],
    warnings: [],
    applied: false,
    differences: [],
    ...(plan.linkDown && { linkDown: plan.linkDown }),
    routing: routingResults(plan.routing),
  };
  // 3. gate
  const verdict = await gateStep(opts.conflictGate, desired, live, plan, result, log);
  const blocked = verdict?.block === true;
  const ops = unsuspended(plan.operations, verdict, result);
  // 4. execute
  const writes = ops.length + result.routing.length;
  if (opts.mode === 'enforce' && !blocked) result.applied = true;
  // Nothing to write (every converged resync): no executor, its closures and tables.
  if (result.applied && writes > 0) {
    // A join must never leave before its table and rule exist.
    result.errors.push(...(await runRoutingPhase(kernel, result.routing, 'before', log)));
    const refused = refuseWithoutRule(ops, result.routing);
    const done = await executeOperations(kernel, refused.run, live, {
      signal: opts.signal,
      beforeOperation: opts.beforeOperation,
      stopReason: verdict?.stopReason,
      onApplied: (o) => log?.info({ op: o.op, what: describeOperation(o, 'short'), reason: o.reason }, 'change applied'),
      onAlreadyDone: (o) => log?.info({ op: o.op, what: describeOperation(o, 'short') }, 'already done by someone else'),
      onFailed: (o, e) => log?.warn({ op: o.op, errno: e.errno, extack: e.extack, err: e.message }, 'change failed'),
    });
    result.operations = refused.merge(done.results);
    result.errors.push(...done.errors);
    result.errors.push(...(await runRoutingPhase(kernel, result.routing, 'after', log)));
  } else if (blocked) for (const o of [...result.operations, ...result.routing]) o.result = 'skipped';
  // 5. verify. A pass that wrote nothing judges the state it read: a re-read would
  // only repeat it (it doubled the cost of a converged pass, the daemon's common case).
  const after = result.applied && writes > 0 ? await kernel.readLive(select) : live;
  const v = verifyStep(desired, after, hit, result, hold);
  result.converged = v.converged && !blocked && plan.errors.length === 0;
  // Held operations (a key in a fight) leave the plan unconverged: never memoised.
  if (opts.memo && plan.operations.length === 0 && result.routing.length === 0 && plan.errors.length === 0 && v.converged) {
    opts.memo.keep(kernel, hit ?? { desired, fingerprint, live, plan, verify: v, ...(heldBy && { holdKey: heldBy }) }, hit !== undefined);
  }
  if (result.applied) {
    const failed = [...result.operations, ...result.routing].filter((o) => o.result === 'failed').length;
    log?.info({ changes: writes, failed, converged: result.converged, firstDifference: result.firstDifference }, 'pass done');
  } else log?.info({ mode: opts.mode, drift: writes, converged: result.converged }, 'pass planned');
  return result;
}

export interface ReconcileAllOptions extends ReconcileOptions {
  /** The kernel layer's openNamespace; injected so that this module stays testable. */
  openNamespace: (netns: string) => NamespaceKernel | Promise<NamespaceKernel>;
  /** Names now in /run/netns; a desired namespace missing from it is reported, not opened. */
  existing?: readonly string[];
  /** Namespaces handled at the same time (default 4). */
  concurrency?: number;
  /**
   * What the name points at now (the kernel layer's netnsIdentity); undefined when gone.
   * Compared before and after a pass: handles keep a deleted namespace alive, so a
   * pass can "converge" a namespace nobody can reach any more.
   */
  identityOf?: (netns: string) => { dev: number; ino: number } | undefined;
}

export function emptyResult(netns: string, message: string, extra: Partial<ReconcileResult> = {}): ReconcileResult {
  return {
    netns,
    operations: [],
    converged: false,
    pending: [],
    errors: [{ message }],
    conflicts: [],
    warnings: [],
    applied: false,
    differences: [],
    routing: [],
    ...extra,
  };
}

export function notFoundMessage(netns: string): string {
  return `netns ${netns}: not found in /run/netns; will be configured when it appears`;
}

/** A logger whose lines all carry `ctx` (for loggers that are not pino children already). */
function withContext(log: Logger, ctx: object): Logger {
  return {
    info: (obj, msg) => log.info({ ...ctx, ...obj }, msg),
    warn: (obj, msg) => log.warn({ ...ctx, ...obj }, msg),
    error: (obj, msg) => log.error({ ...ctx, ...obj }, msg),
    debug: (obj, msg) => log.debug({ ...ctx, ...obj }, msg),
  };
}

/** Every namespace on its own: one failing (or missing) never stops another. Results keep input order. */
export async function reconcileAll(desired: readonly DesiredNamespace[], opts: ReconcileAllOptions): Promise<ReconcileResult[]> {
  const results: ReconcileResult[] = new Array(desired.length);
  const existing = opts.existing ? new Set(opts.existing) : undefined;
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < desired.length; i = next++) {
      const d = desired[i]!;
      if (opts.signal?.aborted) {
        results[i] = emptyResult(d.netns, `netns ${d.netns}: not reconciled: stopping`);
        continue;
      }
      if (d.netns !== 'host' && existing && !existing.has(d.netns)) {
        results[i] = emptyResult(d.netns, notFoundMessage(d.netns));
        opts.logger?.warn({ passId: opts.passId, netns: d.netns }, notFoundMessage(d.netns));
        continue;
      }
      try {
        // Handles belong to the kernel layer's cache (reused across passes): not closed here.
        const before = d.netns === 'host' ? undefined : opts.identityOf?.(d.netns);
        const kernel = await opts.openNamespace(d.netns);
        const logger = opts.logger && withContext(opts.logger, { passId: opts.passId, netns: d.netns });
        const r = await reconcileNamespace(kernel, d, logger ? { ...opts, logger } : opts);
        if (before) {
          const after = opts.identityOf!(d.netns);
          if (after?.dev !== before.dev || after?.ino !== before.ino) {
            opts.memo?.forget(kernel);
            const what = after ? 'deleted and re-created under the same name' : 'deleted';
            r.converged = false;
            r.errors.push({ message: `netns ${d.netns}: ${what} during this pass; its changes went to the namespace that was removed`, retryable: true });
            opts.logger?.warn({ passId: opts.passId, netns: d.netns }, `namespace ${what} during the pass`);
          }
        }
        results[i] = r;
      } catch (err) {
        const e = err instanceof KernelError ? { op: err.op, errno: err.code, retryable: err.retryable } : {};
        const message = `netns ${d.netns}: ${err instanceof Error ? err.message : String(err)}`;
        results[i] = emptyResult(d.netns, message);
        Object.assign(results[i]!.errors[0]!, e);
        opts.logger?.error({ passId: opts.passId, netns: d.netns, err: message }, 'pass failed');
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(opts.concurrency ?? 4, desired.length)) }, worker));
  return results;
}
