// The loop's scheduling rules with a fake pass (pure: no kernel, no files).
import { describe, expect, it, vi } from 'vitest';
import { parseDuration } from '../src/core/duration.js';
import { Scheduler, type PassOutcome } from '../src/daemon/scheduler.js';

function deferred<T = void>() {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

describe('parseDuration', () => {
  it('reads the units operators write', () => {
    expect(parseDuration('500ms')).toBe(500);
    expect(parseDuration('5s')).toBe(5000);
    expect(parseDuration('1m')).toBe(60_000);
    expect(parseDuration('1m30s')).toBe(90_000);
    expect(parseDuration('1.5s')).toBe(1500);
  });
  it('refuses what is not a duration', () => {
    for (const bad of ['', '5', 's', '5 s', '-1s', '5d', '1s2']) expect(parseDuration(bad)).toBeUndefined();
  });
});

describe('Scheduler', () => {
  it('coalesces triggers that arrive before a pass starts into one pass', async () => {
    const calls: [string, string[]][] = [];
    const gate = deferred<PassOutcome>();
    const s = new Scheduler({
      concurrency: 1,
      run: async (ns, reasons) => {
        calls.push([ns, [...reasons]]);
        return ns === 'other' ? gate.promise : {};
      },
    });
    // Occupy the only slot so the next marks pile up.
    s.mark('other', 'x');
    s.mark('ns1', 'link');
    s.mark('ns1', 'addr');
    s.mark('ns1', 'resync');
    gate.resolve({});
    await s.whenIdle();
    expect(calls).toEqual([
      ['other', ['x']],
      ['ns1', ['link', 'addr', 'resync']],
    ]);
  });

  it('never runs two passes of one namespace at once; a trigger during a pass buys exactly one more', async () => {
    let active = 0;
    let maxActive = 0;
    const gates: ReturnType<typeof deferred<PassOutcome>>[] = [];
    const s = new Scheduler({
      run: async () => {
        active++;
        maxActive = Math.max(maxActive, active);
        const g = deferred<PassOutcome>();
        gates.push(g);
        const out = await g.promise;
        active--;
        return out;
      },
    });
    s.mark('ns1', 'first');
    expect(gates).toHaveLength(1);
    s.mark('ns1', 'during-1');
    s.mark('ns1', 'during-2');
    expect(gates).toHaveLength(1);
    expect(s.isDirty('ns1')).toBe(true);
    gates[0]!.resolve({});
    await new Promise((r) => setImmediate(r));
    expect(gates).toHaveLength(2);
    gates[1]!.resolve({});
    await s.whenIdle();
    expect(gates).toHaveLength(2);
    expect(maxActive).toBe(1);
  });

  it('runs different namespaces side by side up to the concurrency', async () => {
    const started: string[] = [];
    const gate = deferred<PassOutcome>();
    const s = new Scheduler({
      concurrency: 2,
      run: async (ns) => {
        started.push(ns);
        return gate.promise;
      },
    });
    for (const ns of ['a', 'b', 'c']) s.mark(ns, 't');
    expect(started).toEqual(['a', 'b']);
    gate.resolve({});
    await s.whenIdle();
    expect(started).toEqual(['a', 'b', 'c']);
  });

  it('backs off exponentially per namespace on retryable failures, then recovers', async () => {
    vi.useFakeTimers();
    try {
      let runs = 0;
      const s = new Scheduler({
        backoff: { initialMs: 100, maxMs: 250 },
        run: async () => (++runs <= 4 ? { retry: true } : {}),
      });
      s.mark('ns1', 't');
      await vi.advanceTimersByTimeAsync(0);
      expect(runs).toBe(1);
      // Triggers during the wait do not cut it short; they ride along with the retry.
      s.mark('ns1', 'link');
      await vi.advanceTimersByTimeAsync(99);
      expect(runs).toBe(1);
      await vi.advanceTimersByTimeAsync(1);
      expect(runs).toBe(2);
      await vi.advanceTimersByTimeAsync(199);
      expect(runs).toBe(2);
      await vi.advanceTimersByTimeAsync(1);
      expect(runs).toBe(3);
      // Capped at maxMs.
      await vi.advanceTimersByTimeAsync(249);
      expect(runs).toBe(3);
      await vi.advanceTimersByTimeAsync(1);
      expect(runs).toBe(4);
      await vi.advanceTimersByTimeAsync(250);
      expect(runs).toBe(5);
      expect(s.failures('ns1')).toBe(0);
      await vi.advanceTimersByTimeAsync(10_000);
      expect(runs).toBe(5);
    } finally {
      vi.useRealTimers();
    }
  });

  it('keeps a failing namespace from delaying the others', async () => {
    const runs: string[] = [];
    const s = new Scheduler({
      backoff: { initialMs: 60_000, maxMs: 60_000 },
      run: async (ns) => {
        runs.push(ns);
        return ns === 'bad' ? { retry: true } : {};
      },
    });
    s.mark('bad', 't');
    await s.whenIdle();
    s.mark('bad', 't2');
    s.mark('good', 't');
    await s.whenIdle();
    expect(runs).toEqual(['bad', 'good']);
    expect(s.failures('bad')).toBe(1);
    // An urgent trigger (new config) cancels the wait.
    s.mark('bad', 'config', { urgent: true });
    await s.whenIdle();
    expect(runs).toEqual(['bad', 'good', 'bad']);
    await s.stop();
  });

  it('treats a pass that throws as retryable and reports it', async () => {
    const crashes: string[] = [];
    let n = 0;
    const s = new Scheduler({
      backoff: { initialMs: 5, maxMs: 5 },
      onCrash: (ns) => crashes.push(ns),
      run: async () => {
        if (n++ === 0) throw new Error('boom');
        return {};
      },
    });
    s.mark('ns1', 't');
    while (n < 2) await new Promise((r) => setTimeout(r, 5));
    await s.whenIdle();
    expect(crashes).toEqual(['ns1']);
  });

  it('stop waits for the pass in flight and starts no new one', async () => {
    const gate = deferred<PassOutcome>();
    let finished = false;
    let runs = 0;
    const s = new Scheduler({
      run: async () => {
        runs++;
        await gate.promise;
        finished = true;
        return {};
      },
    });
    s.mark('ns1', 't');
    s.mark('ns1', 'again');
    const stopped = s.stop();
    let stopDone = false;
    void stopped.then(() => (stopDone = true));
    await new Promise((r) => setImmediate(r));
    expect(stopDone).toBe(false);
    gate.resolve({});
    await stopped;
    expect(finished).toBe(true);
    expect(runs).toBe(1);
    s.mark('ns1', 'after-stop');
    expect(runs).toBe(1);
  });
});
