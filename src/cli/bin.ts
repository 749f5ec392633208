#!/usr/bin/env node
import module from 'node:module';

// Node >= 22.1 keeps V8's compiled code of every module on disk (under the OS temp
// directory) and reuses it on the next start: zod and yaml load in half the time.
// Node 20 has no such cache; elsewhere a cache that cannot be written is no error.
// It has to be enabled before the modules load, hence the dynamic import below.
try {
  (module as { enableCompileCache?: () => unknown }).enableCompileCache?.();
} catch {
  // start without the cache
}

// A reader that goes away (`| head`, a closed pager) must not kill a command
// half-way: an apply or the demo's clean-up still has to finish. Output is
// dropped from then on; the exit code still tells the outcome.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err;
  });
}

const { main } = await import('./main.js');
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
