// One reconcile pass for one namespace: read live (only what the desired state
// needs), plan, apply in order, re-read, verify. Verification is the judge: an
// operation that failed because someone else already did the same thing (EEXIST on
// an add, "address not found" on a delete) is harmless exactly when the re-read
// state verifies, so no error code is special-cased here.
import type { KernelWrite, KernelWriteResult, LiveFingerprint, LiveSelection, NamespaceKernel } from '../kernel/api.js';
import { KernelError } from '../kernel/api.js';
import type { DesiredNamespace, EndpointSpec, KernelCapabilities, LiveNamespace, NamespacePlan, NamespaceResult, Operation } from '../core/model.js';
import type { MptcpKey } from '../config/schema.js';
import { endpointKey } from '../core/address.js';
import { planNamespace } from '../core/plan.js';
import { type VerifyResult, verifyNamespace } from '../core/verify.js';
import type { Conflict, Decision } from '../conflicts/index.js';

/** The subset of pino the shell uses; pino loggers fit, and so does nothing at all. */
export interface Logger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
  debug(obj: object, msg?: string): void;
}

/**
 * What src/conflicts decided for one namespace this pass: `block` (conflicts: fail
 * with an active manager) changes nothing; otherwise the conflicts are reported.
 */
export type ConflictVerdict = Pick<Decision, 'block' | 'report' | 'conflicts' | 'message'>;

export type ConflictGate = (ctx: {
  netns: string;
  desired: DesiredNamespace;
  live: LiveNamespace;
  plan: NamespacePlan;
}) => ConflictVerdict | Promise<ConflictVerdict>;

export interface ReconcileOptions {
  mode: 'enforce' | 'observe';
  passId?: string;
  logger?: Logger;
  /** Checked only between independent operations: a replace always completes both halves. */
  signal?: AbortSignal;
  conflictGate?: ConflictGate;
  /** Sees the live state each pass planned from (plan output shows it as a diff). */
  onLive?: (live: LiveNamespace, plan: NamespacePlan) => void;
  /** The running kernel's capabilities per namespace (kernel/capabilities.ts): what it can't hold is refused. */
  capabilitiesOf?: (netns: string) => KernelCapabilities | undefined;
  /**
   * Called just before each operation is written. A test seam: fault tests delete a
   * namespace or an interface, or stop the daemon, exactly between two operations.
   */
  beforeOperation?: (op: Operation, index: number) => void | Promise<void>;
}

export type OpResult = NamespaceResult['operations'][number] & {
  /** A failure that verification showed to be harmless (someone else did the same). */
  note?: string;
};

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
  return {
    endpoints: eps !== undefined,
    limits: desired.limits.subflows !== undefined || desired.limits.addAddrAccepted !== undefined,
    links: usesDev || rpIfaces.length > 0,
    addresses: (eps ?? []).some((e) => e.dev !== undefined && e.address === undefined),
    mptcp: mptcpKeys.length > 0 ? mptcpKeys : false,
    rpFilter: rpIfaces.length > 0 ? rpIfaces : false,
  };
}

function describeOp(op: Operation): string {
  switch (op.op) {
    case 'add':
    case 'delete':
    case 'set-flags': {
      const ep = op.endpoint;
      return `${op.op} ${ep.address}${ep.port ? ` port ${ep.port}` : ''}${'id' in op ? ` id ${op.id}` : ''}`;
    }
    case 'set-limits':
      return 'set-limits';
    case 'set-sysctl':
      return `set-sysctl ${op.sysctl}`;
    case 'set-rp-filter':
      return `set-rp-filter ${op.iface}`;
  }
}

/**
 * Index of the earlier operation this one cannot run without, or -1. An add
 * needs the delete that frees its (address, port) — the two halves of a replace —
 * or the id it pins. Nothing else depends on anything.
 */
export function dependencyOf(ops: readonly Operation[], i: number): number {
  const op = ops[i]!;
  if (op.op !== 'add') return -1;
  const key = endpointKey(op.endpoint.address, op.endpoint.port);
  for (let j = i - 1; j >= 0; j--) {
    const d = ops[j]!;
    if (d.op !== 'delete') continue;
    if (endpointKey(d.endpoint.address, d.endpoint.port) === key) return j;
    if (op.endpoint.id !== undefined && d.id === op.endpoint.id) return j;
  }
  return -1;
}

function withIfindex(op: Extract<Operation, { op: 'add' }>, live: LiveNamespace, netns: string): EndpointSpec {
  const ep = { ...op.endpoint };
  if (ep.dev !== undefined) {
    // Resolved now, not at plan time: the interface may have been re-created since.
    const link = live.links.find((l) => l.name === ep.dev);
    if (!link) throw new Error(`dev ${ep.dev} does not exist in netns ${netns}`);
    ep.ifindex = link.ifindex;
  }
  return ep;
}

/** The mptcp_pm write of a netlink operation (batchable), or undefined for a /proc/sys one. */
function kernelWrite(op: Operation, live: LiveNamespace, netns: string): KernelWrite | undefined {
  switch (op.op) {
    case 'add':
      return { op: 'add', endpoint: withIfindex(op, live, netns) };
    case 'delete':
      return { op: 'delete', id: op.id };
    case 'set-flags':
      return { op: 'set-flags', id: op.id, backup: op.backup, fullmesh: op.fullmesh };
    case 'set-limits': {
      const limits: { subflows?: number; addAddrAccepted?: number } = {};
      if (op.subflows !== undefined) limits.subflows = op.subflows;
      if (op.addAddrAccepted !== undefined) limits.addAddrAccepted = op.addAddrAccepted;
      return { op: 'set-limits', limits };
    }
    default:
      return undefined;
  }
}

async function runOp(kernel: NamespaceKernel, op: Operation, live: LiveNamespace): Promise<void> {
  switch (op.op) {
    case 'add':
      return kernel.addEndpoint(withIfindex(op, live, kernel.netns));
    case 'delete':
      return kernel.deleteEndpoint(op.id);
    case 'set-flags':
      return kernel.setEndpointFlags(op.id, { backup: op.backup, fullmesh: op.fullmesh });
    case 'set-limits': {
      const l: { subflows?: number; addAddrAccepted?: number } = {};
      if (op.subflows !== undefined) l.subflows = op.subflows;
      if (op.addAddrAccepted !== undefined) l.addAddrAccepted = op.addAddrAccepted;
      return kernel.setLimits(l);
    }
    case 'set-sysctl':
      return kernel.writeMptcpSysctl(op.key, op.value);
    case 'set-rp-filter':
      return kernel.writeRpFilter(op.iface, op.value);
  }
}

function errorEntry(err: unknown, op: Operation): NamespaceResult['errors'][number] & { extack?: string } {
  if (err instanceof KernelError) {
    const e: NamespaceResult['errors'][number] & { extack?: string } = {
      message: err.message,
      op: err.op,
      errno: err.code,
      retryable: err.retryable,
    };
    if (err.extack !== undefined) e.extack = err.extack;
    return e;
  }
  return { message: `${describeOp(op)}: ${err instanceof Error ? err.message : String(err)}`, op: describeOp(op) };
}

/**
 * The last pass of a handle that planned nothing and verified: for which desired
 * state (the object itself: a config reload resolves new ones), the fingerprint
 * of what it read, and what it concluded. A pass is a pure function of (desired,
 * live), so a read that finds the same bytes again would plan and verify the same:
 * it is answered from here, and a converged resync costs little more than its
 * syscalls. Keyed by handle: a namespace re-created under its name gets a new one.
 */
interface ConvergedMemo {
  desired: DesiredNamespace;
  fingerprint: LiveFingerprint;
  live: LiveNamespace;
  plan: NamespacePlan;
  verify: VerifyResult;
}
const memos = new WeakMap<NamespaceKernel, ConvergedMemo>();

/** How often a pass was answered from the memo of the previous one (for tests and benchmarks). */
export const passMemoStats = { hits: 0, stored: 0 };

/** Forgets what the last converged pass of `kernel` read: its next pass plans and verifies in full. */
export function forgetConvergedPass(kernel: NamespaceKernel): void {
  memos.delete(kernel);
}

/** One pass over one namespace. Never throws for kernel errors: they are in the result. */
export async function reconcileNamespace(
  kernel: NamespaceKernel,
  desired: DesiredNamespace,
  opts: ReconcileOptions,
): Promise<ReconcileResult> {
  const log = opts.logger;
  const ctx = { passId: opts.passId, netns: desired.netns };
  const select = liveSelection(desired);
  const memo = memos.get(kernel);
  // Set again only by a pass that ends planning nothing and verified; a write, an
  // error or a throw in between leaves it forgotten.
  memos.delete(kernel);
  let live: LiveNamespace;
  let fingerprint: LiveFingerprint | undefined;
  let hit: ConvergedMemo | undefined;
  if (kernel.readLiveIfChanged) {
    const r = await kernel.readLiveIfChanged(select, memo?.desired === desired ? memo.fingerprint : undefined);
    fingerprint = r.fingerprint;
    if (r.live) live = r.live;
    else {
      hit = memo!;
      live = hit.live;
      passMemoStats.hits++;
    }
  } else live = await kernel.readLive(select);
  const plan = hit ? hit.plan : planNamespace(desired, live, opts.capabilitiesOf?.(live.netns));
  const remember = (v: VerifyResult) => {
    if (!fingerprint || plan.operations.length > 0 || plan.errors.length > 0 || !v.converged) return;
    memos.set(kernel, hit ?? { desired, fingerprint, live, plan, verify: v });
    if (!hit) passMemoStats.stored++;
  };
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
  };

  let blocked = false;
  if (opts.conflictGate) {
    const verdict = await opts.conflictGate({ netns: desired.netns, desired, live, plan });
    result.conflicts = verdict.conflicts;
    blocked = verdict.block;
    if (blocked) result.errors.push({ message: verdict.message, op: 'conflict' });
    else if (verdict.report && verdict.message) result.warnings.push(verdict.message);
    if (verdict.report && verdict.message) {
      const managers = [...new Set(verdict.conflicts.map((c) => c.manager))];
      (blocked ? log?.error : log?.warn)?.call(log, { ...ctx, managers, conflicts: verdict.conflicts.length }, verdict.message);
    }
  }

  if (opts.mode === 'observe' || blocked) {
    if (blocked) for (const o of result.operations) o.result = 'skipped';
    const v = hit ? hit.verify : verifyNamespace(desired, live);
    remember(v);
    result.converged = v.converged && !blocked && plan.errors.length === 0;
    result.differences = v.differences;
    if (v.firstDifference !== undefined) result.firstDifference = v.firstDifference;
    log?.info({ ...ctx, mode: opts.mode, drift: plan.operations.length, converged: result.converged }, 'pass planned');
    return result;
  }

  result.applied = true;
  const ops = plan.operations;
  const succeeded = (i: number) => {
    result.operations[i]!.result = 'ok';
    log?.info({ ...ctx, op: ops[i]!.op, what: describeOp(ops[i]!), reason: ops[i]!.reason }, 'change applied');
  };
  const failed = async (i: number, err: unknown) => {
    if (!(err instanceof KernelError) && !(err instanceof Error)) throw err;
    const r = result.operations[i]!;
    const e = errorEntry(err, ops[i]!);
    const o = ops[i]!;
    if (o.op === 'delete' && (await goneNow(kernel, o.id, o.endpoint))) {
      // Someone removed it first: the delete's purpose holds, so what depends on it may run.
      r.result = 'ok';
      r.note = `already gone: ${e.message}`;
      log?.info({ ...ctx, op: o.op, what: describeOp(o) }, 'already done by someone else');
      return;
    }
    r.result = 'failed';
    r.error = e.message;
    result.errors.push(e);
    log?.warn({ ...ctx, op: o.op, errno: e.errno, extack: e.extack, err: e.message }, 'change failed');
  };
  // Runs of mptcp_pm writes go to the kernel in one sendmsg (runBatch): the
  // round trip per write was most of a cold pass. A run ends before a /proc/sys
  // write (the planner's order holds) and before an operation that depends on one
  // still in the run: the kernel would run it even when its dependency failed.
  // beforeOperation sees each operation of a run before the run is sent.
  let batch: { i: number; write: KernelWrite }[] = [];
  const flush = async () => {
    if (batch.length === 0) return;
    const run = batch;
    batch = [];
    let answers: KernelWriteResult[];
    try {
      answers = await kernel.runBatch!(run.map((b) => b.write));
    } catch (err) {
      // The socket itself failed: no write of the run has an answer of its own.
      for (const b of run) await failed(b.i, err);
      return;
    }
    for (let k = 0; k < run.length; k++) {
      const a = answers[k]!;
      if (a.ok) succeeded(run[k]!.i);
      else await failed(run[k]!.i, a.error);
    }
  };
  for (let i = 0; i < ops.length; i++) {
    const r = result.operations[i]!;
    const dep = dependencyOf(ops, i);
    if (dep >= 0 && batch.some((b) => b.i === dep)) await flush();
    const depDone = dep >= 0 && result.operations[dep]!.result === 'ok';
    // A stop request waits for the second half of a replace whose first half ran.
    if (opts.signal?.aborted && !depDone) {
      r.result = 'skipped';
      r.error = 'not run: stopping';
      continue;
    }
    if (dep >= 0 && result.operations[dep]!.result !== 'ok') {
      r.result = 'skipped';
      r.error = `not run: it depends on operation ${dep + 1} (${describeOp(ops[dep]!)}), which did not succeed`;
      continue;
    }
    try {
      await opts.beforeOperation?.(ops[i]!, i);
      const write = kernel.runBatch ? kernelWrite(ops[i]!, live, kernel.netns) : undefined;
      if (write) {
        batch.push({ i, write });
        continue;
      }
      await flush();
      await runOp(kernel, ops[i]!, live);
      succeeded(i);
    } catch (err) {
      // The writes queued before it are answered first: errors stay in the planner's order.
      await flush();
      await failed(i, err);
    }
  }
  await flush();

  // Nothing was written, so a re-read would only repeat the read just judged (it
  // doubled the cost of a converged pass, the daemon's common case).
  const after = ops.length === 0 ? live : await kernel.readLive(select);
  const v = hit ? hit.verify : verifyNamespace(desired, after);
  remember(v);
  result.differences = v.differences;
  if (v.firstDifference !== undefined) result.firstDifference = v.firstDifference;
  result.converged = v.converged && plan.errors.length === 0;
  if (v.converged) {
    // The state is as desired, so whatever failed was already done by someone else.
    const opErrors = new Set(result.operations.filter((o) => o.result === 'failed').map((o) => o.error));
    for (const o of result.operations) {
      if (o.result !== 'failed') continue;
      o.result = 'ok';
      o.note = `already as desired after: ${o.error}`;
      delete o.error;
    }
    result.errors = result.errors.filter((e) => !opErrors.has(e.message));
  }
  log?.info(
    { ...ctx, changes: ops.length, failed: result.operations.filter((o) => o.result === 'failed').length, converged: result.converged, firstDifference: result.firstDifference },
    'pass done',
  );
  return result;
}

/** Whether neither the id nor the (address, port) of a deleted endpoint is in the kernel any more. */
async function goneNow(kernel: NamespaceKernel, id: number, ep: { address: string; port?: number }): Promise<boolean> {
  try {
    const key = endpointKey(ep.address, ep.port);
    const eps = await kernel.dumpEndpoints();
    return !eps.some((e) => e.id === id || endpointKey(e.address, e.port) === key);
  } catch {
    return false;
  }
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
    ...extra,
  };
}

export function notFoundMessage(netns: string): string {
  return `netns ${netns}: not found in /run/netns; will be configured when it appears`;
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
        const r = await reconcileNamespace(kernel, d, opts);
        if (before) {
          const after = opts.identityOf!(d.netns);
          if (after?.dev !== before.dev || after?.ino !== before.ino) {
            forgetConvergedPass(kernel);
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
