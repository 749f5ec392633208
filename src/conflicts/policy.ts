// Pure policy: from evidence and fight state to what the reconciler does with one
// namespace under `conflicts: fail | warn | ignore`, plus the shapes others report
// (JSON for /status and plan/apply output, text for the CLI, metric labels).
import type { ConflictPolicy } from '../core/schema.js';
import type { DesiredNamespace } from '../core/model.js';
import type { ManagerEvidence } from './evidence.js';
import { FIGHT_FIX } from './evidence.js';
import type { FightState } from './fight.js';

/** JSON-able: one conflict of one namespace (`conflicts: [...]` in /status, plan and apply JSON). */
export interface Conflict extends ManagerEvidence {
  netns: string;
  /** This conflict stops changes under `conflicts: fail`. Inactive evidence never blocks. */
  blocking: boolean;
}

/** Which kinds of state the desired entry manages; evidence about other kinds is no conflict. */
export interface DeclaredScope {
  endpoints: boolean;
  limits: boolean;
  rpFilter: boolean;
}

export function declaredScope(d: DesiredNamespace): DeclaredScope {
  return {
    endpoints: d.endpoints !== undefined,
    limits: d.limits.subflows !== undefined || d.limits.addAddrAccepted !== undefined,
    rpFilter: Object.keys(d.rpFilter).length > 0,
  };
}

/** Evidence that overlaps what this entry manages (kind path-manager and fight always do). */
export function overlaps(e: ManagerEvidence, scope?: DeclaredScope): boolean {
  if (e.kind === 'path-manager' || e.kind === 'fight') return true;
  if (!scope) return e.managesEndpoints || e.managesRpFilter === true || e.managesLimits === true;
  return (
    (e.managesEndpoints && scope.endpoints) ||
    (e.managesRpFilter === true && scope.rpFilter) ||
    (e.managesLimits === true && scope.limits)
  );
}

/** The fight as evidence; attributed to a detected active manager when there is one. */
export function fightEvidence(fight: FightState, evidence: readonly ManagerEvidence[] = [], now?: number): ManagerEvidence | undefined {
  if (!fight.fighting) return undefined;
  const t = now ?? Date.now();
  const known = evidence.find((e) => e.active && e.kind !== 'path-manager' && (e.managesEndpoints || e.managesRpFilter || e.managesLimits));
  const manager = fight.manager !== 'unknown' ? fight.manager : (known?.manager ?? 'unknown');
  const keys = fight.suspended
    .map((s) => `${s.key} (repaired ${s.repairs}x; ${s.until > t ? `left alone for ${Math.round(s.backoffMs / 1000)}s, until ${new Date(s.until).toISOString()}` : 'enforced again, watched until our write holds'})`)
    .join(', ');
  const has = (prefix: string) => fight.suspended.some((c) => c.key.startsWith(prefix));
  return {
    manager,
    kind: 'fight',
    active: true,
    ...(known?.pid !== undefined && manager === known.manager ? { pid: known.pid } : {}),
    detail: `someone keeps undoing our changes to: ${keys}; every other key is still enforced`,
    managesEndpoints: has('endpoint '),
    managesRpFilter: has('rp_filter '),
    managesLimits: has('limit '),
    fix: manager === 'unknown' ? FIGHT_FIX : (known?.fix ?? FIGHT_FIX),
  };
}

export interface Decision {
  /** Do not change the namespace in this pass. */
  block: boolean;
  /** Log / print the conflicts (false under `ignore`). */
  report: boolean;
  /** Every conflict found (also under `ignore`, for /status and metrics). */
  conflicts: Conflict[];
  /** Human text: empty when there is nothing to say. */
  message: string;
}

/**
 * fail: the namespace is not changed while a manager process (or a path manager set
 * by someone else) overlaps what the entry manages; warn: changed and reported;
 * ignore: changed quietly. A fight never blocks a namespace: in every mode only
 * its keys are suspended (by the caller, from the fight state), and it is reported.
 */
export function decide(
  policy: ConflictPolicy,
  evidence: readonly ManagerEvidence[],
  fight: FightState | undefined,
  ctx: { netns: string; scope?: DeclaredScope; now?: number },
): Decision {
  const now = ctx.now ?? Date.now();
  const all = [...evidence];
  const fe = fight ? fightEvidence(fight, evidence, now) : undefined;
  if (fe) all.push(fe);
  const conflicts: Conflict[] = all
    .filter((e) => overlaps(e, ctx.scope))
    // Suggesting `conflicts: warn` only makes sense to someone who has `fail`.
    .map((e) => ({ ...e, ...(policy !== 'fail' ? { fix: withoutWarnHint(e.fix) } : {}), netns: ctx.netns, blocking: e.active && e.kind !== 'fight' }));
  const blocking = conflicts.filter((c) => c.blocking);
  // Only a manager found running (or a path manager someone else chose) blocks a
  // whole namespace; a fight suspends its own keys in every mode instead.
  const block = policy === 'fail' && blocking.length > 0;
  const report = policy !== 'ignore' && conflicts.length > 0;
  let message = '';
  if (report) {
    const head = block
      ? `netns ${ctx.netns}: not changed (conflicts: fail): ${managersOf(blocking)} also ${managerCount(blocking) === 1 ? 'manages' : 'manage'} MPTCP state here`
      : blocking.length > 0
        ? `netns ${ctx.netns}: changing despite ${managersOf(blocking)} (conflicts: warn)`
        : conflicts.some((c) => c.kind === 'fight')
          ? `netns ${ctx.netns}: keys in a fight left alone: ${managersOf(conflicts.filter((c) => c.kind === 'fight'))} keeps undoing our changes`
          : `netns ${ctx.netns}: inactive managers that would conflict if started: ${managersOf(conflicts)}`;
    message = [head, ...conflicts.map((c) => indent(formatConflict(c)))].join('\n');
  }
  return { block, report, conflicts, message };
}

function withoutWarnHint(fix: string): string {
  return fix.replace(/;? or use `conflicts: warn`$/, '');
}

function managerCount(cs: readonly Conflict[]): number {
  return new Set(cs.map((c) => c.manager)).size;
}

function managersOf(cs: readonly Conflict[]): string {
  const names: string[] = [];
  for (const c of cs) {
    const n = c.pid !== undefined ? `${c.manager} (pid ${c.pid})` : c.manager;
    if (!names.includes(n)) names.push(n);
  }
  return names.join(', ');
}

function indent(s: string): string {
  return s
    .split('\n')
    .map((l) => `  ${l}`)
    .join('\n');
}

/** CLI text for one conflict: who, where, what, and the fix. */
export function formatConflict(c: ManagerEvidence & { netns?: string }): string {
  const who = `${c.manager}${c.pid !== undefined ? ` (pid ${c.pid})` : ''}`;
  const where = c.file ? ` at ${c.file}${c.line !== undefined ? `:${c.line}` : ''}` : '';
  const state = c.active ? '' : 'inactive, ';
  return `${who} [${state}${c.kind}]${where}: ${c.detail}\n  fix: ${c.fix}`;
}

/** Bounded label values for the `manager` label; anything else is a configured process name. */
export const MANAGER_LABEL_VALUES = ['NetworkManager', 'mptcpd', 'unknown'] as const;

/** Labels for a conflicts metric (e.g. mptcp_reconciler_conflicts{netns,manager,kind}). */
export function conflictMetricLabels(c: Conflict): { netns: string; manager: string; kind: string } {
  return { netns: c.netns, manager: c.manager, kind: c.kind };
}
