// "Ready" means: the first pass over every namespace managed at start is done
// (or the namespace left the managed set meanwhile). `daemon.ready` and
// /readyz both read it.
export class Readiness {
  readonly ready: Promise<void>;
  private isReady = false;
  private waiting: Set<string> | undefined;
  private resolve!: () => void;
  private reject!: (e: Error) => void;

  /** `onReady`: called once the last first pass is done (not when there was nothing to wait for). */
  constructor(private readonly onReady: () => void) {
    this.ready = new Promise<void>((res, rej) => {
      this.resolve = res;
      this.reject = rej;
    });
    // A start failure is reported through `ready`; nobody else may see it as unhandled.
    this.ready.catch(() => {});
  }

  get done(): boolean {
    return this.isReady;
  }

  /** The namespaces whose first pass makes the daemon ready. */
  begin(names: Iterable<string>): void {
    this.waiting = new Set(names);
    if (this.waiting.size > 0) return;
    this.isReady = true;
    this.resolve();
  }

  /** A namespace had a pass, or left the managed set. */
  passDone(ns: string): void {
    if (!this.waiting || this.isReady) return;
    this.waiting.delete(ns);
    if (this.waiting.size > 0) return;
    this.isReady = true;
    this.onReady();
    this.resolve();
  }

  /** Start failed or the daemon stopped first; no effect once ready. */
  fail(err: Error): void {
    this.reject(err);
  }
}
