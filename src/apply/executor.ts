// Writes a plan's operations in the planner's order. Runs of mptcp_pm writes go
// to the kernel in one sendmsg: the round trip per write was most of a cold pass.
// A run ends before a /proc/sys write (the planner's order holds) and before an
// operation that depends on one still in the run, since the kernel would run it
// even when its dependency failed. Failed deletes whose endpoint is gone anyway
// count as done: the delete's purpose holds, so what depends on it may run.
// Deletes the planner marked `via: 'flush'` go as one FLUSH_ADDRS whose answer
// is each one's result.
import { KernelError, type KernelWrite, type KernelWriteResult, type KernelWriter } from '../kernel/api.js';
import type { EndpointSpec, LiveNamespace, NamespaceResult, Operation } from '../core/model.js';
import { endpointKey } from '../core/address.js';
import { describeOperation } from '../core/vocabulary.js';

export type OpResult = NamespaceResult['operations'][number] & {
  /** A failure that verification showed to be harmless (someone else did the same). */
  note?: string;
};

export type ErrorEntry = NamespaceResult['errors'][number] & { extack?: string };

export interface ExecuteOptions {
  /** Checked only between independent operations: a replace always completes both halves. */
  signal?: AbortSignal | undefined;
  /**
   * Called just before each operation is queued or written. A test seam: fault
   * tests delete a namespace or an interface, or stop the daemon, exactly
   * between two operations.
   */
  beforeOperation?: ((op: Operation, index: number) => void | Promise<void>) | undefined;
  onApplied?: (op: Operation) => void;
  onAlreadyDone?: (op: Operation) => void;
  onFailed?: (op: Operation, e: ErrorEntry) => void;
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

/**
 * The indices of the deletes to send as one FLUSH_ADDRS, or [] for none. Only
 * when they delete exactly the endpoints read before planning: FLUSH removes
 * everything, so a list cut short (or a plan for another state) goes one by one.
 * An endpoint created between the read and the FLUSH (by hand, or an implicit one
 * for a new connection) goes too; the pass's verify re-read shows it.
 */
export function flushGroup(ops: readonly Operation[], live: LiveNamespace): number[] {
  const group: number[] = [];
  ops.forEach((o, i) => o.op === 'delete' && o.via === 'flush' && group.push(i));
  if (group.length === 0) return group;
  const ids = new Set(group.map((i) => (ops[i] as { id: number }).id));
  const all = live.endpoints.length === ids.size && live.endpoints.every((e) => ids.has(e.id));
  return all ? group : [];
}

/** The mptcp_pm write of an operation, or undefined for a /proc/sys one. */
function netlinkWrite(op: Operation, live: LiveNamespace, netns: string): KernelWrite | undefined {
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

function writeFile(writer: KernelWriter, op: Operation): void {
  if (op.op === 'set-sysctl') writer.writeMptcpSysctl(op.key, op.value);
  else if (op.op === 'set-rp-filter') writer.writeRpFilter(op.iface, op.value);
}

function errorEntry(err: unknown, op: Operation): ErrorEntry {
  if (err instanceof KernelError) {
    const e: ErrorEntry = { message: err.message, op: err.op, errno: err.code, retryable: err.retryable };
    if (err.extack !== undefined) e.extack = err.extack;
    return e;
  }
  const what = describeOperation(op, 'short');
  return { message: `${what}: ${err instanceof Error ? err.message : String(err)}`, op: what };
}

/** Whether neither the id nor the (address, port) of a deleted endpoint is in the kernel any more. */
async function goneNow(writer: KernelWriter, id: number, ep: { address: string; port?: number }): Promise<boolean> {
  try {
    const key = endpointKey(ep.address, ep.port);
    const eps = await writer.dumpEndpoints();
    return !eps.some((e) => e.id === id || endpointKey(e.address, e.port) === key);
  } catch {
    return false;
  }
}

/**
 * Writes `ops` (planned from `live`); returns one result per operation and the
 * errors, in the planner's order. Never throws for a kernel error.
 */
export async function executeOperations(
  writer: KernelWriter,
  ops: readonly Operation[],
  live: LiveNamespace,
  opts: ExecuteOptions = {},
): Promise<{ results: OpResult[]; errors: ErrorEntry[] }> {
  const results: OpResult[] = ops.map((o) => ({ ...o }));
  const group = flushGroup(ops, live);
  const inGroup = new Set(group);
  /** The operations one queued write answers for: the whole group for the FLUSH. */
  const answered = (i: number) => (inGroup.has(i) ? group : [i]);
  const errors: ErrorEntry[] = [];
  const succeeded = (i: number) => {
    results[i]!.result = 'ok';
    opts.onApplied?.(ops[i]!);
  };
  const failed = async (i: number, err: unknown) => {
    if (!(err instanceof Error)) throw err;
    const r = results[i]!;
    const o = ops[i]!;
    const e = errorEntry(err, o);
    if (o.op === 'delete' && (await goneNow(writer, o.id, o.endpoint))) {
      r.result = 'ok';
      r.note = `already gone: ${e.message}`;
      opts.onAlreadyDone?.(o);
      return;
    }
    r.result = 'failed';
    r.error = e.message;
    // A failed FLUSH shows on each of its deletes but is one error.
    if (!inGroup.has(i) || !errors.some((x) => x.message === e.message)) errors.push(e);
    opts.onFailed?.(o, e);
  };

  let batch: { i: number; write: KernelWrite }[] = [];
  const flush = async () => {
    if (batch.length === 0) return;
    const run = batch;
    batch = [];
    let answers: KernelWriteResult[];
    try {
      answers = await writer.runBatch(run.map((b) => b.write));
    } catch (err) {
      // The socket itself failed: no write of the run has an answer of its own.
      for (const b of run) for (const i of answered(b.i)) await failed(i, err);
      return;
    }
    for (let k = 0; k < run.length; k++) {
      const a = answers[k]!;
      for (const i of answered(run[k]!.i)) {
        if (a.ok) succeeded(i);
        else await failed(i, a.error);
      }
    }
  };

  for (let i = 0; i < ops.length; i++) {
    const r = results[i]!;
    // The rest of the flush group is answered with its first member (or skipped with it).
    if (inGroup.has(i) && i !== group[0]) {
      const first = results[group[0]!]!;
      if (first.result === 'skipped') {
        r.result = 'skipped';
        r.error = first.error!;
      }
      continue;
    }
    const dep = dependencyOf(ops, i);
    if (dep >= 0 && batch.some((b) => answered(b.i).includes(dep))) await flush();
    const depDone = dep >= 0 && results[dep]!.result === 'ok';
    // A stop request waits for the second half of a replace whose first half ran.
    if (opts.signal?.aborted && !depDone) {
      r.result = 'skipped';
      r.error = 'not run: stopping';
      continue;
    }
    if (dep >= 0 && !depDone) {
      r.result = 'skipped';
      r.error = `not run: it depends on operation ${dep + 1} (${describeOperation(ops[dep]!, 'short')}), which did not succeed`;
      continue;
    }
    try {
      await opts.beforeOperation?.(ops[i]!, i);
      const write: KernelWrite | undefined = i === group[0] ? { op: 'flush' } : netlinkWrite(ops[i]!, live, writer.netns);
      if (write) {
        batch.push({ i, write });
        continue;
      }
      await flush();
      writeFile(writer, ops[i]!);
      succeeded(i);
    } catch (err) {
      // The writes queued before it are answered first: errors stay in the planner's order.
      await flush();
      for (const j of answered(i)) await failed(j, err);
    }
  }
  await flush();
  return { results, errors };
}
