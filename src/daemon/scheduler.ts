// The reconcile loop's bookkeeping, free of kernel and file I/O so it can be
// tested with a fake pass: a dirty set keyed by namespace, at most one pass per
// namespace at a time, exponential backoff per namespace for retryable failures.
//
// Level-triggered: a trigger says only "look at this namespace again"; the pass
// reads everything fresh, so any number of triggers before a pass starts collapse
// into one pass, and a trigger during a pass buys exactly one more pass.

export interface PassOutcome {
  /** The pass failed in a way that trying again later can fix: back off, then retry. */
  retry?: boolean;
}

export type PassRunner = (netns: string, reasons: readonly string[]) => Promise<PassOutcome>;

export interface BackoffOptions {
  initialMs: number;
  maxMs: number;
}

export interface SchedulerOptions {
  run: PassRunner;
  /** Passes of different namespaces that may run side by side (they wait on netlink, not CPU). */
  concurrency?: number;
  backoff?: BackoffOptions;
  /** A pass threw instead of returning an outcome: a bug, reported and retried with backoff. */
  onCrash?: (netns: string, err: unknown) => void;
}

interface BackoffState {
  failures: number;
  until: number;
  timer?: NodeJS.Timeout;
}

const RESYNC_ONLY: ReadonlySet<string> = new Set(['resync']);
const RESYNC_REASONS: readonly string[] = Object.freeze(['resync']);

export const DEFAULT_BACKOFF: BackoffOptions = { initialMs: 100, maxMs: 30_000 };

export class Scheduler {
  private readonly dirty = new Map<string, Set<string> | typeof RESYNC_ONLY>();
  private readonly running = new Map<string, Promise<void>>();
  private readonly backoffs = new Map<string, BackoffState>();
  private readonly idleWaiters: (() => void)[] = [];
  private readonly concurrency: number;
  private readonly backoff: BackoffOptions;
  private stopped = false;

  constructor(private readonly opts: SchedulerOptions) {
    this.concurrency = Math.max(1, opts.concurrency ?? 8);
    this.backoff = opts.backoff ?? DEFAULT_BACKOFF;
  }

  /**
   * Marks a namespace for a pass. `urgent` (a new config, a namespace that came
   * back) cancels a pending backoff: the cause of the failures may be gone.
   */
  mark(netns: string, reason: string, opts?: { urgent?: boolean }): void {
    if (this.stopped) return;
    this.addReason(netns, reason);
    if (opts?.urgent) this.clearBackoff(netns);
    this.pump();
  }

  // A resync round marks every namespace; most have no other reason. They share one
  // set instead of a set each that lives until its pass starts (long enough to be
  // promoted to V8's old generation at 800 namespaces, then collected there).
  private addReason(netns: string, reason: string): void {
    const reasons = this.dirty.get(netns);
    if (reasons === undefined) this.dirty.set(netns, reason === 'resync' ? RESYNC_ONLY : new Set([reason]));
    else if (reasons === RESYNC_ONLY) {
      if (reason !== 'resync') this.dirty.set(netns, new Set(['resync', reason]));
    } else (reasons as Set<string>).add(reason);
  }

  /** Drops a namespace: nothing pending, no backoff. A pass in flight finishes. */
  forget(netns: string): void {
    this.dirty.delete(netns);
    this.clearBackoff(netns);
    this.settle();
  }

  isDirty(netns: string): boolean {
    return this.dirty.has(netns);
  }

  isRunning(netns: string): boolean {
    return this.running.has(netns);
  }

  /** Consecutive retryable failures of a namespace (0 when healthy). */
  failures(netns: string): number {
    return this.backoffs.get(netns)?.failures ?? 0;
  }

  /** Resolves once nothing is running and nothing is dirty except namespaces waiting out a backoff. */
  whenIdle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Stops taking work and waits for the passes in flight to finish (they are never cut short here). */
  async stop(): Promise<void> {
    this.stopped = true;
    this.dirty.clear();
    for (const ns of [...this.backoffs.keys()]) this.clearBackoff(ns);
    await Promise.all([...this.running.values()]);
    this.settle();
  }

  private isIdle(): boolean {
    if (this.running.size > 0) return false;
    for (const ns of this.dirty.keys()) if (!this.waiting(ns)) return false;
    return true;
  }

  private waiting(netns: string): boolean {
    const b = this.backoffs.get(netns);
    return b !== undefined && b.until > Date.now();
  }

  private clearBackoff(netns: string): void {
    const b = this.backoffs.get(netns);
    if (b?.timer) clearTimeout(b.timer);
    this.backoffs.delete(netns);
  }

  private pump(): void {
    if (this.stopped) return;
    for (const [ns, reasons] of this.dirty) {
      if (this.running.size >= this.concurrency) break;
      if (this.running.has(ns) || this.waiting(ns)) continue;
      this.dirty.delete(ns);
      this.start(ns, reasons === RESYNC_ONLY ? RESYNC_REASONS : [...reasons]);
    }
    this.settle();
  }

  private start(netns: string, reasons: readonly string[]): void {
    const p = (async () => {
      let outcome: PassOutcome;
      try {
        outcome = await this.opts.run(netns, reasons);
      } catch (err) {
        this.opts.onCrash?.(netns, err);
        outcome = { retry: true };
      }
      this.running.delete(netns);
      if (this.stopped) return;
      if (outcome.retry) this.scheduleRetry(netns);
      else this.clearBackoff(netns);
      this.pump();
    })();
    this.running.set(netns, p);
  }

  private scheduleRetry(netns: string): void {
    const prev = this.backoffs.get(netns);
    if (prev?.timer) clearTimeout(prev.timer);
    const failures = (prev?.failures ?? 0) + 1;
    const delay = Math.min(this.backoff.maxMs, this.backoff.initialMs * 2 ** (failures - 1));
    const state: BackoffState = { failures, until: Date.now() + delay };
    state.timer = setTimeout(() => {
      state.timer = undefined;
      state.until = 0;
      this.pump();
    }, delay);
    this.backoffs.set(netns, state);
    this.addReason(netns, 'retry');
  }

  private settle(): void {
    if (!this.isIdle()) return;
    for (const w of this.idleWaiters.splice(0)) w();
  }
}
