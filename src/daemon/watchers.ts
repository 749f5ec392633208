// File-system triggers: the config file or directory, and /run/netns.
//
// Config: editors save by writing a temp file and renaming it over the old one,
// and Kubernetes updates a mounted ConfigMap by renaming a new `..data` symlink
// over the old one (the visible `x.yaml` symlinks never change). Watching the
// file itself misses both, so the directory holding it is watched and any event
// on the file or on a `..`-prefixed entry means "read the config again"; the
// reload compares content hashes, so a spurious trigger costs one read. The
// directory itself may be removed and made again; see watchConfig.
import { type FSWatcher as FsWatcher, statSync, watch as fsWatch } from 'node:fs';
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
  const dirExists = () => {
    try {
      return statSync(dir).isDirectory();
    } catch {
      return false;
    }
  };
  const startWatch = async (): Promise<FSWatcher> => {
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
    return w;
  };

  // A watch dies with its directory: after `rm -rf D; mkdir D` (a checkout, a
  // deploy tool) the new D would never be watched. The parent is watched for D
  // itself (plain inotify, which reports nothing about D's content), and any
  // change to it starts a new watch and reloads once the watch is in place, so
  // a file written before that is not missed.
  let closed = false;
  let w: FSWatcher | undefined = await startWatch();
  let chain: Promise<void> = Promise.resolve();
  const rewatch = (why: string) => {
    chain = chain
      .then(async () => {
        if (closed) return;
        const old = w;
        w = undefined;
        await old?.close();
        if (dirExists()) {
          const nw = await startWatch();
          if (closed) await nw.close();
          else w = nw;
        }
        last = why;
        fire();
      })
      .catch((e: unknown) => opts.onError?.(e as Error));
  };
  let parent: FsWatcher | undefined;
  try {
    const dirName = basename(dir);
    parent = fsWatch(dirname(dir), { persistent: true }, (_event, file) => {
      if (file === null || file === dirName) rewatch(`directory ${dir} replaced`);
    });
    parent.on('error', (e) => opts.onError?.(e));
  } catch (e) {
    // Without the parent (unreadable, or `/`), edits inside the directory are still seen.
    opts.onError?.(e as Error);
  }
  return {
    close: async () => {
      closed = true;
      fire.cancel();
      parent?.close();
      await chain;
      await w?.close();
      w = undefined;
    },
  };
}

/**
 * /run/netns entries appearing and disappearing. Plain inotify (fs.watch), not
 * chokidar: on a node whose pods come and go, chokidar re-read the directory and
 * lstat'ed every entry on each event (hundreds per event), most of an otherwise
 * idle daemon's CPU; the caller lists the directory itself anyway. The directory
 * may not exist yet (no named namespace so far) or be removed: its parent is then
 * watched until it (re)appears.
 */
export async function watchNetnsDir(
  dir: string,
  onChange: (touched: ReadonlySet<string> | undefined) => void,
  opts: { debounceMs?: number; onError?: (e: Error) => void } = {},
): Promise<Watcher> {
  // The entries named by the events since the last call (undefined: unknown, any may
  // have changed), so that a pod starting elsewhere on the node costs the caller a
  // look at that one name, not at every namespace it manages.
  let touched: Set<string> | undefined = new Set();
  const fire = debounce(opts.debounceMs ?? 20, () => {
    const t = touched;
    touched = new Set();
    onChange(t);
  });
  const touch = (file: string | null) => {
    if (file === null) touched = undefined;
    else touched?.add(file);
  };
  const abs = resolve(dir);
  const parent = dirname(abs);
  const name = basename(abs);
  let w: FsWatcher | undefined;
  let closed = false;
  const exists = () => {
    try {
      return statSync(abs).isDirectory();
    } catch {
      return false;
    }
  };
  let retry: NodeJS.Timeout | undefined;
  // A failed watch is tried again a second later (and the caller re-lists then), not in a tight loop.
  const onError = (e: Error) => {
    opts.onError?.(e);
    w?.close();
    w = undefined;
    retry ??= setTimeout(() => {
      retry = undefined;
      rewatch();
      touch(null);
      fire();
    }, 1000);
  };
  function rewatch(): void {
    w?.close();
    w = undefined;
    if (closed) return;
    try {
      if (exists()) {
        w = fsWatch(abs, { persistent: true }, (_event, file) => {
          // The directory itself removed (or replaced): its watch is dead.
          if (!exists()) {
            rewatch();
            touch(null);
          } else touch(file);
          fire();
        });
      } else {
        w = fsWatch(parent, { persistent: true }, (_event, file) => {
          if (file !== null && file !== name) return;
          if (exists()) {
            rewatch();
            touch(null);
            fire();
          }
        });
      }
      w.on('error', onError);
    } catch (e) {
      onError(e as Error);
    }
  }
  rewatch();
  return {
    close: async () => {
      closed = true;
      fire.cancel();
      if (retry) clearTimeout(retry);
      w?.close();
      w = undefined;
    },
  };
}
