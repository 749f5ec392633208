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
  type Decision,
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
  // A namespace's last decision and its inputs. Outside a fight a decision depends
  // on nothing else, so a resync over an unchanged fleet reuses it instead of
  // matching every manager's evidence again for each namespace.
  private readonly decisions = new Map<string, { desired: object; scan: ProcScan; configs: ManagerConfigs | undefined; dev: number; ino: number; livePm: string | undefined; d: Decision }>();

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
      const fight = this.fights.state(netns);
      const livePm = live.mptcp.pathManager !== undefined ? String(live.mptcp.pathManager) : undefined;
      const prev = this.decisions.get(netns);
      let d: Decision;
      if (
        !fight.fighting &&
        prev?.desired === desired &&
        prev.scan === scan &&
        prev.configs === configs &&
        prev.dev === target.dev &&
        prev.ino === target.ino &&
        prev.livePm === livePm
      ) {
        d = prev.d;
      } else {
        const evidence = detectFromScan(scan, configs, {
          target,
          isHost,
          ...(livePm !== undefined ? { livePathManager: livePm } : {}),
          ...(desired.mptcp.pathManager !== undefined ? { desiredPathManager: desired.mptcp.pathManager } : {}),
        });
        d = decide(desired.conflicts, evidence, fight, { netns, scope: declaredScope(desired) });
        if (fight.fighting) this.decisions.delete(netns);
        else this.decisions.set(netns, { desired, scan, configs, dev: target.dev, ino: target.ino, livePm, d });
      }
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
    this.decisions.delete(netns);
    this.fights.reset(netns);
  }
}
