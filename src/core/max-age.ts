// The one expiry rule of the reconciler's kept values: a value read at time t is
// trusted until t + maxAgeMs on the monotonic clock (performance.now), which a
// wall-clock step (NTP, a suspended VM) cannot move.

/** Milliseconds on a clock that never goes back. */
export function monotonicNow(): number {
  return performance.now();
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
