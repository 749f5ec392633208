// `watch`: the long-running daemon. Signals are handled here (SIGHUP reloads,
// SIGTERM/SIGINT stop after the operation in flight), and so is the HTTP server
// (probes, metrics, status): the command that starts the daemon owns what it
// serves. The loop itself is in src/daemon so that tests can start it in-process.
import { ConflictChecker } from '../../apply/conflict-gate.js';
import { openLiveManagers } from '../../conflicts/index.js';
import { nodeName } from '../../config/index.js';
import { DaemonStartError, startDaemon, type Daemon, type Mode } from '../../daemon/daemon.js';
import { realDeps } from '../../daemon/deps.js';
import { formatDuration, parseDuration } from '../../core/duration.js';
import { parseListen, startHttpServer, type HttpSources, type ListenAddress } from '../../http/server.js';
import { createLogger, LOG_LEVELS, type Logger, type LogLevel } from '../../log.js';
import type { CliIO } from '../io.js';
import { UsageError } from '../io.js';

export interface WatchOptions {
  file: string;
  node?: string;
  resync?: string;
  listen?: string;
  mode?: string;
  logLevel?: string;
  procRoot?: string;
  etcRoot?: string;
}

/** What the HTTP server shows of a daemon. */
export function httpSources(daemon: Daemon): HttpSources {
  return { healthy: () => daemon.healthy(), ready: () => daemon.isReady(), readiness: () => daemon.readiness(), registry: daemon.metrics.registry, status: () => daemon.status() };
}

/**
 * Serves `daemon` on `listen` until the daemon is done. A port that cannot be
 * bound is a DaemonStartError (the message as printed).
 */
export async function serveDaemon(daemon: Daemon, listen: ListenAddress, logger: Logger): Promise<ListenAddress> {
  let http: Awaited<ReturnType<typeof startHttpServer>>;
  try {
    http = await startHttpServer(listen, httpSources(daemon));
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new DaemonStartError(`cannot listen on ${listen.host}:${listen.port}: ${e.code ?? e.message}`);
  }
  logger.info({ listen: `${http.address.host}:${http.address.port}` }, 'http listening');
  void daemon.done.then(() => http.close());
  return http.address;
}

/** Checks the options and starts the daemon and its HTTP server; used by `run` and by tests that want the handle. */
export function startWatch(raw: Record<string, unknown>, io: CliIO): { daemon: Daemon; listening: Promise<ListenAddress> } {
  const o = raw as unknown as WatchOptions;
  const resyncMs = parseDuration(o.resync ?? '5s');
  if (resyncMs === undefined || resyncMs < 100) {
    throw new UsageError(`--resync ${o.resync}: not a duration of at least 100ms (examples: 500ms, 5s, 1m)`);
  }
  const listen = parseListen(o.listen ?? '127.0.0.1:9808');
  if (!listen) throw new UsageError(`--listen ${o.listen}: expected ADDR:PORT, e.g. 127.0.0.1:9808 or [::1]:9808`);
  const mode = (o.mode ?? 'enforce') as Mode;
  if (mode !== 'enforce' && mode !== 'observe') throw new UsageError(`--mode ${o.mode}: expected enforce or observe`);
  const level = (o.logLevel ?? 'info') as LogLevel;
  if (!LOG_LEVELS.includes(level)) throw new UsageError(`--log-level ${o.logLevel}: expected one of ${LOG_LEVELS.join(', ')}`);
  const node = nodeName({ node: o.node }, io.env);
  const logger = createLogger({ level });
  logger.info({ resync: formatDuration(resyncMs) }, 'starting');
  // Opened once in the host namespace; every pass asks it right before writing.
  const liveManagers = openLiveManagers({ procRoot: o.procRoot ?? '/proc', log: logger });
  const conflicts = new ConflictChecker({
    procRoot: o.procRoot ?? '/proc',
    etcRoot: o.etcRoot ?? '/etc',
    liveManagers,
    // Manager configuration files are read again after this long; processes are always current.
    evidenceMaxAgeMs: 30_000,
    detectFights: true,
    tolerateConfigErrors: true,
  });
  const daemon = startDaemon({ file: o.file, node, mode, resyncMs, logger, deps: realDeps(), conflicts });
  void daemon.done.finally(() => liveManagers.close());
  const listening = serveDaemon(daemon, listen, logger);
  // A port that cannot be bound stops the daemon before anything else happens.
  listening.catch(() => void daemon.stop());
  return { daemon, listening };
}

export async function run(opts: Record<string, unknown>, io: CliIO): Promise<number> {
  const { daemon, listening } = startWatch(opts, io);
  let signalled: NodeJS.Signals | undefined;
  const onStop = (sig: NodeJS.Signals) => {
    if (signalled) return;
    signalled = sig;
    void daemon.stop();
  };
  const onHup = () => void daemon.reload('SIGHUP');
  process.on('SIGTERM', onStop);
  process.on('SIGINT', onStop);
  process.on('SIGHUP', onHup);
  // A port that cannot be bound stops the daemon: that, not "stopped", is the reason to print.
  const listenError = listening.then(
    () => undefined,
    (e: unknown) => e,
  );
  const fail = async (err: unknown): Promise<number> => {
    if (!(err instanceof DaemonStartError) || signalled !== undefined) {
      if (signalled === undefined) throw err;
      return 0;
    }
    io.stderr.write(`error: ${err.message}\n`);
    await daemon.done;
    return 1;
  };
  try {
    try {
      await daemon.ready;
    } catch (err) {
      const code = await fail((await listenError) ?? err);
      if (code !== 0) return code;
    }
    const late = await listenError;
    if (late !== undefined) return await fail(late);
    // Runs until a signal stops it; `done` resolves once the passes in flight are finished.
    await daemon.done;
    return 0;
  } finally {
    process.off('SIGTERM', onStop);
    process.off('SIGINT', onStop);
    process.off('SIGHUP', onHup);
  }
}
