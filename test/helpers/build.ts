// The built CLI (dist/src/cli/bin.js) for tests that run it as a separate
// process, rebuilt when older than the sources.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

export const ROOT = join(import.meta.dirname, '..', '..');
export const BIN = join(ROOT, 'dist/src/cli/bin.js');

function newestMtime(dir: string): number {
  let m = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    m = Math.max(m, e.isDirectory() ? newestMtime(p) : statSync(p).mtimeMs);
  }
  return m;
}

/** Builds dist/ (tsc, then the CLI bundle) when it is missing or older than src/; returns the bin's path. */
export function ensureBuilt(): string {
  if (existsSync(BIN) && statSync(BIN).mtimeMs >= newestMtime(join(ROOT, 'src'))) return BIN;
  // tsc emits even when someone else's file has a type error; the bin is what matters here.
  spawnSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', join(ROOT, 'tsconfig.build.json')], {
    cwd: ROOT,
    stdio: 'ignore',
  });
  // Then the bundle, as `npm run build` and `npm ci` make it: the bin users run.
  spawnSync(process.execPath, [join(ROOT, 'scripts/bundle.mjs')], { cwd: ROOT, stdio: 'ignore' });
  if (!existsSync(BIN)) throw new Error('build failed: dist/src/cli/bin.js missing');
  return BIN;
}
