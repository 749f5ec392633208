// File-system triggers: the config file or directory, and /run/netns.
//
// Config: editors save by writing a temp file and renaming it over the old one,
// and Kubernetes updates a mounted ConfigMap by renaming a new `..data` symlink
// over the old one (the visible `x.yaml` symlinks never change). Watching the
// file itself misses both, so the directory holding it is watched and any event
// on the file or on a `..`-prefixed entry means "read the config again"; the
// reload compares content hashes, so a spurious trigger costs one read.
import { statSync } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { watch, type FSWatcher } from 'chokidar';

export interface Watcher {
  close(): Promise<void>;
}

/** Calls `fire` at most once per `ms` for a burst of calls; the last call is never lost. */
export function debounce(ms: number, fire: () => void): { (): void; cancel(): void } {
  let timer: NodeJS.Timeout | undefined;
  const f = () => {
    if (timer) return;
    timer = setTimeout(() => {
      timer = undefined;
      fire();
    }, ms);
  };
  f.cancel = () => {
    if (timer) clearTimeout(timer);
    timer = undefined;
  };
  return f;
}

async function ready(w: FSWatcher): Promise<void> {
  await new Promise<void>((r) => w.once('ready', () => r()));
}

export async function watchConfig(path: string, onChange: (what: string) => void, opts: { debounceMs?: number; onError?: (e: Error) => void } = {}): Promise<Watcher> {
  const abs = resolve(path);
  let isDir = false;
  try {
    isDir = statSync(abs).isDirectory();
  } catch {
    /* a missing file is watched through its directory all the same */
  }
  const dir = isDir ? abs : dirname(abs);
  const name = basename(abs);
  let last = '';
  const fire = debounce(opts.debounceMs ?? 25, () => onChange(last));
  const relevant = (p: string) => {
    if (isDir) return true;
    const rel = p.startsWith(dir) ? p.slice(dir.length + 1) : p;
    const first = rel.split('/')[0] ?? '';
    return first === name || first.startsWith('..');
  };
  const w = watch(dir, {
    ignoreInitial: true,
    followSymlinks: false,
    // `..data` plus the timestamped directory it points to.
    depth: 1,
    // chokidar's atomic mode holds back unlink events for 100 ms; the hash check
    // already makes a delete+create pair harmless.
    atomic: false,
    persistent: true,
  });
  w.on('all', (event, p) => {
    if (!relevant(p)) return;
    last = `${event} ${p}`;
    fire();
  });
  w.on('error', (e) => opts.onError?.(e as Error));
  await ready(w);
  return {
    close: async () => {
      fire.cancel();
      await w.close();
    },
  };
}

/**
 * /run/netns entries appearing and disappearing. The directory may not exist yet
 * (no named namespace so far); chokidar then waits for it to appear.
 */
export async function watchNetnsDir(dir: string, onChange: () => void, opts: { debounceMs?: number; onError?: (e: Error) => void } = {}): Promise<Watcher> {
  const fire = debounce(opts.debounceMs ?? 20, onChange);
  const w = watch(dir, { ignoreInitial: true, followSymlinks: false, depth: 0, atomic: false, persistent: true });
  w.on('all', () => fire());
  w.on('error', (e) => opts.onError?.(e as Error));
  await ready(w);
  return {
    close: async () => {
      fire.cancel();
      await w.close();
    },
  };
}
