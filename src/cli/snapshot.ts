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
// are loaded in it on first use (kernel/native.ts; koffi's file as recorded
// relative to bin.js, never an absolute path of the build).
import { dirname, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import v8 from 'node:v8';
import { Writable } from 'node:stream';
import { parseConfigText, resolveAll } from '../config/index.js';
import type { LiveNamespace } from '../core/model.js';
import { reconcileAll } from '../apply/reconcile.js';
import { SnapshotKernel } from '../apply/snapshot-kernel.js';
import { renderText } from './format-plan.js';
import { parseCommandLine } from './main.js';
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

// V8 keeps the bytecode of what ran while the snapshot was built, and compiles
// any other function on its first call. So the build runs, on made-up data and
// without any I/O, what every one-shot command runs first: the command line,
// the config parser and the schema's checks, and for `plan`/`apply` the planner
// over a namespace (a saved-snapshot kernel, as `plan --live` uses) and the
// printed diff. Results are dropped; no state of them outlives the warm-up.
// No IP address appears in it: node:net's SocketAddress (core/address.ts) holds
// a native binding that a snapshot cannot carry, and the build would fail.
const WARM_UP = 'version: 1\nnamespaces:\n  - netns: host\n    limits: { subflows: 2 }\n    endpoints:\n      - { dev: eth0, flags: [subflow] }\n';
const WARM_UP_LIVE: LiveNamespace = {
  netns: 'host',
  endpoints: [],
  limits: { subflows: 0, addAddrAccepted: 0 },
  mptcp: { enabled: true, pathManager: 'kernel' },
  rpFilter: { all: 0, default: 0, eth0: 0 },
  links: [{ ifindex: 2, name: 'eth0', up: true, lowerUp: true }],
  addresses: [],
};

async function warmUp(): Promise<void> {
  const discard = new Writable({ write: (_chunk, _encoding, done) => done() });
  await parseCommandLine(['plan', '-f', 'warm-up.yaml', '--detailed-exitcode'], { stdout: discard, stderr: discard, env: {}, cwd: '/' });
  const parsed = parseConfigText(WARM_UP, 'warm-up.yaml');
  if (!parsed.config) throw new Error('the warm-up config does not parse');
  const desired = resolveAll(parsed.config, 'warm-up', []);
  let live: LiveNamespace | undefined;
  const results = await reconcileAll(desired, {
    mode: 'observe',
    existing: [],
    onLive: (l) => (live = l),
    openNamespace: () => new SnapshotKernel(WARM_UP_LIVE),
  });
  renderText([{ result: results[0]!, desired: desired[0]!, ...(live ? { live } : {}) }], { color: false, applied: false });
}

function blobPath(execArgv: readonly string[]): string {
  const i = execArgv.findIndex((a) => a === '--snapshot-blob' || a.startsWith('--snapshot-blob='));
  const arg = execArgv[i] === '--snapshot-blob' ? execArgv[i + 1] : execArgv[i]?.slice('--snapshot-blob='.length);
  if (!arg) throw new Error('started from a snapshot without --snapshot-blob');
  return resolve(arg);
}

if (v8.startupSnapshot.isBuildingSnapshot()) {
  // A warm-up that fails leaves no snapshot (the build says so; bin.js is used).
  void warmUp();
  v8.startupSnapshot.setDeserializeMainFunction(() => {
    // The blob lies in dist/snapshot/; modules that look for files beside
    // themselves (package.json, examples/) and the addons' resolution start
    // from dist/src/cli/bin.js, as they do in the plain bundle.
    globalThis.__mptcpReconcilerUrl = pathToFileURL(resolve(dirname(blobPath(process.execArgv)), '../src/cli/bin.js')).href;
    // A snapshot's argv has no script: the command line starts at argv[1].
    start(process.argv.slice(1));
  });
}
