// An in-memory CliIO for running main() in-process and reading what it printed.
import type { CliIO } from '../../src/cli/io.js';

export interface CapturedIO {
  io: CliIO;
  out(): string;
  err(): string;
}

export function captureIO(opts: { env?: Record<string, string | undefined>; cwd?: string; isTTY?: boolean } = {}): CapturedIO {
  const out: string[] = [];
  const err: string[] = [];
  return {
    io: {
      stdout: { write: (s: string) => out.push(s), ...(opts.isTTY !== undefined ? { isTTY: opts.isTTY } : {}) },
      stderr: { write: (s: string) => err.push(s) },
      env: opts.env ?? {},
      cwd: opts.cwd ?? process.cwd(),
    },
    out: () => out.join(''),
    err: () => err.join(''),
  };
}
