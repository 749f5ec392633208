// The CLI is a function of argv and streams, so tests run it in-process.
export interface OutStream {
  write(chunk: string): unknown;
  isTTY?: boolean;
}

export interface CliIO {
  stdout: OutStream;
  stderr: OutStream;
  env: Record<string, string | undefined>;
  cwd: string;
}

/** A user error: printed as is, never with a stack trace, exit code 1. */
export class UsageError extends Error {
  override name = 'UsageError';
}
