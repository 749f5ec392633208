// Reading configuration below a configurable root without ever leaving it:
// names from readdir are still checked, and a file whose real path (after
// symlinks) is outside the root is skipped and reported, never read.
import { readdir, readFile, realpath } from 'node:fs/promises';
import { join, sep } from 'node:path';

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

/** Reads `root/...parts`; every part must be a safe name; the real path must stay under root. */
export async function readUnder(root: string, parts: readonly string[]): Promise<ReadOutcome> {
  const path = join(root, ...parts);
  if (!parts.every(isSafeName)) return { ok: false, path, reason: 'outside-root' };
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
export async function listUnder(root: string, parts: readonly string[], suffix: string): Promise<string[]> {
  if (!parts.every(isSafeName)) return [];
  try {
    const names = await readdir(join(root, ...parts));
    return names
      .filter((n) => isSafeName(n) && !n.startsWith('.') && n.endsWith(suffix) && n.length > suffix.length)
      .sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  } catch {
    return [];
  }
}
