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

const { start } = await import('./start.js');
start(process.argv.slice(2));
