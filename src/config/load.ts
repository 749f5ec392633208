// `-f PATH`: one file, or a directory of *.yaml/*.yml read in lexical order
// (conf.d style). All or nothing: one bad file makes the whole load invalid,
// so a caller never acts on part of a config.
//
// Each file is read once, through a descriptor opened before it is looked at
// (non-blocking, so a FIFO swapped in cannot hang the open), checked with fstat
// and read with a cap; the hash a caller reports is made from those same bytes.
import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import { lstat, open, readdir, readlink, realpath, type FileHandle } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Diagnostic } from './diagnostics.js';
import { dedupeDiagnostics, escapeName, hasErrors, sortDiagnostics } from './diagnostics.js';
import { candidateNames, checkMerged } from './merge.js';
import { MAX_FILE_BYTES, parseConfigText } from './parse.js';
import type { EntrySource, ParseResult } from './parse.js';
import type { Config } from '../core/schema.js';

export type LoadResult =
  | {
      ok: true;
      /** Every file's entries, concatenated in load order, as one config. */
      config: Config;
      /** The files read, in load order. */
      files: string[];
      warnings: Diagnostic[];
      /** Positions of config.namespaces[i] and its endpoints, for later diagnostics (checkMerged). */
      entries: EntrySource[];
      /**
       * sha256 (hex) of the very bytes parsed, concatenated in load order: equal
       * hashes mean the same config was read, whatever happened to the files since.
       * Absent when loaded with `once`.
       */
      hash?: string;
    }
  | { ok: false; diagnostics: Diagnostic[]; files: string[] };

export interface LoadOptions {
  /** Check merges for this node only; without it, for every node the file names (a fleet repo in CI). */
  node?: string;
  /** Base for a relative path (the CLI's cwd); messages keep the path as given. */
  cwd?: string;
  /**
   * The caller reads this config once and exits (a one-shot command): no hash
   * and no parse cache, which only a process that reloads uses (~1.5 ms of a
   * `validate`, most of it the first sha256 setting up OpenSSL's digest).
   */
  once?: boolean;
}

export interface ConfigFileInput {
  file: string;
  content: string | Uint8Array;
  /** sha256 (hex) of `content` when the caller has it already. */
  sha256?: string;
}

function fileDiag(file: string, code: string, message: string, hint?: string): Diagnostic {
  return { severity: 'error', code, file, line: 0, column: 0, path: '', message, hint };
}

// The daemon reloads the whole directory on every change, usually with one file
// changed; YAML parsing (~1-3 MB/s) dominates, so a file whose name and bytes
// are unchanged is not parsed again. The config is copied out (callers may
// mutate it); positions and diagnostics are frozen and shared.
const CACHE_MAX = 256;
const parseCache = new Map<string, ParseResult>();

function sha256(content: string | Uint8Array): string {
  return createHash('sha256').update(content).digest('hex');
}

function parseCached(input: ConfigFileInput): ParseResult {
  // Keyed by the bytes parsed (and the name, which appears in positions), never by a path's current content.
  const key = `${input.file}\0${input.sha256 ?? sha256(input.content)}`;
  let r = parseCache.get(key);
  if (r) parseCache.delete(key);
  else r = deepFreeze(parseConfigText(input.content, input.file));
  parseCache.set(key, r);
  if (parseCache.size > CACHE_MAX) parseCache.delete(parseCache.keys().next().value!);
  // JSON is the fastest deep copy of plain data here (about twice structuredClone).
  return { ...r, config: r.config && (JSON.parse(JSON.stringify(r.config)) as Config) };
}

function deepFreeze<T>(v: T): T {
  if (v && typeof v === 'object' && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const x of Object.values(v)) deepFreeze(x);
  }
  return v;
}

/** Combines already-read files (in order) into one result. Pure (memoised by content). */
export function parseConfigFiles(inputs: readonly ConfigFileInput[], opts: { node?: string; once?: boolean } = {}): LoadResult {
  const files = inputs.map((f) => f.file);
  // The documented config hash: the files' bytes concatenated in load order
  // (`cat files | sha256sum` reproduces it in CI).
  let hash: string | undefined;
  if (!opts.once) {
    const whole = createHash('sha256');
    for (const f of inputs) whole.update(f.content);
    hash = whole.digest('hex');
  }
  const diags: Diagnostic[] = [];
  const config: Config = { version: 1, namespaces: [] };
  const entries: EntrySource[] = [];
  for (const input of inputs) {
    const r = opts.once ? parseConfigText(input.content, input.file) : parseCached(input);
    diags.push(...r.diagnostics);
    if (r.config && r.entries) {
      config.namespaces.push(...r.config.namespaces);
      entries.push(...r.entries);
    }
  }
  if (hasErrors(diags)) return { ok: false, diagnostics: sortDiagnostics(diags), files };

  const cand = candidateNames(config);
  for (const node of opts.node !== undefined ? [opts.node] : cand.nodes) {
    diags.push(...checkMerged(config, node, cand.netns, entries));
  }
  const all = sortDiagnostics(dedupeDiagnostics(diags));
  if (hasErrors(all)) return { ok: false, diagnostics: all, files };
  return { ok: true, config, files, warnings: all, entries, ...(hash !== undefined ? { hash } : {}) };
}

function errnoMessage(err: unknown): { code: string; message: string } {
  const e = err as NodeJS.ErrnoException;
  switch (e.code) {
    case 'ENOENT':
      return { code: 'not-found', message: 'no such file or directory' };
    case 'EACCES':
    case 'EPERM':
      return { code: 'permission-denied', message: 'permission denied' };
    case 'EISDIR':
      return { code: 'is-directory', message: 'is a directory' };
    case 'ELOOP':
      return { code: 'changed-while-reading', message: 'became a symlink while being opened (an update in progress?)' };
    default:
      return { code: 'read-error', message: `cannot read it (${e.code ?? e.message})` };
  }
}

const CONFIG_EXT = /\.ya?ml$/;
/** A conf.d directory holds a handful of files; this many already means a wrong -f (e.g. a whole /etc). */
export const MAX_DIR_FILES = 256;
/** All files of a directory together: each is at most MAX_FILE_BYTES, this bounds the sum in memory. */
export const MAX_TOTAL_BYTES = 16 * 1024 * 1024;

/**
 * Never blocks on a FIFO or a terminal, never makes one the controlling terminal.
 * Node adds O_CLOEXEC itself.
 */
const OPEN_FLAGS = constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY;

function kindOf(st: { isFIFO(): boolean; isCharacterDevice(): boolean; isBlockDevice(): boolean; isSocket(): boolean; isDirectory(): boolean }): string {
  if (st.isFIFO()) return 'a FIFO';
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'a device';
  if (st.isSocket()) return 'a socket';
  if (st.isDirectory()) return 'a directory';
  return 'not a regular file';
}

function notAFile(file: string, kind: string): Diagnostic {
  return fileDiag(file, 'not-a-file', `is ${kind}, not a regular file; it was not read`, 'pass a YAML file or a directory of them');
}

/**
 * Reads at most `cap` bytes; `undefined` when there are more. The size fstat
 * gave is only a hint: a file may grow while it is read.
 */
export async function readCapped(fh: FileHandle, cap: number): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let total = 0;
  for (;;) {
    const chunk = Buffer.allocUnsafe(Math.min(64 * 1024, cap + 1 - total));
    const { bytesRead } = await fh.read(chunk, 0, chunk.length, null);
    if (bytesRead === 0) break;
    chunks.push(chunk.subarray(0, bytesRead));
    total += bytesRead;
    if (total > cap) return undefined;
  }
  return Buffer.concat(chunks, total);
}

function tooLarge(file: string, size: number | undefined): Diagnostic {
  const what = size === undefined ? `holds more than ${MAX_FILE_BYTES} bytes` : `is ${size} bytes`;
  return fileDiag(file, 'file-too-large', `the file ${what}; at most ${MAX_FILE_BYTES} (1 MiB) are read`, 'split it into several files in a directory and pass the directory to -f');
}

/** `path` is `root` or below it (both absolute and free of symlinks). */
function inside(path: string, root: string): boolean {
  return path === root || path.startsWith(root === '/' ? '/' : `${root}/`);
}

/** Where an open descriptor really points (Linux). `undefined` without /proc. */
async function openedPath(fh: FileHandle): Promise<string | undefined> {
  try {
    return await readlink(`/proc/self/fd/${fh.fd}`);
  } catch {
    return undefined;
  }
}

type Opened = { fh: FileHandle } | { diag: Diagnostic };

/**
 * Opens a directory entry. A symlink is followed only when it resolves inside
 * `root` (the directory's real path): the Kubernetes ConfigMap layout
 * (`c.yaml -> ..data/c.yaml`, `..data -> ..2026_x`) stays inside, a committed
 * `zz.yaml -> ~/.aws/credentials` does not and is refused unread, naming the
 * link and its target. What was opened is checked again through the descriptor,
 * so a link swapped in after the check is caught too.
 */
async function openEntry(file: string, abs: string, root: string): Promise<Opened> {
  let target = abs;
  const lst = await lstat(abs);
  if (lst.isSymbolicLink()) {
    const link = await readlink(abs);
    const outside = (where: string) => ({
      diag: fileDiag(
        file,
        'symlink-outside',
        `is a symlink to ${escapeName(link)}${where === link ? '' : ` (${escapeName(where)})`}, outside the config directory ${escapeName(root)}; it was not read`,
        'copy the file into the config directory, or pass it on its own with -f if it is meant',
      ),
    });
    try {
      target = await realpath(abs);
    } catch {
      return { diag: fileDiag(file, 'not-found', `is a symlink to ${escapeName(link)}, which does not exist`, 'fix or remove the link') };
    }
    if (!inside(target, root)) return outside(target);
  } else if (!lst.isFile()) {
    // Never opened: opening some devices has effects of its own.
    return { diag: notAFile(file, kindOf(lst)) };
  }
  const fh = await open(target, OPEN_FLAGS | constants.O_NOFOLLOW);
  const real = await openedPath(fh);
  if (real !== undefined && !inside(real, root)) {
    await fh.close();
    return { diag: fileDiag(file, 'symlink-outside', `resolved to ${escapeName(real)}, outside the config directory ${escapeName(root)}, while being opened; it was not read`, 'a directory on the way was replaced: check the config directory') };
  }
  return { fh };
}

interface Read {
  file: string;
  bytes?: Buffer;
  diag?: Diagnostic;
}

/** fstat of the open descriptor, then a capped read; the descriptor is always closed. */
async function readOpened(file: string, fh: FileHandle, budget: number): Promise<Read> {
  try {
    const st = await fh.stat();
    if (!st.isFile()) return { file, diag: notAFile(file, kindOf(st)) };
    // Refused before reading: a huge file never reaches memory.
    if (st.size > MAX_FILE_BYTES) return { file, diag: tooLarge(file, st.size) };
    if (st.size > budget) return { file, diag: totalTooLarge(file) };
    const bytes = await readCapped(fh, Math.min(MAX_FILE_BYTES, budget));
    if (bytes === undefined) return { file, diag: tooLarge(file, undefined) };
    return { file, bytes };
  } finally {
    await fh.close();
  }
}

function totalTooLarge(file: string): Diagnostic {
  return fileDiag(file, 'config-too-large', `the files up to this one hold more than ${MAX_TOTAL_BYTES} bytes; at most ${MAX_TOTAL_BYTES} (16 MiB) are read in all`, 'a desired-state config is a few KiB: pass the directory meant for this config');
}

/** Reads `path` (a file or a directory of *.yaml/*.yml) and validates it as a whole. */
export async function loadConfig(path: string, opts: LoadOptions = {}): Promise<LoadResult> {
  const abs = resolve(opts.cwd ?? process.cwd(), path);
  const shown = escapeName(path);
  // The path the user named is followed even when it is a symlink: they meant it.
  let top: FileHandle;
  try {
    top = await open(abs, OPEN_FLAGS);
  } catch (err) {
    const m = errnoMessage(err);
    return { ok: false, files: [], diagnostics: [fileDiag(shown, m.code, m.message, 'pass a config file or a directory of *.yaml files with -f')] };
  }
  const reads: Read[] = [];
  let files: string[];
  let isDir: boolean;
  try {
    isDir = (await top.stat()).isDirectory();
  } catch (err) {
    await top.close();
    const m = errnoMessage(err);
    return { ok: false, files: [], diagnostics: [fileDiag(shown, m.code, m.message)] };
  }
  if (!isDir) {
    reads.push(await readOpened(shown, top, MAX_TOTAL_BYTES).catch((err: unknown) => ({ file: shown, diag: fileDiag(shown, errnoMessage(err).code, errnoMessage(err).message) })));
    files = [shown];
  } else {
    let names: string[];
    let root: string;
    try {
      // The directory as opened, not as the path reads now.
      root = (await openedPath(top)) ?? (await realpath(abs));
      names = await readdir(root);
    } catch (err) {
      const m = errnoMessage(err);
      return { ok: false, files: [], diagnostics: [fileDiag(shown, m.code, m.message)] };
    } finally {
      await top.close();
    }
    // Hidden names are skipped: editor swap files, and Kubernetes' `..data`
    // directory whose files are also linked as the visible names.
    names = names.filter((n) => CONFIG_EXT.test(n) && !n.startsWith('.')).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    if (names.length === 0) {
      return { ok: false, files: [], diagnostics: [fileDiag(shown, 'no-files', 'the directory has no *.yaml or *.yml files', 'add a config file, or pass a file with -f')] };
    }
    if (names.length > MAX_DIR_FILES) {
      return {
        ok: false,
        files: [],
        diagnostics: [fileDiag(shown, 'too-many-files', `the directory has ${names.length} *.yaml/*.yml files; at most ${MAX_DIR_FILES} are read`, 'merge files, or pass the directory meant for this config')],
      };
    }
    files = names.map((n) => escapeName(join(path, n)));
    let budget = MAX_TOTAL_BYTES;
    for (const [i, n] of names.entries()) {
      const file = files[i]!;
      let r: Read;
      try {
        const o = await openEntry(file, join(root, n), root);
        r = 'diag' in o ? { file, diag: o.diag } : await readOpened(file, o.fh, budget);
      } catch (err) {
        const m = errnoMessage(err);
        r = { file, diag: fileDiag(file, m.code, m.message) };
      }
      reads.push(r);
      if (r.diag?.code === 'config-too-large') break;
      budget -= r.bytes?.length ?? 0;
    }
  }

  const inputs: ConfigFileInput[] = [];
  const diags: Diagnostic[] = [];
  for (const r of reads) {
    if (r.diag) diags.push(r.diag);
    else if (r.bytes) inputs.push({ file: r.file, content: r.bytes, ...(opts.once ? {} : { sha256: sha256(r.bytes) }) });
  }
  const r = parseConfigFiles(inputs, { node: opts.node, once: opts.once === true });
  if (diags.length) {
    const rest = r.ok ? r.warnings : r.diagnostics;
    return { ok: false, files, diagnostics: sortDiagnostics([...diags, ...rest]) };
  }
  return { ...r, files };
}
