// Second half of the build (after tsc): replaces dist/src/cli/bin.js with a bundle of
// the CLI and its pure-JS dependencies, one chunk per command (chunks/), so that a
// one-shot command loads a handful of files instead of ~200 ESM modules. Resolving
// and linking zod's 95 files alone took longer than running them; the bundle saves
// ~100 ms of every command's start (figures in the commit message).
//
// Input is tsc's output, so the bundle has exactly tsc's semantics. Everything else
// in dist/ stays as tsc wrote it (tests and the bench import those modules), and a
// plain `tsc -p tsconfig.build.json` rewrites bin.js back to the unbundled entry,
// which works the same, only slower: a bundle can never be older than the code.
//
// Then the start-up snapshot (below). `node scripts/bundle.mjs --snapshot-only`
// makes only that, for the node running it, next to those of other nodes (the
// tests do so when they run under another Node than the one that built dist/).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, realpathSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, isAbsolute, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const cliDir = join(root, 'dist/src/cli');
const entry = join(cliDir, 'bin.js');
const MARK = '// bundled by scripts/bundle.mjs';

const snapshotOnly = process.argv.includes('--snapshot-only');
if (!snapshotOnly && readFileSync(entry, 'utf8').includes(MARK)) {
  // Bundling the bundle would stack chunks on chunks; tsc must write the entry first.
  console.error(`${entry} is already a bundle: run tsc -p tsconfig.build.json first (npm run build does both)`);
  process.exit(1);
}
// zod re-exports its 64 translations of error messages (`z.locales`, ~250 KB, 40 % of
// its chunk) from its namespace object, which defeats tree shaking; every command
// paid for compiling them. The product reports its own messages and never switches
// zod's locale, so the bundle gets a `locales` that holds only the English one zod
// configures itself with.
const zodEnglishOnly = {
  name: 'zod-english-only',
  setup(b) {
    b.onResolve({ filter: /^\.\.\/locales\/index\.js$/ }, (args) =>
      /[\\/]node_modules[\\/]zod[\\/]/.test(args.importer)
        ? { path: join(dirname(args.importer), '../locales'), namespace: 'zod-locales' }
        : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: 'zod-locales' }, (args) => ({
      contents: "export { default as en } from './en.js';",
      resolveDir: args.path,
    }));
  },
};

// What a one-shot command would otherwise look up on disk at every start, written
// into both bundles as the constant src/build-facts.ts reads. koffi's native
// file is the one `require('koffi')` picks here, from where bin.js lies,
// recorded relative to bin.js: the package may be installed elsewhere, never
// with this checkout's paths. Node caches a loaded .node under its real path.
function koffiNative() {
  const req = createRequire(entry);
  try {
    req('koffi');
  } catch {
    return undefined;
  }
  const file = Object.keys(req.cache).find((k) => k.endsWith(`${sep}koffi.node`));
  if (!file) return undefined;
  const rel = relative(realpathSync(cliDir), file);
  if (isAbsolute(rel)) return undefined;
  return { file: rel.split(sep).join('/'), version: String(req.cache[file].exports.version) };
}
const buildFacts = {
  version: JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).version,
  koffi: koffiNative(),
};
const define = { __MPTCP_RECONCILER_BUILD__: JSON.stringify(buildFacts) };

async function bundleModules() {
  const result = await build({
    write: false,
    entryPoints: [entry],
    outdir: cliDir,
    allowOverwrite: true,
    entryNames: '[name]',
    chunkNames: 'chunks/[name]-[hash]',
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node20.19',
    // Native addons load their prebuilt .node files relative to their own package.
    external: ['koffi', 'netlink'],
    plugins: [zodEnglishOnly],
    define,
    // CommonJS dependencies (commander, pino, prom-client) call require() for Node's
    // built-ins; an ES module has no require of its own.
    banner: { js: `${MARK}\nimport { createRequire as __bundleRequire } from 'node:module';\nconst require = __bundleRequire(import.meta.url);` },
    // V8 keeps every loaded script's source text in the heap for as long as the
    // process runs (lazy compilation): whitespace and comments are the daemon's
    // memory. Identifiers stay, so stack traces still name functions. A single
    // non-Latin-1 character in a comment (zod has two) also doubles a chunk's
    // source to two bytes per character.
    minifyWhitespace: true,
    minifySyntax: true,
    legalComments: 'none',
    sourcemap: 'linked',
    logLevel: 'warning',
  });

  // A CLI started from the old bundle may still import its chunks while this runs
  // (tests rebuild while others run the bin): every file appears whole through a
  // rename, and a chunk goes away only once the new bin.js no longer names it.
  const written = new Set();
  for (const f of result.outputFiles) {
    mkdirSync(dirname(f.path), { recursive: true });
    const tmp = `${f.path}.${process.pid}.tmp`;
    writeFileSync(tmp, f.contents);
    written.add(f.path);
    if (f.path !== entry) renameSync(tmp, f.path);
  }
  renameSync(`${entry}.${process.pid}.tmp`, entry);
  const chunksDir = join(cliDir, 'chunks');
  for (const name of readdirSync(chunksDir)) {
    if (!written.has(join(chunksDir, name))) rmSync(join(chunksDir, name), { force: true });
  }
}

// Third step: the V8 start-up snapshot that bin/mptcp-reconciler starts one-shot
// commands from (src/cli/snapshot.ts says what it holds, docs/design.md#start-up
// why). One CommonJS script of the whole CLI, evaluated by `node --build-snapshot`
// of the node running this build; the blob is named after that node's version,
// which the launcher compares with its own, and must be newer than bin.js. A
// build that cannot make one still succeeds: the launcher then runs bin.js, the
// same CLI.
const snapDir = join(root, 'dist/snapshot');

async function buildSnapshot() {
  mkdirSync(snapDir, { recursive: true });
  const script = join(snapDir, `cli-${process.version}.cjs`);
  const blob = join(snapDir, `cli-${process.version}.blob`);
  await build({
    entryPoints: [join(cliDir, 'snapshot.js')],
    outfile: script,
    bundle: true,
    format: 'cjs',
    platform: 'node',
    target: 'node20.19',
    external: ['koffi', 'netlink'],
    plugins: [zodEnglishOnly],
    // Set by the deserialized main function to dist/src/cli/bin.js, wherever the
    // package lies when it runs: the files modules look for beside themselves.
    define: { ...define, 'import.meta.url': 'globalThis.__mptcpReconcilerUrl' },
    minifyWhitespace: true,
    minifySyntax: true,
    legalComments: 'none',
    logLevel: 'warning',
  });
  const made = spawnSync(process.execPath, ['--no-warnings', '--snapshot-blob', `${blob}.tmp`, '--build-snapshot', script], {
    stdio: ['ignore', 'ignore', 'pipe'],
    encoding: 'utf8',
    env: { ...process.env, NODE_OPTIONS: '' },
  });
  // The blob holds the script's source; the file is not read again.
  rmSync(script, { force: true });
  // As with the chunks, a launcher starting now sees either the old blob (older
  // than the new bin.js, so unused) or the new one whole.
  // Beside it, a link to the node that made it: the launcher recognises that node
  // without starting it to ask its version (bin/mptcp-reconciler).
  const link = join(snapDir, `cli-${process.version}.made-by`);
  if (made.status === 0) {
    renameSync(`${blob}.tmp`, blob);
    rmSync(`${link}.tmp`, { force: true });
    symlinkSync(realpathSync(process.execPath), `${link}.tmp`);
    return renameSync(`${link}.tmp`, link);
  }
  rmSync(`${blob}.tmp`, { force: true });
  rmSync(blob, { force: true });
  rmSync(link, { force: true });
  const why = made.stderr.trim().split('\n').slice(-3).join(' | ');
  console.error(`no start-up snapshot for node ${process.version} (${why}); bin/mptcp-reconciler runs dist/src/cli/bin.js`);
}

if (!snapshotOnly) {
  await bundleModules();
  // Blobs of other nodes are now older than bin.js: never used again.
  const mine = [`cli-${process.version}.blob`, `cli-${process.version}.made-by`];
  for (const name of existsSync(snapDir) ? readdirSync(snapDir) : []) {
    if (!mine.includes(name)) rmSync(join(snapDir, name), { force: true });
  }
}
await buildSnapshot();
