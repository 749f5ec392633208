// The routing half of a pass's writes (source routing): the routes and rules a
// new endpoint needs go before the endpoint writes, removals after them. A
// route or rule that fails is reported and the rest still run; an endpoint
// whose rule could not be added is not added either, since its first join
// would leave by the wrong interface and be dropped by a filtering gateway.
import { KernelError, type KernelWriter } from '../kernel/api.js';
import type { Operation, RoutingOpResult } from '../core/model.js';
import { canonicalAddress } from '../core/address.js';
import { describeRoutingOp, type RoutingOp, type RoutingPlan } from '../core/source-routing.js';
import type { ErrorEntry, OpResult } from './executor.js';
import type { Logger } from './reconcile.js';

/** The plan's routing writes in run order, each marked with its phase. */
export function routingResults(plan: RoutingPlan | undefined): RoutingOpResult[] {
  if (!plan) return [];
  return [...plan.before.map((op) => ({ ...op, when: 'before' as const })), ...plan.after.map((op) => ({ ...op, when: 'after' as const }))];
}

function entryOf(err: KernelError | Error, op: RoutingOp): ErrorEntry {
  if (err instanceof KernelError) return { message: err.message, op: err.op, errno: err.code, retryable: err.retryable };
  return { message: `${describeRoutingOp(op)}: ${err.message}`, op: op.op };
}

/**
 * Runs the routing writes of one phase; fills in `results` (from routingResults)
 * and returns the errors. Never throws for a kernel error.
 */
export async function runRoutingPhase(
  writer: KernelWriter,
  results: RoutingOpResult[],
  when: 'before' | 'after',
  log: Logger | undefined,
): Promise<ErrorEntry[]> {
  const mine = results.filter((r) => r.when === when);
  if (mine.length === 0) return [];
  const errors: ErrorEntry[] = [];
  const fail = (r: RoutingOpResult, e: ErrorEntry) => {
    r.result = 'failed';
    r.error = e.message;
    errors.push(e);
    log?.warn({ op: r.op, what: describeRoutingOp(r), errno: e.errno, err: e.message }, 'change failed');
  };
  if (!writer.runRouting) {
    for (const r of mine) fail(r, { message: `${describeRoutingOp(r)}: this kernel handle cannot write routes or rules (netns ${writer.netns})`, op: r.op });
    return errors;
  }
  const ops: RoutingOp[] = mine.map(({ when: _w, result: _r, error: _e, ...op }) => op as RoutingOp);
  let answers;
  try {
    answers = await writer.runRouting(ops);
  } catch (err) {
    for (const r of mine) fail(r, entryOf(err instanceof Error ? err : new Error(String(err)), r));
    return errors;
  }
  mine.forEach((r, k) => {
    const a = answers[k]!;
    if (a.ok) {
      r.result = 'ok';
      log?.info({ op: r.op, what: describeRoutingOp(r) }, 'change applied');
    } else fail(r, entryOf(a.error, r));
  });
  return errors;
}

/** Addresses whose `from ADDR` rule failed to go in: their endpoint must wait for it. */
export function addressesWithoutRule(results: readonly RoutingOpResult[]): Set<string> {
  const out = new Set<string>();
  for (const r of results) if (r.op === 'add-rule' && r.result === 'failed') out.add(canonicalAddress(r.rule.src));
  return out;
}

/**
 * The endpoint operations split into those to run and those refused (an add
 * whose source rule failed); `merge` puts the executor's results back in plan
 * order with the refused ones skipped.
 */
export function refuseWithoutRule(ops: readonly Operation[], routing: readonly RoutingOpResult[]): { run: Operation[]; merge(done: OpResult[]): OpResult[] } {
  const noRule = addressesWithoutRule(routing);
  const why = ops.map((o) => (o.op === 'add' && noRule.has(canonicalAddress(o.endpoint.address)) ? `not run: the rule from ${o.endpoint.address} it needs failed` : undefined));
  return {
    run: ops.filter((_, i) => why[i] === undefined),
    merge(done) {
      let k = 0;
      return ops.map((o, i) => (why[i] === undefined ? done[k++]! : { ...o, result: 'skipped', error: why[i]! }));
    },
  };
}
