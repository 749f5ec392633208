// Which build is running, for `--version` and the build_info metric: the
// version of the package's own package.json. The bundle and the start-up
// snapshot carry it from build time (build-facts.ts); tsc's unbundled modules
// find package.json by walking up from this module (the same from src/ and from
// dist/, and in the container image, which ships package.json beside dist/).
import { readFileSync } from 'node:fs';
import { release } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BUILD_FACTS } from './build-facts.js';

export const PACKAGE_NAME = 'mptcp-reconciler';

let version: string | undefined;

export function packageVersion(): string {
  if (version !== undefined) return version;
  if (BUILD_FACTS) return (version = BUILD_FACTS.version);
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: unknown; version?: unknown };
      if (pkg.name === PACKAGE_NAME && typeof pkg.version === 'string') return (version = pkg.version);
    } catch {
      // no (readable) package.json here: look further up
    }
    const up = dirname(dir);
    if (up === dir) return (version = 'unknown');
    dir = up;
  }
}

export interface BuildInfo {
  version: string;
  nodeVersion: string;
  kernel: string;
}

export function buildInfo(): BuildInfo {
  return { version: packageVersion(), nodeVersion: process.version, kernel: release() };
}
