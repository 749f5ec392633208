// `plan` (and, through runPass, `apply`): load and validate the config, resolve it
// for this node against the namespaces that exist (or those of a saved snapshot),
// run one reconcile pass per namespace, print the diff and the operations.
import { resolve as resolvePath } from 'node:path';
import { formatDiagnostics, loadConfig, missingNamespaces, nodeName, resolveAll } from '../../config/index.js';
import { globMatch, isGlob } from '../../core/glob.js';
import { netnsPatternProblem } from '../../core/schema.js';
import type { DesiredNamespace, LiveNamespace } from '../../core/model.js';
import {
  emptyResult,
  notFoundMessage,
  reconcileAll,
  type ConflictGate,
  type ReconcileResult,
} from '../../apply/reconcile.js';
import { createConflictGate } from '../../apply/conflict-gate.js';
import { readSnapshotFile, SnapshotKernel } from '../../apply/snapshot-kernel.js';
import type { CliIO } from '../io.js';
import { UsageError } from '../io.js';
import { renderText, toJsonDoc, type NamespaceReport } from '../format-plan.js';

export interface PassOptions {
  file?: string;
  node?: string;
  netns?: string;
  live?: string;
  output?: string;
  detailedExitcode?: boolean;
  /** Where stopped managers' configuration is read (default /etc). */
  etcRoot?: string;
}

export interface PassOutcome {
  node: string;
  reports: NamespaceReport[];
}

function netnsSelected(pattern: string | undefined, name: string): boolean {
  if (pattern === undefined) return true;
  return isGlob(pattern) ? name !== 'host' && globMatch(pattern, name) : pattern === name;
}

async function readSnapshot(path: string, shown: string): Promise<LiveNamespace[]> {
  try {
    return (await readSnapshotFile(path, shown)).namespaces;
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

/**
 * One pass over every selected namespace. Returns undefined (after printing the
 * diagnostics) when the config is invalid: then nothing at all is applied.
 */
export async function runPass(
  opts: PassOptions,
  io: CliIO,
  mode: 'enforce' | 'observe',
  extra: { conflictGate?: ConflictGate } = {},
): Promise<PassOutcome | undefined> {
  if (!opts.file) throw new UsageError('-f PATH is required');
  if (opts.netns !== undefined) {
    const p = netnsPatternProblem(opts.netns);
    if (p) throw new UsageError(`--netns "${opts.netns}" ${p}`);
  }
  const node = nodeName(opts, io.env);
  const loaded = await loadConfig(opts.file, { cwd: io.cwd, node, once: true });
  if (!loaded.ok) {
    io.stderr.write(formatDiagnostics(loaded.diagnostics, { color: io.stderr.isTTY === true }));
    io.stderr.write('\nnothing was applied: fix the config first\n');
    return undefined;
  }
  if (loaded.warnings.length) io.stderr.write(formatDiagnostics(loaded.warnings, { color: io.stderr.isTTY === true }));

  const snapshot = opts.live !== undefined ? await readSnapshot(resolvePath(io.cwd, opts.live), opts.live) : undefined;
  const existing = snapshot ? snapshot.map((s) => s.netns) : await listExisting();
  const desired: DesiredNamespace[] = resolveAll(loaded.config, node, existing).filter((d: DesiredNamespace) =>
    netnsSelected(opts.netns, d.netns),
  );

  // Another manager in a namespace is judged from this host's /proc and /etc, which
  // say nothing about the machine a snapshot came from.
  const conflictGate = extra.conflictGate ?? (snapshot ? undefined : await createConflictGate(opts.etcRoot !== undefined ? { etcRoot: opts.etcRoot } : {}));
  const lives = new Map<string, LiveNamespace>();
  const netnsLayer = snapshot ? undefined : await import('../../kernel/netns.js');
  const caps = snapshot ? undefined : (await import('../../kernel/capabilities.js')).releaseCapabilities();
  // Ctrl-C or SIGTERM during apply: finish the operation in flight (both halves of a
  // replace), skip the rest, and report what was done.
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  if (mode === 'enforce') {
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  }
  let results: ReconcileResult[];
  try {
    results = await reconcileAll(desired, {
      mode,
      signal: stop.signal,
      existing,
      ...(conflictGate ? { conflictGate } : {}),
      onLive: (live) => lives.set(live.netns, live),
      ...(netnsLayer ? { identityOf: (name: string) => netnsLayer.netnsIdentity(name) } : {}),
      // A snapshot comes from another machine, whose kernel this one can't probe.
      ...(caps ? { capabilitiesOf: () => caps } : {}),
      openNamespace: snapshot
        ? (name) => new SnapshotKernel(snapshot.find((s) => s.netns === name)!)
        : async (name) => (await import('../../kernel/namespace.js')).openNamespace(name),
    });
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    // One-shot command: let go of the sockets so the process can exit.
    if (!snapshot) (await import('../../kernel/namespace.js')).closeAllNamespaces();
  }

  const reports: NamespaceReport[] = results.map((result, i) => {
    const live = lives.get(result.netns);
    const r: NamespaceReport = { result, desired: desired[i]! };
    if (live) r.live = live;
    return r;
  });
  // A literal namespace that is named but absent is reported even when the resolver left it out.
  for (const name of missingNamespaces(loaded.config, node, existing)) {
    if (!netnsSelected(opts.netns, name) || reports.some((r) => r.result.netns === name)) continue;
    const msg = snapshot ? `netns ${name}: not in the snapshot ${opts.live}` : notFoundMessage(name);
    reports.push({ result: emptyResult(name, msg) });
  }
  if (snapshot) {
    for (const r of reports) {
      const e = r.result.errors.find((x) => x.message === notFoundMessage(r.result.netns));
      if (e) e.message = `netns ${r.result.netns}: not in the snapshot ${opts.live}`;
    }
  }
  return { node, reports };
}

async function listExisting(): Promise<string[]> {
  return (await import('../../kernel/netns.js')).listNamespaces();
}

export function printPass(outcome: PassOutcome, opts: PassOptions, io: CliIO, applied: boolean): void {
  if (opts.output === 'json') {
    io.stdout.write(`${JSON.stringify(toJsonDoc(outcome.node, outcome.reports.map((r) => r.result)), null, 2)}\n`);
    return;
  }
  const color = io.stdout.isTTY === true && !io.env.NO_COLOR;
  io.stdout.write(renderText(outcome.reports, { color, applied }));
}

function hasChanges(r: ReconcileResult): boolean {
  // Pending items (a dev that does not exist yet) are work still to do, even if
  // apply can't do it now: a pipeline must not read them as "in sync".
  return r.operations.length > 0 || r.routing.length > 0 || !r.converged || r.pending.length > 0;
}

export async function run(opts: PassOptions, io: CliIO): Promise<number> {
  const outcome = await runPass(opts, io, 'observe');
  if (!outcome) return 1;
  printPass(outcome, opts, io, false);
  const results = outcome.reports.map((r) => r.result);
  if (results.some((r) => r.errors.length > 0)) return 1;
  if (opts.detailedExitcode && results.some(hasChanges)) return 2;
  return 0;
}
