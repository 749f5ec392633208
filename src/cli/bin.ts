#!/usr/bin/env node
import { main } from './main.js';

// A reader that goes away (`| head`, a closed pager) must not kill a command
// half-way: an apply or the demo's clean-up still has to finish. Output is
// dropped from then on; the exit code still tells the outcome.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err;
  });
}

main(process.argv.slice(2), {
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
