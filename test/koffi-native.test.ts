// koffi's native module is opened from the file the build recorded beside the
// bundle (kernel/native.ts), and from koffi's own loader when that file is gone,
// does not load, or belongs to another koffi version: the libc calls work either way.
import { createRequire } from 'node:module';
import { dirname, relative } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadKoffi } from '../src/kernel/native.js';
import { ROOT } from './helpers/build.js';

// What scripts/bundle.mjs records: the file `require('koffi')` loads, relative to
// the bundle's entry.
const ENTRY = `${ROOT}/dist/src/cli/bin.js`;
const req = createRequire(ENTRY);
const realKoffi = req('koffi') as { version: string };
const nativeFile = Object.keys(req.cache).find((k) => k.endsWith('/koffi.node'))!;
const recorded = { file: relative(dirname(ENTRY), nativeFile), version: realKoffi.version };
const entryUrl = pathToFileURL(ENTRY).href;

/** A real call through the loaded module: getpid(2) must be this process. */
function getpid(k: ReturnType<typeof loadKoffi>['koffi']): number {
  return (k.load('libc.so.6').func('int getpid()') as () => number)();
}

describe('loading koffi', () => {
  it('opens the native file recorded at build time, relative to the bundle', () => {
    expect(recorded.file.startsWith('/')).toBe(false);
    const r = loadKoffi(recorded, entryUrl);
    expect(r.from).toBe('build');
    expect(r.koffi.version).toBe(realKoffi.version);
    expect(getpid(r.koffi)).toBe(process.pid);
  });

  it('falls back to koffi’s own loader when the recorded file is not there (the package moved)', () => {
    const r = loadKoffi({ ...recorded, file: `../../../elsewhere/${recorded.file}` }, entryUrl);
    expect(r.from).toBe('require');
    expect(getpid(r.koffi)).toBe(process.pid);
  });

  it('falls back when the file belongs to another koffi version (upgraded since the build)', () => {
    const r = loadKoffi({ ...recorded, version: '0.0.1' }, entryUrl);
    expect(r.from).toBe('require');
    expect(getpid(r.koffi)).toBe(process.pid);
  });

  it('uses koffi’s own loader when the build recorded nothing (tsc’s unbundled modules)', () => {
    const r = loadKoffi(undefined, entryUrl);
    expect(r.from).toBe('require');
    expect(getpid(r.koffi)).toBe(process.pid);
  });
});
