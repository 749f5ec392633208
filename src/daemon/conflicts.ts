// Conflicts with other MPTCP managers in the daemon (DESIGN.md §5): evidence from
// /proc and /etc, the fight detector fed with every pass's corrections, and the
// per-namespace policy (fail blocks, warn reports, ignore stays quiet).
import type { ConflictGate, ConflictVerdict } from '../apply/reconcile.js';
import {
  decide,
  declaredScope,
  detectFromScan,
  FightDetector,
  operationKey,
  readManagerConfigs,
  scanManagerProcesses,
  type Conflict,
  type ConflictRoots,
  type ManagerConfigs,
  type ProcScan,
} from '../conflicts/index.js';
import type { Operation } from '../core/model.js';

export interface PassConflicts {
  /** Every conflict found for the namespace in its last pass (also under `ignore`). */
  conflicts: Conflict[];
  /** A fight is backing off: this pass must not write. */
  deferred: boolean;
}

export class DaemonConflicts {
  readonly fights = new FightDetector();
  private cache: { at: number; scan: ProcScan; configs: ManagerConfigs | undefined } | undefined;
  private loading: Promise<{ scan: ProcScan; configs: ManagerConfigs | undefined }> | undefined;

  /**
   * `ttlMs`: one /proc scan serves every namespace's pass within it. A scan costs
   * milliseconds of CPU per hundred processes, so doing it every resync would be
   * most of an idle daemon's cost; a manager started meanwhile is found at the
   * next scan, or sooner by the fight detector once it undoes our changes.
   */
  constructor(
    private readonly roots: ConflictRoots = {},
    private readonly ttlMs = 30_000,
  ) {}

  private async evidenceSources(): Promise<{ scan: ProcScan; configs: ManagerConfigs | undefined }> {
    if (this.cache && Date.now() - this.cache.at < this.ttlMs) return this.cache;
    this.loading ??= (async () => {
      try {
        const [scan, configs] = await Promise.all([
          scanManagerProcesses({
            ...(this.roots.procRoot ? { procRoot: this.roots.procRoot } : {}),
            ...(this.roots.managerNames ? { names: this.roots.managerNames } : {}),
          }),
          readManagerConfigs(this.roots).catch(() => undefined),
        ]);
        this.cache = { at: Date.now(), scan, configs };
        return this.cache;
      } finally {
        this.loading = undefined;
      }
    })();
    return this.loading;
  }

  /** The fight detector allows writes to this namespace now. */
  mayApply(netns: string): boolean {
    return this.fights.mayApply(netns);
  }

  /** A gate for one pass; `out` receives what it decided (for status and metrics). */
  gate(netns: string, target: { dev: number; ino: number }, isHost: boolean, out: PassConflicts): ConflictGate {
    return async ({ desired, live }) => {
      const { scan, configs } = await this.evidenceSources();
      const evidence = detectFromScan(scan, configs, {
        target,
        isHost,
        ...(live.mptcp.pathManager !== undefined ? { livePathManager: String(live.mptcp.pathManager) } : {}),
        ...(desired.mptcp.pathManager !== undefined ? { desiredPathManager: desired.mptcp.pathManager } : {}),
      });
      const d = decide(desired.conflicts, evidence, this.fights.state(netns), { netns, scope: declaredScope(desired) });
      out.conflicts = d.conflicts;
      // Under `ignore`, report is false: the apply engine logs nothing; status and metrics still show them.
      const verdict: ConflictVerdict = d;
      return verdict;
    };
  }

  /** Feeds the fight detector with what a pass did. */
  record(netns: string, applied: boolean, operations: (Operation & { result?: string })[], manager?: string): void {
    if (operations.length === 0) this.fights.recordConverged(netns);
    else if (applied) {
      const keys = operations.filter((o) => o.result === 'ok').map((o) => operationKey(o));
      if (keys.length > 0) this.fights.recordCorrections(netns, keys, manager);
    }
  }

  forget(netns: string): void {
    this.fights.reset(netns);
  }
}
