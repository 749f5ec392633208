// One daemon pass over one namespace: take its handles, run the apply engine
// (read -> plan -> gate -> execute -> verify), then report. A crash of the
// engine becomes a retryable error result, never a dead loop.
import { randomBytes } from 'node:crypto';
import type { ConflictChecker } from '../apply/conflict-gate.js';
import type { PassMemo } from '../apply/pass-memo.js';
import type { ConflictGate, Logger as PassLogger } from '../apply/reconcile.js';
import type { DesiredNamespace, KernelCapabilities, LinkHold, LiveNamespace } from '../core/model.js';
import type { NamespaceKernel } from '../kernel/api.js';
import type { EventSocketHandlers } from '../kernel/events.js';
import type { NetnsIdentity } from '../kernel/netns.js';
import type { Logger } from '../log.js';
import type { PassOutcome } from './scheduler.js';
import type { NamespaceRegistry } from './namespace-registry.js';
import type { LinkWatch } from './link-watch.js';
import { activeManagers, type Mode, type PassReport, type PassResult } from './pass-report.js';

export interface ReconcileCall {
  mode: Mode;
  passId: string;
  logger: PassLogger;
  signal: AbortSignal;
  conflictGate?: ConflictGate;
  memo: PassMemo;
  /** The kernel's capabilities in this namespace: what it cannot hold is refused with the reason. */
  capabilitiesOf?: (netns: string) => KernelCapabilities | undefined;
  /** linkDown: which interfaces' endpoints this pass holds back (see LinkWatch). */
  linkHold?: (live: LiveNamespace) => LinkHold | undefined;
}

export interface PassDeps {
  /** `identity`: netnsIdentity(name) just taken, so that it is not stat'ed twice per pass. */
  openNamespace(name: string, identity?: NetnsIdentity): NamespaceKernel;
  reconcile(kernel: NamespaceKernel, desired: DesiredNamespace, opts: ReconcileCall): Promise<PassResult>;
  /** Probed once per handle (so again after a re-open), cheaply: /proc/sys and the release. */
  capabilities?(kernel: NamespaceKernel): KernelCapabilities | undefined;
}

export interface PassRunnerOptions {
  mode: Mode;
  deps: PassDeps;
  registry: NamespaceRegistry;
  report: PassReport;
  memo: PassMemo;
  conflicts: ConflictChecker | undefined;
  logger: Logger;
  signal: AbortSignal;
  isRunning(): boolean;
  eventHandlers(ns: string): EventSocketHandlers;
  /** Consecutive failures the scheduler counted for the namespace. */
  failures(ns: string): number;
  /** The namespace had its pass (or left the managed set): counts toward "ready". */
  passDone(ns: string): void;
  /** linkDown: withdraw, per namespace; without it nothing is held back. */
  links?: LinkWatch;
}

// 8 hex digits per pass from a pool of random bytes: one getrandom per 512
// passes instead of one per pass (a resync round is a pass per namespace).
let idPool = Buffer.alloc(0);
let idAt = 0;
function newPassId(): string {
  if (idAt + 4 > idPool.length) {
    idPool = randomBytes(2048);
    idAt = 0;
  }
  idAt += 4;
  return idPool.toString('hex', idAt - 4, idAt);
}

/**
 * One pass's logger: a pino child (every line carries passId and netns, once),
 * made only when a line is written. Most resync passes write none, and a child
 * serialises its bindings when created. The apply engine's own per-pass summary
 * goes to debug: the daemon's line (with result and duration) replaces it.
 */
function passLogger(log: Logger, bindings: { passId: string; netns: string }): PassLogger {
  let child: Logger | undefined;
  const c = () => (child ??= log.child(bindings));
  const debug = (obj: object, msg?: string) => {
    if (log.isLevelEnabled('debug')) c().debug(obj, msg);
  };
  return {
    info: (obj, msg) => {
      if (msg === 'pass done' || msg === 'pass planned') debug(obj, msg);
      else if (log.isLevelEnabled('info')) c().info(obj, msg);
    },
    warn: (obj, msg) => c().warn(obj, msg),
    error: (obj, msg) => c().error(obj, msg),
    debug,
  };
}

function crashResult(ns: string, err: unknown): PassResult {
  const e = err as Error & { op?: string; code?: string };
  return {
    netns: ns,
    operations: [],
    converged: false,
    pending: [],
    errors: [{ message: e.message ?? String(err), ...(e.op ? { op: e.op } : {}), ...(e.code ? { errno: e.code } : {}), retryable: true }],
  };
}

export function passRunner(o: PassRunnerOptions): (ns: string, reasons: readonly string[]) => Promise<PassOutcome> {
  return async (ns, reasons) => {
    const want = o.registry.desired.get(ns);
    if (!want || !o.isRunning()) return {};
    const passId = newPassId();
    const plog = passLogger(o.logger, { passId, netns: ns });
    const started = performance.now();
    let result: PassResult;
    let crashed: unknown;
    try {
      const h = o.registry.ensure(ns, () => o.eventHandlers(ns));
      if (!h) {
        o.registry.drop(ns, 'gone from /run/netns');
        return {};
      }
      // Fight records follow the namespace, not its name: taken after the handles,
      // so one re-created under the same name is judged on its own record.
      if (h.identity) o.conflicts?.noteIdentity(ns, h.identity);
      const kernel = h.identity ? o.deps.openNamespace(ns, h.identity) : o.deps.openNamespace(ns);
      const gate = o.conflicts && h.identity ? o.conflicts.gate(h.identity) : undefined;
      const caps = o.deps.capabilities?.(kernel);
      const linkHold = o.links?.holdFor(ns, h.identity, want, plog);
      const call: ReconcileCall = { mode: o.mode, passId, logger: plog, signal: o.signal, memo: o.memo };
      if (gate) call.conflictGate = gate;
      if (caps) call.capabilitiesOf = () => caps;
      if (linkHold) call.linkHold = linkHold;
      result = await o.deps.reconcile(kernel, want, call);
    } catch (err) {
      crashed = err;
      result = crashResult(ns, err);
    }
    const seconds = (performance.now() - started) / 1000;
    // Dropped or replaced while the pass ran: its result describes nothing we manage.
    if (!o.registry.desired.has(ns)) return {};
    // A link-down withdrawal or restoration corrects nobody: it is not part of a fight.
    const corrections = result.operations.length === 0 ? result.operations : result.operations.filter((op) => op.linkDown === undefined);
    if (crashed === undefined) o.conflicts?.record(ns, result.applied === true && o.mode === 'enforce', corrections, result.held, activeManagers(result)[0]);
    const retry = crashed !== undefined || result.errors.some((e) => e.retryable === true);
    o.report.record({ netns: ns, passId, reasons, result, crashed, seconds, retry, failuresBefore: o.failures(ns) }, plog);
    o.passDone(ns);
    return { retry };
  };
}
