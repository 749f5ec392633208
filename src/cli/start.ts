// What a process does with the CLI once Node is up, shared by the two ways it
// starts: bin.js (the ES modules) and the start-up snapshot (snapshot.ts).
import { main } from './main.js';

export function start(argv: string[]): void {
  // A reader that goes away (`| head`, a closed pager) must not kill a command
  // half-way: an apply or the demo's clean-up still has to finish. Output is
  // dropped from then on; the exit code still tells the outcome.
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EPIPE') throw err;
    });
  }
  main(argv, {
    stdout: process.stdout,
    stderr: process.stderr,
    env: process.env,
    cwd: process.cwd(),
  }).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      // An unexpected fault: say what it was in one line; the stack only on request.
      const e = err as Error;
      process.stderr.write(`internal error: ${e?.message ?? String(err)}\n`);
      if (process.env.MPTCP_RECONCILER_DEBUG) process.stderr.write(`${e?.stack}\n`);
      process.exitCode = 1;
    },
  );
}
