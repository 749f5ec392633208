// Reading configuration below a configurable root without ever leaving it:
// names from readdir are still checked, and a file whose real path (after
// symlinks) is outside the root is skipped and reported, never read.
//
// A manager's own files are read through its root, <procRoot>/PID/root (the
// "jail"), which shows its mount namespace. realpath() must not be used there:
// it turns the magic link into "/" and so reads the tool's own /etc instead.
// Symlinks are resolved by hand as the manager would see them: an absolute
// target starts again at the jail, ".." stops at it.
import { constants } from 'node:fs';
import { lstat, readdir, readFile, readlink, realpath } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';

export interface UnderOptions {
  /** The process root the files belong to (e.g. /proc/PID/root); `root` lies below it. */
  jail?: string;
}

export type ReadOutcome =
  | { ok: true; path: string; text: string }
  | { ok: false; path: string; reason: 'missing' | 'unreadable' | 'outside-root' | 'not-a-file'; error?: string };

/** A single path component from readdir or a caller: no separator, not "." or "..", no NUL. */
export function isSafeName(name: string): boolean {
  return name.length > 0 && name !== '.' && name !== '..' && !name.includes('/') && !name.includes('\0');
}

async function realRoot(root: string): Promise<string | undefined> {
  try {
    return await realpath(root);
  } catch {
    return undefined;
  }
}

function within(real: string, rootReal: string): boolean {
  return real === rootReal || real.startsWith(rootReal.endsWith(sep) ? rootReal : rootReal + sep);
}

const MAX_LINKS = 40; // the kernel's limit on symlinks in one lookup

type Resolved = { ok: true; real: string } | { ok: false; reason: 'missing' | 'unreadable'; error?: string };

/** `parts` below `jail`, every symlink resolved as a process whose root is `jail` would. */
async function resolveInJail(jail: string, parts: readonly string[]): Promise<Resolved> {
  const done: string[] = [];
  const todo = [...parts];
  let links = 0;
  while (todo.length > 0) {
    const c = todo.shift()!;
    if (c === '' || c === '.') continue;
    if (c === '..') {
      done.pop();
      continue;
    }
    const p = join(jail, ...done, c);
    let isLink: boolean;
    try {
      isLink = (await lstat(p)).isSymbolicLink();
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return { ok: false, reason: 'missing' };
      return { ok: false, reason: 'unreadable', error: code ?? String(e) };
    }
    if (!isLink) {
      done.push(c);
      continue;
    }
    if (++links > MAX_LINKS) return { ok: false, reason: 'unreadable', error: 'ELOOP' };
    const target = await readlink(p);
    if (target.startsWith('/')) done.length = 0;
    todo.unshift(...target.split('/'));
  }
  return { ok: true, real: join(jail, ...done) };
}

function jailParts(jail: string, root: string, parts: readonly string[]): string[] {
  return [...relative(jail, root).split(sep).filter(Boolean), ...parts];
}

async function readResolved(path: string, real: string): Promise<ReadOutcome> {
  try {
    // O_NOFOLLOW: the last component was checked not to be a link; keep it so.
    return { ok: true, path, text: await readFile(real, { encoding: 'utf8', flag: constants.O_RDONLY | constants.O_NOFOLLOW }) };
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EISDIR') return { ok: false, path, reason: 'not-a-file' };
    if (code === 'ENOENT') return { ok: false, path, reason: 'missing' };
    return { ok: false, path, reason: 'unreadable', error: code ?? String(e) };
  }
}

/** Reads `root/...parts`; every part must be a safe name; the real path must stay under root (or the jail). */
export async function readUnder(root: string, parts: readonly string[], o: UnderOptions = {}): Promise<ReadOutcome> {
  const path = join(root, ...parts);
  if (!parts.every(isSafeName)) return { ok: false, path, reason: 'outside-root' };
  if (o.jail !== undefined) {
    const r = await resolveInJail(o.jail, jailParts(o.jail, root, parts));
    if (!r.ok) return { ok: false, path, reason: r.reason, ...(r.error ? { error: r.error } : {}) };
    return readResolved(path, r.real);
  }
  const rootReal = await realRoot(root);
  if (rootReal === undefined) return { ok: false, path, reason: 'missing' };
  let real: string;
  try {
    real = await realpath(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return { ok: false, path, reason: 'missing' };
    return { ok: false, path, reason: 'unreadable', error: code ?? String(e) };
  }
  if (!within(real, rootReal)) return { ok: false, path, reason: 'outside-root' };
  try {
    return { ok: true, path, text: await readFile(real, 'utf8') };
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EISDIR') return { ok: false, path, reason: 'not-a-file' };
    if (code === 'ENOENT') return { ok: false, path, reason: 'missing' };
    return { ok: false, path, reason: 'unreadable', error: code ?? String(e) };
  }
}

/** Names in `root/...parts` ending in `suffix`, sorted bytewise (NetworkManager's order); [] when absent. */
export async function listUnder(root: string, parts: readonly string[], suffix: string, o: UnderOptions = {}): Promise<string[]> {
  if (!parts.every(isSafeName)) return [];
  let dir = join(root, ...parts);
  if (o.jail !== undefined) {
    const r = await resolveInJail(o.jail, jailParts(o.jail, root, parts));
    if (!r.ok) return [];
    dir = r.real;
  }
  try {
    const names = await readdir(dir);
    return names
      .filter((n) => isSafeName(n) && !n.startsWith('.') && n.endsWith(suffix) && n.length > suffix.length)
      .sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  } catch {
    return [];
  }
}
