// `watch`: keeps every declared namespace converged. Triggers (config edits,
// rtnetlink events, /run/netns changes, the resync timer, SIGHUP) only mark
// namespaces dirty; the scheduler runs one pass per dirty namespace, and each
// pass reads the kernel afresh (level-triggered), so a lost or duplicated trigger
// never leaves a wrong state behind for longer than one resync interval.
import { createHash, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Config } from '../config/schema.js';
import type { DesiredNamespace, NamespaceResult, Operation } from '../core/model.js';
import type { NamespaceKernel } from '../kernel/api.js';
import type { EventSocket, EventSocketHandlers } from '../kernel/events.js';
import { errorFields, type Logger } from '../log.js';
import { startHttpServer, type ListenAddress } from '../http/server.js';
import type { ConflictGate, Logger as PassLogger } from '../apply/reconcile.js';
import type { ConflictChecker } from '../apply/conflict-gate.js';
import { PassMemo } from '../apply/pass-memo.js';
import { describeOperation } from '../core/vocabulary.js';
import { DaemonMetrics, type PassResultLabel } from './metrics.js';
import { Scheduler, type BackoffOptions } from './scheduler.js';
import { watchConfig, watchNetnsDir, type Watcher } from './watchers.js';

export type Mode = 'enforce' | 'observe';

/** What the daemon needs from the config loader. */
export type ConfigLoad =
  | { ok: true; config: Config; files: string[]; warnings: { message: string }[] }
  | { ok: false; diagnostics: unknown[]; files: string[] };

export interface ConflictFindingLike {
  manager: string;
  evidence?: string[];
  detail?: string;
  blocking?: boolean;
}

/** A pass result as the apply engine returns it (NamespaceResult plus what the daemon reports). */
export type PassResult = NamespaceResult & {
  conflicts?: ConflictFindingLike[];
  applied?: boolean;
};

export interface ReconcileCall {
  mode: Mode;
  passId: string;
  logger: PassLogger;
  signal: AbortSignal;
  conflictGate?: ConflictGate;
  memo: PassMemo;
}

/** The pieces the loop drives; the real ones are in deps.ts, tests may inject fakes. */
export interface DaemonDeps {
  /** Loads for this node only: another node's merge problem must not stop this one. */
  loadConfig(path: string, node: string): Promise<ConfigLoad>;
  formatDiagnostics(diags: unknown[]): string;
  resolveAll(config: Config, node: string, netnsNames: string[]): DesiredNamespace[];
  missingNamespaces(config: Config, node: string, netnsNames: string[]): string[];
  /** "host" plus the names under /run/netns. */
  listNamespaces(): string[];
  /** st_dev/st_ino of the namespace the name points at now; undefined when gone. */
  netnsIdentity(name: string): { dev: number; ino: number } | undefined;
  /** `identity`: netnsIdentity(name) just taken, so that it is not stat'ed twice per pass. */
  openNamespace(name: string, identity?: { dev: number; ino: number }): NamespaceKernel;
  closeNamespace(name: string): void;
  openEvents(name: string, identity: { dev: number; ino: number } | undefined, handlers: EventSocketHandlers): EventSocket;
  reconcile(kernel: NamespaceKernel, desired: DesiredNamespace, opts: ReconcileCall): Promise<PassResult>;
  /** The directory whose entries are the named namespaces (/run/netns). */
  netnsDir: string;
}

export interface DaemonOptions {
  file: string;
  node: string;
  mode: Mode;
  resyncMs: number;
  /** undefined: no HTTP server. */
  listen?: ListenAddress;
  logger: Logger;
  deps: DaemonDeps;
  concurrency?: number;
  backoff?: BackoffOptions;
  /** Debounce of file-system triggers (ms). */
  debounceMs?: number;
  /** Conflict detection with other managers; without it nothing is checked. */
  conflicts?: ConflictChecker;
  /** What the last converged pass of each namespace concluded (default: a new one). */
  memo?: PassMemo;
}

export interface NamespaceStatus {
  netns: string;
  converged: boolean;
  lastPass?: string;
  lastResult?: PassResultLabel;
  passId?: string;
  passes: number;
  /** Operations still to do: all planned ones in observe mode, the failed or skipped ones otherwise. */
  pendingOperations: Operation[];
  /** Declared things that cannot be acted on yet (e.g. a missing interface). */
  pending: NamespaceResult['pending'];
  errors: NamespaceResult['errors'];
  conflicts: ConflictFindingLike[];
  firstDifference?: string;
  consecutiveFailures: number;
}

export interface DaemonStatus {
  node: string;
  mode: Mode;
  ready: boolean;
  config: {
    path: string;
    hash: string;
    generation: number;
    valid: boolean;
    files: string[];
    loadedAt: string;
    error?: string;
  };
  namespaces: Record<string, NamespaceStatus>;
  /** Declared by name but not in /run/netns: configured when they appear. */
  missing: string[];
}

export interface Daemon {
  /** Resolves after the first pass over every namespace; rejects when the daemon cannot start. */
  ready: Promise<void>;
  /** Finishes the passes in flight (a replace completes both halves), closes everything; never touches kernel state. */
  stop(): Promise<void>;
  /** Resolves once the daemon has stopped (after stop(), or after a failed start). */
  done: Promise<void>;
  status(): DaemonStatus;
  /** Re-reads the config (SIGHUP). */
  reload(reason?: string): Promise<void>;
  /** The HTTP address actually bound (port 0 picks one). */
  address(): ListenAddress | undefined;
  metrics: DaemonMetrics;
  memo: PassMemo;
  /** Resolves when no pass runs or waits (except namespaces in backoff). For tests. */
  whenIdle(): Promise<void>;
}

/** A user error found at start (invalid config, bad listen address): message as printed, exit 1. */
export class DaemonStartError extends Error {
  override name = 'DaemonStartError';
}

interface Handles {
  identity: { dev: number; ino: number } | undefined;
  events?: EventSocket;
}

// 8 hex digits per pass from a pool of random bytes: one getrandom per 512
// passes instead of one per pass (a resync round is a pass per namespace).
let idPool = Buffer.alloc(0);
let idAt = 0;
function newPassId(): string {
  if (idAt + 4 > idPool.length) {
    idPool = randomBytes(2048);
    idAt = 0;
  }
  idAt += 4;
  return idPool.toString('hex', idAt - 4, idAt);
}

function shortHash(bytes: Buffer[]): string {
  const h = createHash('sha256');
  for (const b of bytes) h.update(b);
  return h.digest('hex').slice(0, 12);
}

function sameIdentity(a: Handles['identity'], b: Handles['identity']): boolean {
  return a?.dev === b?.dev && a?.ino === b?.ino;
}

function passLabel(mode: Mode, r: PassResult, deferred: boolean): PassResultLabel {
  if (r.errors.some((e) => e.op === 'conflict')) return 'conflict';
  if (deferred && r.operations.length > 0) return 'conflict';
  if (r.errors.length > 0) return 'error';
  if (r.operations.length === 0) return 'converged';
  return mode === 'observe' || r.applied === false ? 'observed' : 'changed';
}

/**
 * One pass's logger: a pino child (every line carries passId and netns), made only
 * when a line is written. Most resync passes write none, and a child serialises
 * its bindings when created. The apply engine's own per-pass summary goes to
 * debug: the daemon's line (with result and duration) replaces it.
 */
function passLogger(log: Logger, bindings: { passId: string; netns: string }): PassLogger {
  let child: Logger | undefined;
  const c = () => (child ??= log.child(bindings));
  const debug = (obj: object, msg?: string) => {
    if (log.isLevelEnabled('debug')) c().debug(obj, msg);
  };
  return {
    info: (obj, msg) => {
      if (msg === 'pass done' || msg === 'pass planned') debug(obj, msg);
      else if (log.isLevelEnabled('info')) c().info(obj, msg);
    },
    warn: (obj, msg) => c().warn(obj, msg),
    error: (obj, msg) => c().error(obj, msg),
    debug,
  };
}

export function startDaemon(opts: DaemonOptions): Daemon {
  const { deps, logger: log } = opts;
  const metrics = new DaemonMetrics();
  const memo = opts.memo ?? new PassMemo();
  const abort = new AbortController();
  const handles = new Map<string, Handles>();
  const nsStatus = new Map<string, NamespaceStatus>();
  let desired = new Map<string, DesiredNamespace>();
  // What the current config resolves each name to (null: no entry applies), kept
  // while the config object stays: a /run/netns change (a pod started elsewhere on
  // the node) resolves only the new names, and managed namespaces keep their
  // DesiredNamespace objects, by which the apply engine remembers a converged pass.
  let resolved: { config: Config; byName: Map<string, DesiredNamespace | null> } | undefined;
  let missing: string[] = [];
  let config: { config: Config; hash: string; files: string[]; loadedAt: string } | undefined;
  let generation = 0;
  let configValid = false;
  let configError: string | undefined;
  let running = true;
  let isReady = false;
  let firstPass: Set<string> | undefined;
  let http: Awaited<ReturnType<typeof startHttpServer>> | undefined;
  const watchers: Watcher[] = [];
  let resyncTimer: NodeJS.Timeout | undefined;
  let resolveReady!: () => void;
  let rejectReady!: (e: Error) => void;
  const ready = new Promise<void>((res, rej) => {
    resolveReady = res;
    rejectReady = rej;
  });
  // A start failure is reported through `ready`; nobody else may see it as unhandled.
  ready.catch(() => {});

  const scheduler = new Scheduler({
    run: (ns, reasons) => runPass(ns, reasons),
    concurrency: opts.concurrency ?? 8,
    ...(opts.backoff ? { backoff: opts.backoff } : {}),
    onCrash: (ns, err) => log.error({ netns: ns, ...errorFields(err) }, 'pass crashed (a bug); retrying with backoff'),
  });

  function statusOf(ns: string): NamespaceStatus {
    let s = nsStatus.get(ns);
    if (!s) {
      s = { netns: ns, converged: false, passes: 0, pendingOperations: [], pending: [], errors: [], conflicts: [], consecutiveFailures: 0 };
      nsStatus.set(ns, s);
    }
    return s;
  }

  function passDone(ns: string): void {
    if (!firstPass || isReady) return;
    firstPass.delete(ns);
    if (firstPass.size === 0) {
      isReady = true;
      log.info({ namespaces: desired.size }, 'first pass over every namespace done: ready');
      resolveReady();
    }
  }

  /** Drops a namespace that vanished or is no longer declared: handles closed, series removed, quietly. */
  function dropNamespace(ns: string, why: string): void {
    const h = handles.get(ns);
    h?.events?.close();
    handles.delete(ns);
    if (h) deps.closeNamespace(ns);
    scheduler.forget(ns);
    nsStatus.delete(ns);
    metrics.forget(ns);
    opts.conflicts?.forget(ns);
    log.debug({ netns: ns, why }, 'namespace dropped');
    passDone(ns);
  }

  function eventHandlers(ns: string): EventSocketHandlers {
    return {
      onEvents: (events) => scheduler.mark(ns, `rtnl:${[...new Set(events.map((e) => e.kind))].join(',')}`),
      onOverflow: () => {
        log.warn({ netns: ns }, 'rtnetlink notifications lost (queue overflow): reading the namespace again');
        scheduler.mark(ns, 'rtnl-overflow');
      },
      onError: (err) => {
        log.warn({ netns: ns, ...errorFields(err) }, 'rtnetlink event socket failed; reopening it on the next pass');
        const h = handles.get(ns);
        h?.events?.close();
        if (h) delete h.events;
        scheduler.mark(ns, 'rtnl-error');
      },
    };
  }

  /** Opens (or re-opens, after a re-creation) the event socket; the kernel handle cache lives in the kernel layer. */
  function ensureHandles(ns: string): Handles | undefined {
    const identity = deps.netnsIdentity(ns);
    if (!identity) return undefined;
    let h = handles.get(ns);
    if (h && !sameIdentity(h.identity, identity)) {
      // Same name, another namespace: nothing from the old one may be reused.
      h.events?.close();
      deps.closeNamespace(ns);
      h = undefined;
    }
    if (!h) {
      h = { identity };
      handles.set(ns, h);
    }
    // Subscribed before the pass reads: a change made during the read is seen afterwards.
    if (!h.events) h.events = deps.openEvents(ns, identity, eventHandlers(ns));
    return h;
  }

  async function runPass(ns: string, reasons: string[]): Promise<{ retry?: boolean }> {
    const want = desired.get(ns);
    if (!want || !running) return {};
    const passId = newPassId();
    const plog = passLogger(log, { passId, netns: ns });
    const st = statusOf(ns);
    const started = performance.now();
    let result: PassResult;
    let crashed: unknown;
    const pc = { deferred: false };
    let mode = opts.mode;
    // A fight (someone keeps undoing us) backs off: the pass still reads and reports, but writes nothing.
    if (opts.conflicts && mode === 'enforce' && !opts.conflicts.mayApply(ns)) {
      mode = 'observe';
      pc.deferred = true;
    }
    try {
      const h = ensureHandles(ns);
      if (!h) {
        dropNamespace(ns, 'gone from /run/netns');
        return {};
      }
      const kernel = h.identity ? deps.openNamespace(ns, h.identity) : deps.openNamespace(ns);
      const gate = opts.conflicts && h.identity ? opts.conflicts.gate(h.identity) : undefined;
      result = await deps.reconcile(kernel, want, {
        mode,
        passId,
        logger: plog,
        signal: abort.signal,
        memo,
        ...(gate ? { conflictGate: gate } : {}),
      });
    } catch (err) {
      crashed = err;
      const e = err as Error & { op?: string; code?: string; retryable?: boolean; extack?: string };
      result = {
        netns: ns,
        operations: [],
        converged: false,
        pending: [],
        errors: [{ message: e.message ?? String(err), ...(e.op ? { op: e.op } : {}), ...(e.code ? { errno: e.code } : {}), retryable: true }],
      };
    }
    const seconds = (performance.now() - started) / 1000;
    // Dropped or replaced while the pass ran: its result describes nothing we manage.
    if (!desired.has(ns)) return {};

    const label = passLabel(opts.mode, result, pc.deferred);
    const conflicts: ConflictFindingLike[] = result.conflicts ?? [];
    const activeManagers = [...new Set(conflicts.filter((c) => (c as { active?: boolean }).active !== false).map((c) => c.manager))];
    if (crashed === undefined) opts.conflicts?.record(ns, result.applied === true && mode === 'enforce', result.operations, activeManagers[0]);
    metrics.passes.inc({ result: label });
    metrics.passDuration.observe(seconds);
    metrics.converged.set({ netns: ns }, result.converged ? 1 : 0);
    if (result.operations.length > 0) metrics.drift.inc({ netns: ns });
    if (result.applied !== false && opts.mode === 'enforce') {
      for (const o of result.operations) if (o.result === 'ok') metrics.operations.inc({ op: o.op });
    }
    metrics.setConflicts(ns, activeManagers);

    const retry = crashed !== undefined || result.errors.some((e) => e.retryable === true);
    st.passes++;
    st.converged = result.converged;
    st.lastPass = new Date().toISOString();
    st.lastResult = label;
    st.passId = passId;
    st.pendingOperations = result.operations.filter((o) => opts.mode === 'observe' || o.result !== 'ok').map(({ result: _r, error: _e, ...op }) => op as Operation);
    st.pending = result.pending;
    st.errors = result.errors;
    st.conflicts = conflicts;
    st.consecutiveFailures = retry ? scheduler.failures(ns) + 1 : 0;
    if (result.firstDifference !== undefined) st.firstDifference = result.firstDifference;
    else delete st.firstDifference;

    if (opts.mode === 'observe') {
      for (const o of result.operations) plog.info({ op: o.op, what: describeOperation(o, 'full'), reason: o.reason, disruptive: o.disruptive }, 'would apply (observe mode)');
    }
    // Resync passes that find nothing would fill the log of a large fleet every few seconds (debug only).
    const quiet = crashed === undefined && label === 'converged' && reasons.every((r) => r === 'resync');
    if (quiet && !log.isLevelEnabled('debug')) {
      passDone(ns);
      return { retry };
    }
    const line = {
      result: label,
      reasons,
      operations: result.operations.length,
      converged: result.converged,
      durationMs: Math.round(seconds * 1e4) / 10,
      ...(result.pending.length ? { pending: result.pending.map((p) => `${p.what}: ${p.reason}`) } : {}),
      ...(result.errors.length ? { errors: result.errors.map((e) => e.message) } : {}),
      ...(result.firstDifference ? { firstDifference: result.firstDifference } : {}),
      ...(retry ? { failures: st.consecutiveFailures } : {}),
      ...(pc.deferred ? { deferred: 'a fight with another manager is backing off' } : {}),
      ...(activeManagers.length ? { conflictsWith: activeManagers } : {}),
    };
    if (crashed !== undefined) plog.error({ ...line, ...errorFields(crashed) }, 'pass failed');
    else if (label === 'error' || label === 'conflict') plog.warn(line, 'pass');
    else if (quiet) plog.debug(line, 'pass');
    else plog.info(line, 'pass');
    passDone(ns);
    return { retry };
  }

  /** desired per name, in resolveAll's order (host first), resolving only names not seen with this config. */
  function resolveDesired(cfg: Config, names: string[]): Map<string, DesiredNamespace> {
    const known = resolved?.config === cfg ? resolved.byName : new Map<string, DesiredNamespace | null>();
    const order = [...new Set(['host', ...names])];
    const fresh = order.filter((n) => !known.has(n));
    const found = fresh.length > 0 ? new Map(deps.resolveAll(cfg, opts.node, fresh).map((d) => [d.netns, d])) : undefined;
    const byName = new Map<string, DesiredNamespace | null>();
    const next = new Map<string, DesiredNamespace>();
    for (const n of order) {
      const d = known.has(n) ? known.get(n)! : (found!.get(n) ?? null);
      byName.set(n, d);
      if (d) next.set(n, d);
    }
    resolved = { config: cfg, byName };
    return next;
  }

  /** Recomputes which namespaces are managed (config or /run/netns changed). */
  function refreshNamespaces(reason: string, urgent: boolean): void {
    if (!config || !running) return;
    const names = deps.listNamespaces();
    const next = resolveDesired(config.config, names);
    const nowMissing = deps.missingNamespaces(config.config, opts.node, names);
    for (const m of nowMissing) if (!missing.includes(m)) log.warn({ netns: m }, `netns ${m} is declared but not in ${deps.netnsDir}; it will be configured when it appears`);
    missing = nowMissing;
    const prev = desired;
    desired = next;
    for (const ns of prev.keys()) if (!next.has(ns)) dropNamespace(ns, reason);
    for (const ns of next.keys()) {
      const h = handles.get(ns);
      const isNew = !prev.has(ns);
      const replaced = h !== undefined && !sameIdentity(h.identity, deps.netnsIdentity(ns));
      // A new config makes old repeated corrections meaningless for the fight detector.
      if (reason.startsWith('config:')) opts.conflicts?.forget(ns);
      if (isNew || replaced || urgent) {
        if (isNew) log.info({ netns: ns, reason }, 'namespace managed');
        scheduler.mark(ns, reason, { urgent: true });
      }
    }
  }

  async function readConfigBytes(files: string[]): Promise<Buffer[]> {
    return Promise.all(files.map((f) => readFile(resolve(f))));
  }

  let reloading: Promise<void> | undefined;
  let reloadAgain = false;

  async function loadOnce(reason: string, initial: boolean): Promise<void> {
    const r = await deps.loadConfig(opts.file, opts.node);
    if (!r.ok) {
      const text = deps.formatDiagnostics(r.diagnostics);
      if (initial) throw new DaemonStartError(`invalid config ${opts.file}:\n${text}`);
      configValid = false;
      configError = text;
      metrics.configValid.set(0);
      log.error({ file: opts.file, reason, diagnostics: text.split('\n').filter(Boolean) }, 'invalid config ignored; the last good config stays enforced');
      return;
    }
    let hash: string;
    try {
      hash = shortHash(await readConfigBytes(r.files));
    } catch {
      // A file vanished between load and hash (an update in progress): the next event reloads.
      hash = `gen${generation + 1}`;
    }
    const wasValid = configValid;
    configValid = true;
    configError = undefined;
    metrics.configValid.set(1);
    for (const w of r.warnings) log.warn({ file: opts.file }, `config: ${w.message}`);
    if (config && config.hash === hash) {
      if (!wasValid) log.info({ hash }, 'config valid again (unchanged from the one enforced)');
      return;
    }
    generation++;
    config = { config: r.config, hash, files: r.files, loadedAt: new Date().toISOString() };
    metrics.setConfig(hash, generation);
    log.info({ hash, generation, files: r.files, reason }, initial ? 'config loaded' : 'config changed');
    if (!initial) refreshNamespaces(`config:${hash}`, true);
  }

  async function reload(reason = 'reload'): Promise<void> {
    if (!running) return;
    // File events are frequent and mostly no-ops; an operator's SIGHUP deserves an answer.
    if (!reason.startsWith('file:')) log.info({ reason }, 'config reload requested');
    if (reloading) {
      reloadAgain = true;
      return reloading;
    }
    reloading = (async () => {
      try {
        do {
          reloadAgain = false;
          try {
            await loadOnce(reason, false);
          } catch (err) {
            log.error({ err }, 'config reload failed');
          }
        } while (reloadAgain && running);
      } finally {
        reloading = undefined;
      }
    })();
    return reloading;
  }

  async function start(): Promise<void> {
    await loadOnce('start', true);
    metrics.configValid.set(1);
    if (opts.listen) {
      try {
        http = await startHttpServer(opts.listen, {
          healthy: () => running,
          ready: () => isReady,
          registry: metrics.registry,
          status,
        });
      } catch (err) {
        const e = err as NodeJS.ErrnoException;
        throw new DaemonStartError(`cannot listen on ${opts.listen.host}:${opts.listen.port}: ${e.code ?? e.message}`);
      }
      log.info({ listen: `${http.address.host}:${http.address.port}` }, 'http listening');
    }
    const onWatchError = (e: Error) => log.warn({ err: e }, 'file watcher error');
    watchers.push(await watchConfig(opts.file, (what) => void reload(`file:${what}`), { onError: onWatchError, ...(opts.debounceMs !== undefined ? { debounceMs: opts.debounceMs } : {}) }));
    watchers.push(
      await watchNetnsDir(deps.netnsDir, () => refreshNamespaces('netns-dir', false), {
        onError: onWatchError,
        ...(opts.debounceMs !== undefined ? { debounceMs: opts.debounceMs } : {}),
      }),
    );
    if (!running) return;
    resyncTimer = setInterval(() => {
      // Endpoints and limits change without any notification (KERNEL.md §2): only a re-read finds that drift.
      for (const ns of desired.keys()) scheduler.mark(ns, 'resync');
    }, opts.resyncMs);
    refreshNamespaces('start', true);
    firstPass = new Set(desired.keys());
    if (firstPass.size === 0) {
      isReady = true;
      resolveReady();
    }
    log.info({ node: opts.node, mode: opts.mode, namespaces: [...desired.keys()], missing, resyncMs: opts.resyncMs }, 'watching');
  }

  function status(): DaemonStatus {
    const namespaces: Record<string, NamespaceStatus> = {};
    for (const ns of desired.keys()) namespaces[ns] = nsStatus.get(ns) ?? statusOf(ns);
    return {
      node: opts.node,
      mode: opts.mode,
      ready: isReady,
      config: {
        path: opts.file,
        hash: config?.hash ?? '',
        generation,
        valid: configValid,
        files: config?.files ?? [],
        loadedAt: config?.loadedAt ?? '',
        ...(configError ? { error: configError } : {}),
      },
      namespaces,
      missing,
    };
  }

  let stopping: Promise<void> | undefined;
  let resolveDone!: () => void;
  const done = new Promise<void>((r) => (resolveDone = r));
  function stop(): Promise<void> {
    stopping ??= (async () => {
      running = false;
      // Checked by the apply engine between independent operations only.
      abort.abort();
      if (resyncTimer) clearInterval(resyncTimer);
      await Promise.all(watchers.splice(0).map((w) => w.close().catch(() => {})));
      await scheduler.stop();
      if (reloading) await reloading.catch(() => {});
      for (const [ns, h] of handles) {
        h.events?.close();
        deps.closeNamespace(ns);
      }
      handles.clear();
      await http?.close();
      rejectReady(new DaemonStartError('stopped before the first pass was done'));
      log.info({}, 'stopped');
      resolveDone();
    })();
    return stopping;
  }

  start().catch(async (err: unknown) => {
    rejectReady(err instanceof Error ? err : new Error(String(err)));
    await stop();
  });

  return {
    ready,
    stop,
    done,
    status,
    reload,
    address: () => http?.address,
    metrics,
    memo,
    whenIdle: () => scheduler.whenIdle(),
  };
}
