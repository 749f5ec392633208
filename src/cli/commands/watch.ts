// `watch`: the long-running daemon. Signals are handled here (SIGHUP reloads,
// SIGTERM/SIGINT stop after the operation in flight); everything else is in
// src/daemon so that tests can start it in-process.
import { nodeName } from '../../config/index.js';
import { DaemonStartError, startDaemon, type Daemon, type Mode } from '../../daemon/daemon.js';
import { ConflictChecker } from '../../apply/conflict-gate.js';
import { realDeps } from '../../daemon/deps.js';
import { formatDuration, parseDuration } from '../../daemon/duration.js';
import { parseListen } from '../../http/server.js';
import { createLogger, LOG_LEVELS, type LogLevel } from '../../log.js';
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

/** Checks the options and starts the daemon; used by `run` and by tests that want the handle. */
export function startWatch(raw: Record<string, unknown>, io: CliIO): Daemon {
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
  const conflicts = new ConflictChecker({ procRoot: o.procRoot ?? '/proc', etcRoot: o.etcRoot ?? '/etc', evidenceMaxAgeMs: 30_000, detectFights: true, tolerateConfigErrors: true });
  return startDaemon({ file: o.file, node, mode, resyncMs, listen, logger, deps: realDeps(), conflicts });
}

export async function run(opts: Record<string, unknown>, io: CliIO): Promise<number> {
  const daemon = startWatch(opts, io);
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
  try {
    try {
      await daemon.ready;
    } catch (err) {
      if (err instanceof DaemonStartError && signalled === undefined) {
        io.stderr.write(`error: ${err.message}\n`);
        return 1;
      }
      if (signalled === undefined) throw err;
    }
    // Runs until a signal stops it; `done` resolves once the passes in flight are finished.
    await daemon.done;
    return 0;
  } finally {
    process.off('SIGTERM', onStop);
    process.off('SIGINT', onStop);
    process.off('SIGHUP', onHup);
  }
}
