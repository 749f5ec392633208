// What scripts/bundle.mjs knows when it bundles the CLI and writes into the
// bundle and the start-up snapshot as a constant (esbuild's `define`), so that a
// one-shot command does not look for it on disk at every start: the package's
// version, and which native file of koffi `require('koffi')` picked on the
// machine that built it. tsc's unbundled output (the daemon's tests, the bench)
// has no such constant and finds both at run time, as before.
export interface BuildFacts {
  /** package.json's version at build time. */
  version: string;
  /**
   * koffi's native module, as a path relative to the bundle's entry
   * (dist/src/cli/bin.js), and the version of the koffi package it belongs to.
   */
  koffi?: { file: string; version: string };
}

declare const __MPTCP_RECONCILER_BUILD__: BuildFacts | undefined;

export const BUILD_FACTS: BuildFacts | undefined = typeof __MPTCP_RECONCILER_BUILD__ === 'object' ? __MPTCP_RECONCILER_BUILD__ : undefined;
