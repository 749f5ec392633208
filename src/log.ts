// pino, JSON lines on stdout, for the long-running daemon. One-shot commands print
// human output themselves and never come here.
import { pino, type DestinationStream, type Level, type Logger } from 'pino';

export type { Logger };

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface LoggerOptions {
  level?: LogLevel | Level;
  /** Where the JSON lines go; default stdout. Tests pass a stream to read them back. */
  destination?: DestinationStream;
}

export function createLogger(opts: LoggerOptions = {}): Logger {
  return pino(
    {
      level: opts.level ?? 'info',
      base: { name: 'mptcp-reconciler' },
      timestamp: pino.stdTimeFunctions.isoTime,
      // Errors keep their kernel fields (op, netns, errno name, extack) in the line.
      serializers: { err: pino.stdSerializers.err },
    },
    // Synchronous writes: a line written before SIGTERM is never lost on exit.
    opts.destination ?? pino.destination({ dest: 1, sync: true }),
  );
}

// Errors the system produces in normal operation (a namespace deleted under us,
// no privilege, a busy kernel): the message, op and errno name say everything, a
// stack trace would only bury them. Anything else is a bug and keeps its stack.
const EXPECTED_ERRNOS = new Set(['ENOENT', 'EPERM', 'EACCES', 'ESTALE', 'EBUSY', 'EAGAIN', 'ENOBUFS', 'ENODEV', 'EEXIST', 'EINVAL', 'ESRCH', 'ENETDOWN']);

/** Log fields for an error: `err` with the stack only when the error is unexpected. */
export function errorFields(err: unknown): Record<string, unknown> {
  const e = err as (Error & { code?: unknown; op?: unknown; errno?: unknown }) | undefined;
  if (e instanceof Error && typeof e.code === 'string' && EXPECTED_ERRNOS.has(e.code)) {
    return { err: e.message, errno: e.code, ...(typeof e.op === 'string' ? { op: e.op } : {}) };
  }
  return { err };
}
