// What the last converged pass of each kernel handle read and concluded. A pass
// is a pure function of (desired, live), so a read that finds the same bytes
// again would plan and verify the same: it is answered from here, and a
// converged resync costs little more than its syscalls. The daemon owns one
// memo for its lifetime; one-shot commands pass none and always plan in full.
import type { LiveFingerprint } from '../kernel/api.js';
import type { DesiredNamespace, LiveNamespace, NamespacePlan } from '../core/model.js';
import type { VerifyResult } from '../core/verify.js';

export interface ConvergedPass {
  /** The desired state itself (by identity: a config reload resolves new objects). */
  desired: DesiredNamespace;
  fingerprint: LiveFingerprint;
  live: LiveNamespace;
  plan: NamespacePlan;
  verify: VerifyResult;
  /** The link hold it was planned under (empty or absent: none). */
  holdKey?: string;
}

/** Keyed by handle: a namespace re-created under its name gets a new one, and nothing of the old is reused. */
export class PassMemo {
  private readonly passes = new WeakMap<object, ConvergedPass>();
  /** How often a pass was answered from here, and how often one was stored (tests and benchmarks read them). */
  readonly stats = { hits: 0, stored: 0 };

  /**
   * The entry for `handle` and forgets it: only a pass that ends planning nothing
   * and verified stores one again, so a write, an error or a throw in between
   * leaves it forgotten.
   */
  take(handle: object): ConvergedPass | undefined {
    const m = this.passes.get(handle);
    this.passes.delete(handle);
    return m;
  }

  keep(handle: object, pass: ConvergedPass, reused: boolean): void {
    this.passes.set(handle, pass);
    if (reused) this.stats.hits++;
    else this.stats.stored++;
  }

  forget(handle: object): void {
    this.passes.delete(handle);
  }
}
