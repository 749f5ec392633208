// Waiting for something another process or the kernel does, with a bound:
// one helper for every test instead of a copy per file. Both are functional
// bounds, not benchmarks; a check that throws counts as "not yet" and its last
// error is in the timeout message.

async function poll<T>(what: string, fn: () => T | Promise<T>, done: (v: T) => boolean, limitMs: number, stepMs: number): Promise<T> {
  const end = Date.now() + limitMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (done(v)) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`not within ${limitMs} ms: ${what}${last ? ` (last error: ${String(last)})` : ''}`);
    await new Promise((r) => setTimeout(r, stepMs));
  }
}

/** Polls `cond` every 20 ms until it returns something truthy, and returns that. */
export async function eventually<T>(what: string, cond: () => T | Promise<T>, limitMs = 5000): Promise<NonNullable<T>> {
  return (await poll(what, cond, (v) => Boolean(v), limitMs, 20)) as NonNullable<T>;
}

/**
 * Polls `fn` until it returns a value other than undefined or false (0 and ''
 * count: "the port", "the exit code"), and returns it. Slower steps than
 * `eventually`, for checks that run a program (ss, ip, nmcli) each time.
 */
export async function waitFor<T>(what: string, fn: () => T | undefined | false, limitMs = 15_000, stepMs = 50): Promise<T> {
  return (await poll(what, fn, (v) => v !== undefined && v !== false, limitMs, stepMs)) as T;
}
