// `watch`: keeps every declared namespace converged. Triggers (config edits,
// rtnetlink events, /run/netns changes, the resync timer, SIGHUP) only mark
// namespaces dirty; the scheduler runs one pass per dirty namespace, and each
// pass reads the kernel afresh (level-triggered), so a lost or duplicated trigger
// never leaves a wrong state behind for longer than one resync interval.
//
// The pieces, by role: ConfigSource (the config and its reloads),
// NamespaceRegistry (which namespaces are managed, their handles), the pass
// runner (one pass), PassReport (status, metrics, log line), Scheduler (dirty
// set, concurrency, backoff). This file wires them to the triggers and owns
// start and stop. The HTTP server belongs to the command that starts the daemon.
import type { ConflictChecker } from '../apply/conflict-gate.js';
import { PassMemo } from '../apply/pass-memo.js';
import type { Config } from '../core/schema.js';
import type { DesiredNamespace } from '../core/model.js';
import type { EventSocketHandlers } from '../kernel/events.js';
import { errorFields, type Logger } from '../log.js';
import { ConfigSource, DaemonStartError, type ConfigLoad } from './config-source.js';
import { DaemonMetrics } from './metrics.js';
import { LinkWatch } from './link-watch.js';
import { NamespaceRegistry, type RegistryDeps } from './namespace-registry.js';
import { passRunner, type PassDeps } from './pass.js';
import { failingReason, PassReport, type Mode, type NamespaceStatus } from './pass-report.js';
import { Readiness } from './readiness.js';
import { Scheduler, type BackoffOptions } from './scheduler.js';
import { watchConfig, watchNetnsDir, type Watcher } from './watchers.js';

export { DaemonStartError, type ConfigLoad } from './config-source.js';
export type { ReconcileCall } from './pass.js';
export type { ConflictFindingLike, Mode, NamespaceStatus, PassResult } from './pass-report.js';

/** The pieces the loop drives; the real ones are in deps.ts, tests may inject fakes. */
export interface DaemonDeps extends RegistryDeps, PassDeps {
  /** Loads for this node only: another node's merge problem must not stop this one. */
  loadConfig(path: string, node: string): Promise<ConfigLoad>;
  formatDiagnostics(diags: unknown[]): string;
  resolveAll(config: Config, node: string, netnsNames: string[]): DesiredNamespace[];
}

export interface DaemonOptions {
  file: string;
  node: string;
  mode: Mode;
  resyncMs: number;
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

export interface DaemonStatus {
  node: string;
  mode: Mode;
  ready: boolean;
  /** Why /readyz answers 503 (empty when ready). */
  notReady: string[];
  /** Namespaces their `conflicts:` policy keeps unchanged: reported, yet not a reason to be unready. */
  blocked: string[];
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
  /** The loop runs (false once stopping). */
  healthy(): boolean;
  /** Ready for a rollout gate: see `readiness()`. */
  isReady(): boolean;
  /**
   * Ready: the config is loaded, the first pass over every namespace is done,
   * and no namespace keeps failing (`failingReason`). Blocked namespaces are
   * listed but do not make the daemon unready.
   */
  readiness(): ReadinessReport;
  /** Re-reads the config (SIGHUP). */
  reload(reason?: string): Promise<void>;
  metrics: DaemonMetrics;
  memo: PassMemo;
  /** Resolves when no pass runs or waits (except namespaces in backoff). For tests. */
  whenIdle(): Promise<void>;
}

/** rtnetlink notifications of one namespace: each only marks it for a pass. */
function rtnlTriggers(ns: string, log: Logger, scheduler: Scheduler, registry: NamespaceRegistry): EventSocketHandlers {
  return {
    onEvents: (events) => scheduler.mark(ns, `rtnl:${[...new Set(events.map((e) => e.kind))].join(',')}`),
    onOverflow: () => {
      log.warn({ netns: ns }, 'rtnetlink notifications lost (queue overflow): reading the namespace again');
      scheduler.mark(ns, 'rtnl-overflow');
    },
    onError: (err) => {
      log.warn({ netns: ns, ...errorFields(err) }, 'rtnetlink event socket failed; reopening it on the next pass');
      registry.dropEvents(ns);
      scheduler.mark(ns, 'rtnl-error');
    },
  };
}

export interface ReadinessReport {
  ready: boolean;
  reasons: string[];
  blocked: string[];
}

function readinessOf(firstPassDone: boolean, config: ConfigSource, report: PassReport, registry: NamespaceRegistry): ReadinessReport {
  const reasons: string[] = [];
  const blocked: string[] = [];
  if (!config.current) reasons.push(`config not loaded${config.error ? `: ${config.error}` : ''}`);
  else if (!firstPassDone) reasons.push('first pass not done');
  for (const st of Object.values(report.snapshot(registry.desired.keys()))) {
    const why = failingReason(st);
    if (why) reasons.push(why);
    // Blocked by policy (a manager running under `conflicts: fail`); keys suspended by a fight are in the namespace's status.
    if (st.errors.some((e) => e.op === 'conflict')) {
      const managers = [...new Set(st.conflicts.map((c) => c.manager))];
      blocked.push(`${st.netns}${managers.length ? ` (${managers.join(', ')})` : ''}`);
    }
  }
  return { ready: reasons.length === 0, reasons, blocked };
}

function daemonStatus(opts: DaemonOptions, firstPassDone: boolean, config: ConfigSource, report: PassReport, registry: NamespaceRegistry): DaemonStatus {
  const c = config.current;
  const r = readinessOf(firstPassDone, config, report, registry);
  return {
    node: opts.node,
    mode: opts.mode,
    ready: r.ready,
    notReady: r.reasons,
    blocked: r.blocked,
    config: {
      path: opts.file,
      hash: c?.hash ?? '',
      generation: config.generation,
      valid: config.valid,
      files: c?.files ?? [],
      loadedAt: c?.loadedAt ?? '',
      ...(config.error ? { error: config.error } : {}),
    },
    namespaces: report.snapshot(registry.desired.keys()),
    missing: registry.missing,
  };
}

export function startDaemon(opts: DaemonOptions): Daemon {
  const { deps, logger: log } = opts;
  const metrics = new DaemonMetrics();
  const memo = opts.memo ?? new PassMemo();
  const abort = new AbortController();
  const report = new PassReport(opts.mode, metrics, () => log.isLevelEnabled('debug'));
  const watchers: Watcher[] = [];
  let running = true;
  let resyncTimer: NodeJS.Timeout | undefined;
  const readiness = new Readiness(() => log.info({ namespaces: registry.desired.size }, 'first pass over every namespace done: ready'));
  const links = new LinkWatch({ mark: (ns, reason) => scheduler.mark(ns, reason) });

  const registry: NamespaceRegistry = new NamespaceRegistry({
    node: opts.node,
    deps,
    logger: log,
    mark: (ns, reason, urgent) => scheduler.mark(ns, reason, { urgent }),
    onDrop: (ns) => {
      scheduler.forget(ns);
      links.forget(ns);
      report.forget(ns);
      opts.conflicts?.forget(ns);
      readiness.passDone(ns);
    },
    onNewConfig: (ns) => opts.conflicts?.forget(ns),
    onRecreated: (ns) => opts.conflicts?.forget(ns),
  });
  const scheduler: Scheduler = new Scheduler({
    run: passRunner({
      mode: opts.mode,
      deps,
      registry,
      report,
      memo,
      conflicts: opts.conflicts,
      logger: log,
      signal: abort.signal,
      isRunning: () => running,
      eventHandlers: (ns) => rtnlTriggers(ns, log, scheduler, registry),
      failures: (ns) => scheduler.failures(ns),
      passDone: (ns) => readiness.passDone(ns),
      links,
    }),
    concurrency: opts.concurrency ?? 8,
    ...(opts.backoff ? { backoff: opts.backoff } : {}),
    onCrash: (ns, err) => log.error({ netns: ns, ...errorFields(err) }, 'pass crashed (a bug); retrying with backoff'),
  });
  const refresh = (reason: string, urgent: boolean, touched?: ReadonlySet<string>) => {
    if (config.current && running) registry.refresh(config.current.config, reason, urgent, touched);
  };
  const config = new ConfigSource({
    file: opts.file,
    node: opts.node,
    loadConfig: (f, n) => deps.loadConfig(f, n),
    formatDiagnostics: (d) => deps.formatDiagnostics(d),
    logger: log,
    metrics,
    onChange: (hash) => refresh(`config:${hash}`, true),
  });
  const reload = (reason = 'reload'): Promise<void> => {
    if (!running) return Promise.resolve();
    // SIGHUP is the operator's "try again now": backoffs from fights end, and every namespace gets a pass.
    if (reason === 'SIGHUP' && opts.conflicts?.clearFights()) {
      for (const ns of registry.desired.keys()) scheduler.mark(ns, 'SIGHUP', { urgent: true });
    }
    return config.reload(reason);
  };

  async function start(): Promise<void> {
    await config.start();
    const onWatchError = (e: Error) => log.warn({ err: e }, 'file watcher error');
    const debounce = opts.debounceMs !== undefined ? { debounceMs: opts.debounceMs } : {};
    watchers.push(await watchConfig(opts.file, (what) => void reload(`file:${what}`), { onError: onWatchError, ...debounce }));
    watchers.push(await watchNetnsDir(deps.netnsDir, (touched) => refresh('netns-dir', false, touched), { onError: onWatchError, ...debounce }));
    if (!running) return;
    resyncTimer = setInterval(() => {
      // Endpoints and limits change without any notification: only a re-read finds that drift.
      for (const ns of registry.desired.keys()) scheduler.mark(ns, 'resync');
    }, opts.resyncMs);
    refresh('start', true);
    readiness.begin(registry.desired.keys());
    log.info({ node: opts.node, mode: opts.mode, namespaces: [...registry.desired.keys()], missing: registry.missing, resyncMs: opts.resyncMs }, 'watching');
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
      links.stop();
      await Promise.all(watchers.splice(0).map((w) => w.close().catch(() => {})));
      await scheduler.stop();
      await config.stop();
      registry.closeAll();
      readiness.fail(new DaemonStartError('stopped before the first pass was done'));
      log.info({}, 'stopped');
      resolveDone();
    })();
    return stopping;
  }

  start().catch(async (err: unknown) => {
    readiness.fail(err instanceof Error ? err : new Error(String(err)));
    await stop();
  });

  return {
    ready: readiness.ready,
    stop,
    done,
    status: () => daemonStatus(opts, readiness.done, config, report, registry),
    healthy: () => running,
    isReady: () => readinessOf(readiness.done, config, report, registry).ready,
    readiness: () => readinessOf(readiness.done, config, report, registry),
    reload,
    metrics,
    memo,
    whenIdle: () => scheduler.whenIdle(),
  };
}
