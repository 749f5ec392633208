// The two native addons (koffi for libc calls, netlink for event sockets) are
// loaded on first use rather than imported: `validate` and `render` need neither,
// and the CLI's start-up snapshot (src/cli/snapshot.ts) can hold every module of
// the CLI only if none of them loads an addon while it is evaluated (a snapshot
// cannot carry native code; the addon is loaded in the process that runs).
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type Koffi from 'koffi';
import type * as NetlinkRaw from 'netlink/dist/raw.js';
import { BUILD_FACTS, type BuildFacts } from '../build-facts.js';

let load: NodeJS.Require | undefined;

function addon<T>(id: string): T {
  load ??= createRequire(import.meta.url);
  return load(id) as T;
}

let koffiModule: typeof Koffi | undefined;
let netlinkRaw: typeof NetlinkRaw | undefined;

export function koffi(): typeof Koffi {
  return (koffiModule ??= loadKoffi(BUILD_FACTS?.koffi, import.meta.url).koffi);
}

/**
 * koffi's own loader spends more time finding its native file than loading it
 * (module resolution through package exports and realpaths, a second package
 * per platform, the node binary's ELF header read for the libc): ~10 ms of a
 * one-shot command. The bundle knows which file it picked at build time, beside
 * the bundle's entry, so that file is opened directly; the native module is the
 * API the loader exports (its wrapper only adds deprecated aliases we do not
 * call). A file that is gone, does not load or belongs to another koffi version
 * (the package moved or was upgraded since the build) leaves it to
 * `require('koffi')`, which finds the right one or says why not.
 */
export function loadKoffi(built: BuildFacts['koffi'], entryUrl: string): { koffi: typeof Koffi; from: 'build' | 'require' } {
  if (built) {
    const native = { exports: {} as { version?: unknown } };
    try {
      process.dlopen(native, fileURLToPath(new URL(built.file, entryUrl)));
      if (native.exports.version === built.version) return { koffi: native.exports as typeof Koffi, from: 'build' };
    } catch {
      // not there or not loadable here: the package's own loader below
    }
  }
  return { koffi: addon<typeof Koffi>('koffi'), from: 'require' };
}

export function netlinkRawSockets(): typeof NetlinkRaw {
  return (netlinkRaw ??= addon<typeof NetlinkRaw>('netlink/dist/raw.js'));
}
