// The conflict gate in front of a pass: evidence from /proc and /etc (other
// MPTCP managers running or configured), the fight detector fed with every
// pass's corrections (daemon only), and the namespace's `conflicts:` policy
// (fail blocks, warn reports, ignore stays quiet). One-shot commands read the
// evidence once; the daemon re-reads it after `evidenceMaxAgeMs`.
import {
  declaredScope,
  decide,
  detectFromScan,
  FightDetector,
  netnsIdentitySync,
  operationKey,
  readManagerConfigs,
  readOwnConfig,
  scanManagerProcesses,
  type ConflictRoots,
  type Decision,
  type FightOptions,
  type ManagerConfigs,
  type ManagerProcess,
  type ProcScan,
  type SuspendedKey,
} from '../conflicts/index.js';
import type { DesiredNamespace, LiveNamespace, NamespacePlan, Operation } from '../core/model.js';
import { MaxAge } from '../core/max-age.js';
import type { NetnsIdentity } from '../kernel/netns.js';

/**
 * What the gate decided for one namespace this pass: `block` (conflicts: fail
 * with an active manager) changes nothing; otherwise the conflicts are reported
 * and only the keys in `suspended` (a fight over them, inside its backoff) are
 * left alone.
 */
export type ConflictVerdict = Pick<Decision, 'block' | 'report' | 'conflicts' | 'message'> & {
  /** Keys in a fight (operationSubjects form) not to write in this pass. */
  suspend?: ReadonlySet<string>;
  /** Every key in a fight, with until-when (also those being tried again now). */
  suspended?: SuspendedKey[];
  /** The conflicts are as they were when last logged: say nothing again. */
  unchanged?: boolean;
  /** The conflicts reported earlier are gone: say so once. */
  ended?: string;
  /**
   * Asked between writes: why the rest of the pass must not be written (a manager
   * process started since the gate looked), or undefined to go on.
   */
  stopReason?: () => string | undefined;
};

export interface GateInput {
  netns: string;
  desired: DesiredNamespace;
  live: LiveNamespace;
  plan: NamespacePlan;
}

export type ConflictGate = (ctx: GateInput) => ConflictVerdict | Promise<ConflictVerdict>;

/**
 * Where the daemon learns which manager processes run in a namespace right now
 * (ManagerWatch: exec events; or a synchronous /proc scan when the process
 * connector is unavailable). `generation` moves when the set may have grown.
 */
export interface LiveManagers {
  managersIn(target: NetnsIdentity): ManagerProcess[];
  readonly generation: number;
}

export interface ConflictCheckerOptions extends ConflictRoots {
  /**
   * Processes asked for at every check instead of taken from the cached scan, so
   * a manager started a moment ago blocks the very pass that would have written
   * over it. The cached scan then serves only as the source of configuration.
   */
  liveManagers?: LiveManagers;
  /**
   * How long one /proc scan and configuration read serve every namespace. A scan
   * costs milliseconds of CPU per hundred processes, so doing it every resync
   * would be most of an idle daemon's cost; a manager started meanwhile is found
   * at the next scan, or sooner by the fight detector once it undoes our changes.
   * Default: for the checker's lifetime (a one-shot command).
   */
  evidenceMaxAgeMs?: number;
  /** Record corrections and suspend keys in a fight (the daemon). */
  detectFights?: boolean;
  /** Thresholds and backoff of fight detection (defaults: FIGHT_DEFAULTS). */
  fightOptions?: FightOptions;
  /** Configuration files that cannot be read are skipped, not an error (the daemon keeps running). */
  tolerateConfigErrors?: boolean;
  now?: () => number;
}

interface Evidence {
  at: number;
  scan: ProcScan;
  configs: ManagerConfigs | undefined;
}

export class ConflictChecker {
  readonly fights: FightDetector | undefined;
  private readonly maxAge: MaxAge;
  private evidence: Evidence | undefined;
  private loading: Promise<Evidence> | undefined;
  // A namespace's last decision and its inputs. Outside a fight a decision depends
  // on nothing else, so a resync over an unchanged fleet reuses it instead of
  // matching every manager's evidence again for each namespace.
  private readonly decisions = new Map<string, { desired: object; evidence: Evidence; dev: number; ino: number; livePm: string | undefined; procs: string; d: Decision }>();

  private readonly identities = new Map<string, { dev: number; ino: number }>();
  /** What was last said about each namespace's conflicts (logged when it starts, changes or ends). */
  private readonly said = new Map<string, string>();

  constructor(private readonly opts: ConflictCheckerOptions = {}) {
    this.maxAge = new MaxAge(opts.evidenceMaxAgeMs ?? Infinity);
    this.fights = opts.detectFights ? new FightDetector({ ...opts.fightOptions, ...(opts.now ? { now: opts.now } : {}) }) : undefined;
  }

  /** The /proc scan and manager configuration, read again once older than the max age. */
  async load(): Promise<Evidence> {
    if (this.evidence && this.maxAge.fresh(this.evidence.at)) return this.evidence;
    this.loading ??= (async () => {
      try {
        const roots = this.opts;
        const configs = readManagerConfigs(roots);
        const [scan, cfg] = await Promise.all([
          scanManagerProcesses({
            ...(roots.procRoot ? { procRoot: roots.procRoot } : {}),
            ...(roots.managerNames ? { names: roots.managerNames } : {}),
          }),
          this.opts.tolerateConfigErrors ? configs.catch(() => undefined) : configs,
        ]);
        this.evidence = { at: this.maxAge.stamp(), scan, configs: cfg };
        return this.evidence;
      } finally {
        this.loading = undefined;
      }
    })();
    return this.loading;
  }

  /**
   * Fight records belong to one namespace, not to its name: one deleted and
   * created again under the same name starts with a clean slate. Called before
   * mayApply, so a re-created namespace is not held back by its predecessor.
   */
  noteIdentity(netns: string, id: NetnsIdentity): void {
    const seen = this.identities.get(netns);
    if (seen && (seen.dev !== id.dev || seen.ino !== id.ino)) this.forget(netns);
    this.identities.set(netns, { dev: id.dev, ino: id.ino });
  }

  /**
   * The verdict for one namespace. `target`: what its name points at (st_dev,
   * st_ino), when the caller has just taken it; otherwise it is stat'ed here.
   */
  async check(input: GateInput, target?: NetnsIdentity): Promise<ConflictVerdict> {
    const { netns, desired, live } = input;
    const isHost = netns === 'host';
    // The host is the namespace this process runs in; named ones are bind mounts in /run/netns.
    const id = target ?? netnsIdentitySync(isHost ? `${this.opts.procRoot ?? '/proc'}/thread-self/ns/net` : `/run/netns/${netns}`);
    const evidence = await this.load();
    this.noteIdentity(netns, id);
    this.fights?.observe(netns, live);
    const fight = this.fights?.isFighting(netns) ? this.fights.state(netns) : undefined;
    const livePm = live.mptcp.pathManager !== undefined ? String(live.mptcp.pathManager) : undefined;
    const running = this.opts.liveManagers?.managersIn(id);
    // Only `fail` writes differently once a manager runs, so only there (and only when the pass has writes) a start stops the pass.
    const stopReason = this.opts.liveManagers && desired.conflicts === 'fail' && input.plan.operations.length > 0 ? this.stopReason(id, running ?? []) : undefined;
    const procs = running ? running.map((p) => `${p.pid}:${p.comm}`).join(',') : '';
    const prev = this.decisions.get(netns);
    let d: Decision;
    if (!fight?.fighting && prev?.desired === desired && prev.evidence === evidence && prev.dev === id.dev && prev.ino === id.ino && prev.livePm === livePm && prev.procs === procs) {
      d = prev.d;
    } else {
      const scan = running ? await this.withOwnConfig(running, evidence.scan) : evidence.scan;
      const found = detectFromScan(scan, evidence.configs, {
        target: id,
        isHost,
        ...(livePm !== undefined ? { livePathManager: livePm } : {}),
        ...(desired.mptcp.pathManager !== undefined ? { desiredPathManager: desired.mptcp.pathManager } : {}),
      });
      d = decide(desired.conflicts, found, fight, { netns, scope: declaredScope(desired), ...(this.opts.now ? { now: this.opts.now() } : {}) });
      if (fight?.fighting) this.decisions.delete(netns);
      else this.decisions.set(netns, { desired, evidence, dev: id.dev, ino: id.ino, livePm, procs, d });
    }
    const noise = this.noise(netns, d, fight?.suspended ?? []);
    // A quiet namespace (the common case) gets the reused decision itself: nothing to add, nothing allocated.
    if (!fight?.fighting && !stopReason && noise.unchanged === undefined && noise.ended === undefined) return d;
    return {
      ...d,
      ...noise,
      ...(fight?.fighting ? { suspend: this.fights!.suspendedKeys(netns), suspended: fight.suspended } : {}),
      ...(stopReason ? { stopReason } : {}),
    };
  }

  /**
   * A manager process exec'd after the gate looked (the exec events' generation
   * moved) and now runs in this namespace: the pass must stop before its next
   * write. Without exec events (the /proc scan fallback) the check before each
   * pass is all there is.
   */
  private stopReason(id: NetnsIdentity, running: readonly ManagerProcess[]): () => string | undefined {
    const live = this.opts.liveManagers!;
    const before = new Set(running.map((p) => p.pid));
    let seen = live.generation;
    return () => {
      if (live.generation === seen) return undefined;
      seen = live.generation;
      const started = live.managersIn(id).filter((p) => !before.has(p.pid));
      return started.length > 0 ? `${started.map((p) => `${p.comm} (pid ${p.pid})`).join(', ')} started during the pass` : undefined;
    };
  }

  /** Conflicts are logged when they start, change or end; a quiet resync repeats nothing. */
  private noise(netns: string, d: Decision, suspended: readonly SuspendedKey[]): Pick<ConflictVerdict, 'unchanged' | 'ended'> {
    const sig = d.conflicts.length === 0 ? '' : JSON.stringify([d.block, d.conflicts.map((c) => [c.manager, c.kind, c.pid, c.active, c.blocking, c.file]), suspended.map((s) => s.key)]);
    const before = this.said.get(netns) ?? '';
    if (sig === before) return sig === '' ? {} : { unchanged: true };
    if (sig === '') {
      this.said.delete(netns);
      return { ended: `netns ${netns}: conflicts ended: nobody else is writing what this namespace's entry manages` };
    }
    this.said.set(netns, sig);
    return {};
  }

  /** Live processes as a scan, each with the configuration under its own root (read once per process). */
  private async withOwnConfig(procs: ManagerProcess[], cached: ProcScan): Promise<ProcScan> {
    const procRoot = this.opts.procRoot ?? '/proc';
    await Promise.all(
      procs.map(async (p) => {
        if (p.own) return;
        const seen = cached.processes.find((c) => c.pid === p.pid && c.comm === p.comm && c.own);
        p.own = seen?.own ?? (await readOwnConfig(procRoot, p));
      }),
    );
    return { processes: procs, unknownNamespace: [] };
  }

  /** A gate for reconcileNamespace. */
  gate(target?: NetnsIdentity): ConflictGate {
    return (input) => this.check(input, target);
  }

  /** Feeds the fight detector with what a pass did: `held` are the operations of suspended keys, not written. */
  record(netns: string, applied: boolean, operations: readonly (Operation & { result?: string })[], held: readonly Operation[] = [], manager?: string): void {
    if (!this.fights) return;
    const ok = applied ? operations.filter((o) => o.result === 'ok') : [];
    this.fights.record(netns, ok, held, manager);
  }

  /** Ends every fight and its backoff; true when there was any to end. */
  clearFights(): boolean {
    const fighting = this.fights?.fighting() ?? [];
    for (const ns of this.fights?.namespaces() ?? []) this.forget(ns);
    return fighting.length > 0;
  }

  forget(netns: string): void {
    this.decisions.delete(netns);
    this.said.delete(netns);
    this.fights?.reset(netns);
  }
}

/** The gate of a one-shot command: the evidence read now, once, for every namespace. */
export async function createConflictGate(opts: ConflictRoots & { now?: () => number } = {}): Promise<ConflictGate> {
  const checker = new ConflictChecker(opts);
  await checker.load();
  return checker.gate();
}
