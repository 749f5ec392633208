// `-f PATH`: one file, or a directory of *.yaml/*.yml read in lexical order
// (conf.d style). All or nothing: one bad file makes the whole load invalid,
// so a caller never acts on part of a config.
import { createHash } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Diagnostic } from './diagnostics.js';
import { dedupeDiagnostics, hasErrors, sortDiagnostics } from './diagnostics.js';
import { candidateNames, checkMerged } from './merge.js';
import { MAX_FILE_BYTES, parseConfigText } from './parse.js';
import type { EntrySource, ParseResult } from './parse.js';
import type { Config } from './schema.js';

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
    }
  | { ok: false; diagnostics: Diagnostic[]; files: string[] };

export interface LoadOptions {
  /** Check merges for this node only; without it, for every node the file names (a fleet repo in CI). */
  node?: string;
  /** Base for a relative path (the CLI's cwd); messages keep the path as given. */
  cwd?: string;
}

export interface ConfigFileInput {
  file: string;
  content: string | Uint8Array;
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

function parseCached(input: ConfigFileInput): ParseResult {
  const key = `${input.file}\0${createHash('sha256').update(input.content).digest('hex')}`;
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
export function parseConfigFiles(inputs: readonly ConfigFileInput[], opts: { node?: string } = {}): LoadResult {
  const files = inputs.map((f) => f.file);
  const diags: Diagnostic[] = [];
  const config: Config = { version: 1, namespaces: [] };
  const entries: EntrySource[] = [];
  for (const input of inputs) {
    const r = parseCached(input);
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
  return { ok: true, config, files, warnings: all, entries };
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
    default:
      return { code: 'read-error', message: `cannot read it (${e.code ?? e.message})` };
  }
}

const CONFIG_EXT = /\.ya?ml$/;
/** A conf.d directory holds a handful of files; this many already means a wrong -f (e.g. a whole /etc). */
export const MAX_DIR_FILES = 256;
/** All files of a directory together: each is at most MAX_FILE_BYTES, this bounds the sum in memory. */
export const MAX_TOTAL_BYTES = 16 * 1024 * 1024;

/** Reads `path` (a file or a directory of *.yaml/*.yml) and validates it as a whole. */
export async function loadConfig(path: string, opts: LoadOptions = {}): Promise<LoadResult> {
  const abs = resolve(opts.cwd ?? process.cwd(), path);
  let st;
  try {
    st = await stat(abs);
  } catch (err) {
    const m = errnoMessage(err);
    return { ok: false, files: [], diagnostics: [fileDiag(path, m.code, m.message, 'pass a config file or a directory of *.yaml files with -f')] };
  }
  const targets: { file: string; abs: string }[] = [];
  if (st.isDirectory()) {
    let names: string[];
    try {
      names = await readdir(abs);
    } catch (err) {
      const m = errnoMessage(err);
      return { ok: false, files: [], diagnostics: [fileDiag(path, m.code, m.message)] };
    }
    // Hidden names are skipped: editor swap files, and Kubernetes' `..data`
    // directory whose files are also linked as the visible names.
    names = names.filter((n) => CONFIG_EXT.test(n) && !n.startsWith('.')).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    for (const n of names) targets.push({ file: join(path, n), abs: join(abs, n) });
    if (targets.length === 0) {
      return { ok: false, files: [], diagnostics: [fileDiag(path, 'no-files', 'the directory has no *.yaml or *.yml files', 'add a config file, or pass a file with -f')] };
    }
    if (targets.length > MAX_DIR_FILES) {
      return {
        ok: false,
        files: [],
        diagnostics: [fileDiag(path, 'too-many-files', `the directory has ${targets.length} *.yaml/*.yml files; at most ${MAX_DIR_FILES} are read`, 'merge files, or pass the directory meant for this config')],
      };
    }
  } else {
    targets.push({ file: path, abs });
  }

  const inputs: ConfigFileInput[] = [];
  const diags: Diagnostic[] = [];
  let total = 0;
  for (const t of targets) {
    try {
      const s = await stat(t.abs);
      if (!s.isFile()) {
        diags.push(fileDiag(t.file, 'not-a-file', 'is not a regular file', 'pass a YAML file or a directory of them'));
        continue;
      }
      // Refused before reading: a huge file never reaches memory.
      if (s.size > MAX_FILE_BYTES) {
        diags.push(fileDiag(t.file, 'file-too-large', `the file is ${s.size} bytes; at most ${MAX_FILE_BYTES} (1 MiB) are read`, 'split it into several files in a directory and pass the directory to -f'));
        continue;
      }
      total += s.size;
      if (total > MAX_TOTAL_BYTES) {
        diags.push(fileDiag(t.file, 'config-too-large', `the files up to this one hold ${total} bytes; at most ${MAX_TOTAL_BYTES} (16 MiB) are read in all`, 'a desired-state config is a few KiB: pass the directory meant for this config'));
        break;
      }
      inputs.push({ file: t.file, content: await readFile(t.abs) });
    } catch (err) {
      const m = errnoMessage(err);
      diags.push(fileDiag(t.file, m.code, m.message));
    }
  }
  const files = targets.map((t) => t.file);
  const r = parseConfigFiles(inputs, { node: opts.node });
  if (diags.length) {
    const rest = r.ok ? r.warnings : r.diagnostics;
    return { ok: false, files, diagnostics: sortDiagnostics([...diags, ...rest]) };
  }
  return { ...r, files };
}
