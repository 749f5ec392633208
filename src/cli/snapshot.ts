// Entry of the CLI's V8 start-up snapshot. scripts/bundle.mjs bundles this file
// with every module of the CLI into one CommonJS script and runs it under
// `node --build-snapshot`: zod's schemas, yaml, commander and the commands are
// then evaluated once, at build time, and a one-shot command starts from their
// heap instead of compiling and running ~1 MB of JavaScript. bin/mptcp-reconciler
// uses the blob only when it was built by the node that runs it; bin.js is the
// same CLI without it. Why it pays and what it cannot hold: docs/design.md#start-up.
//
// Nothing here may depend on the machine that builds it: the process that runs
// reads argv, env, cwd, the clock and the files itself, and the native addons
// are loaded in it on first use (kernel/native.ts).
import { dirname, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import v8 from 'node:v8';
import { parseConfigText } from '../config/index.js';
import { start } from './start.js';
import './commands/validate.js';
import './commands/render.js';
import './commands/plan.js';
import './commands/apply.js';
import './commands/show.js';

/** Where the bundle's `import.meta.url` points once deserialized (see scripts/bundle.mjs). */
declare global {
  var __mptcpReconcilerUrl: string | undefined;
}

// V8 keeps the bytecode of what ran while the snapshot was built: parsing one
// small config compiles the parser and the schema's checks, which every command
// runs first. The result is dropped; no state of it outlives this statement.
const WARM_UP = 'version: 1\nnamespaces:\n  - netns: "w-*"\n    limits: { subflows: 2 }\n    endpoints:\n      - { dev: eth0, flags: [subflow] }\n';

function blobPath(execArgv: readonly string[]): string {
  const i = execArgv.findIndex((a) => a === '--snapshot-blob' || a.startsWith('--snapshot-blob='));
  const arg = execArgv[i] === '--snapshot-blob' ? execArgv[i + 1] : execArgv[i]?.slice('--snapshot-blob='.length);
  if (!arg) throw new Error('started from a snapshot without --snapshot-blob');
  return resolve(arg);
}

if (v8.startupSnapshot.isBuildingSnapshot()) {
  parseConfigText(WARM_UP, 'warm-up.yaml');
  v8.startupSnapshot.setDeserializeMainFunction(() => {
    // The blob lies in dist/snapshot/; modules that look for files beside
    // themselves (package.json, examples/) and the addons' resolution start
    // from dist/src/cli/bin.js, as they do in the plain bundle.
    globalThis.__mptcpReconcilerUrl = pathToFileURL(resolve(dirname(blobPath(process.execArgv)), '../src/cli/bin.js')).href;
    // A snapshot's argv has no script: the command line starts at argv[1].
    start(process.argv.slice(1));
  });
}
