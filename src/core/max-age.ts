// The one expiry rule of the reconciler's kept values: a value read at time t is
// trusted until t + maxAgeMs on the monotonic clock, which a wall-clock step
// (NTP, a suspended VM) cannot move. Stamps are only compared with each other.

/**
 * Milliseconds on a clock that never goes back. process.hrtime rather than
 * performance.now: the first use of `performance` loads perf_hooks, ~2 ms of a
 * one-shot command, for the same CLOCK_MONOTONIC.
 */
export function monotonicNow(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

export class MaxAge {
  constructor(readonly maxAgeMs: number) {}

  /** A stamp for a value read now. */
  stamp(): number {
    return monotonicNow();
  }

  /** Whether a value stamped at `at` may still be used. */
  fresh(at: number | undefined): boolean {
    return at !== undefined && monotonicNow() - at < this.maxAgeMs;
  }
}
