// Waiting for something another process or the kernel does, with a bound:
// one helper for every test instead of a copy per file.

/** Polls `cond` every 20 ms until it holds; fails after `limitMs` (a functional bound, not a benchmark). */
export async function eventually<T>(what: string, cond: () => T | Promise<T>, limitMs = 5000): Promise<NonNullable<T>> {
  const end = Date.now() + limitMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await cond();
      if (v) return v as NonNullable<T>;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`not within ${limitMs} ms: ${what}${last ? ` (last error: ${String(last)})` : ''}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
