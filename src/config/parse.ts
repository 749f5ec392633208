// Text of one config file -> a valid Config or every problem in it, each
// positioned (file:line:column) through the YAML AST. Pure: the caller reads
// the file. Hostile input (huge, binary, alias bombs, prototype keys, duplicate
// keys) is refused before anything is built from it.
import { CST, isAlias, isMap, isPair, isScalar, isSeq, Lexer, LineCounter, parseDocument, visit } from 'yaml';
import type { Document, Node as YamlNode, Pair } from 'yaml';
import type { z } from 'zod';
import { canonicalAddress } from '../core/address.js';
import { configSchema } from '../core/schema.js';
import { MAX_ENDPOINTS, RP_FILTER_NAMES, rpFilterValue } from '../core/vocabulary.js';
import type { Config, EndpointConfig } from '../core/schema.js';
import type { Diagnostic, Severity } from './diagnostics.js';
import { formatPath } from './diagnostics.js';

/** Larger files are refused unread: a desired-state file is a few KiB. */
export const MAX_FILE_BYTES = 1024 * 1024;
/** Aliases allowed per file; yaml's own expansion check also applies (alias bombs). */
export const MAX_ALIASES = 100;
/**
 * Nesting allowed in a file, as estimated by nestingProblem (an upper bound of
 * the real depth). A config nests about 7 deep; the YAML composer's memory and
 * the recursive steps after it grow with depth, so a hostile file is stopped here.
 */
export const MAX_DEPTH = 64;
/** Keys allowed in one mapping: the largest real one (rpFilter) has one per interface. */
export const MAX_KEYS_PER_MAPPING = 1000;
/** Errors reported per file; the rest of a file full of errors adds nothing but time. */
export const MAX_ERRORS = 100;

/** The tags of YAML's core schema; any other (`!!set`, `!!binary`, `!custom`) changes what a value means. */
const CORE_TAGS = new Set(['str', 'int', 'float', 'bool', 'null', 'map', 'seq'].map((t) => `tag:yaml.org,2002:${t}`));

const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

export interface Position {
  file: string;
  path: string;
  line: number;
  column: number;
  source: string;
  length: number;
}

/** Where one entry of `namespaces` and its endpoints came from. */
export interface EntrySource extends Position {
  endpoints: Position[];
}

export interface ParseResult {
  /** Present only when the file has no errors. */
  config?: Config;
  /** Aligned with config.namespaces. */
  entries?: EntrySource[];
  /** Errors and warnings, sorted by position. */
  diagnostics: Diagnostic[];
}

/** Text positions of one file. */
class Locator {
  readonly lc = new LineCounter();
  constructor(
    readonly file: string,
    readonly text: string,
  ) {}

  lineText(line: number): string {
    const starts = this.lc.lineStarts;
    const start = starts[line - 1] ?? 0;
    const end = starts[line] ?? this.text.length;
    return this.text.slice(start, end).replace(/\r?\n$/, '');
  }

  at(offset: number, end: number | undefined, path: string): Position {
    const { line, col } = this.lc.linePos(Math.max(0, Math.min(offset, this.text.length)));
    const source = this.lineText(line);
    const length = Math.max(1, Math.min((end ?? offset + 1) - offset, source.length - (col - 1)));
    return { file: this.file, path, line, column: col, source, length };
  }

  diag(severity: Severity, code: string, pos: Position, message: string, hint?: string): Diagnostic {
    return { severity, code, file: pos.file, line: pos.line, column: pos.column, path: pos.path, message, hint, source: pos.source, length: pos.length };
  }
}

function wholeFile(file: string, code: string, message: string, hint?: string): Diagnostic {
  return { severity: 'error', code, file, line: 0, column: 0, path: '', message, hint };
}

/** Decodes and size-checks raw bytes; refuses binary garbage. */
export function decodeConfigBytes(bytes: Uint8Array, file: string): { text?: string; diagnostics: Diagnostic[] } {
  if (bytes.byteLength > MAX_FILE_BYTES) {
    return {
      diagnostics: [
        wholeFile(file, 'file-too-large', `the file is ${bytes.byteLength} bytes; at most ${MAX_FILE_BYTES} (1 MiB) are read`, 'split it into several files in a directory and pass the directory to -f'),
      ],
    };
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false }).decode(bytes);
  } catch {
    const at = firstInvalidUtf8(bytes);
    const d = wholeFile(file, 'not-text', 'the file is not UTF-8 text', 'pass a YAML file; is this the right path?');
    // One bad byte in an otherwise text file (a bad copy, a Latin-1 editor) is worth pointing at.
    if (at && at.line <= 1000 && !looksBinary(bytes)) {
      Object.assign(d, at, { message: 'invalid UTF-8 byte: the file must be UTF-8 text', hint: 'retype this character or save the file as UTF-8' });
    }
    return { diagnostics: [d] };
  }
  return { text, diagnostics: [] };
}

/** 1-based line and column (in characters) of the first byte that is not valid UTF-8, and that line. */
function firstInvalidUtf8(bytes: Uint8Array): { line: number; column: number; source: string; length: number } | undefined {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let start = 0;
  for (let line = 1; start <= buf.length; line++) {
    // 0x0a never occurs inside a multi-byte UTF-8 sequence, so lines can be checked alone.
    let end = buf.indexOf(0x0a, start);
    if (end < 0) end = buf.length;
    const raw = buf.subarray(start, end);
    const text = raw.toString('utf8');
    for (let i = text.indexOf('\ufffd'); i >= 0; i = text.indexOf('\ufffd', i + 1)) {
      // The prefix holds no replacement character yet, so its UTF-8 length is the byte offset.
      const off = Buffer.byteLength(text.slice(0, i), 'utf8');
      if (!(raw[off] === 0xef && raw[off + 1] === 0xbf && raw[off + 2] === 0xbd)) return { line, column: i + 1, source: text, length: 1 };
    }
    start = end + 1;
  }
  return undefined;
}

/** Many control bytes: not a text file with one bad character but something else entirely. */
function looksBinary(bytes: Uint8Array): boolean {
  const n = Math.min(bytes.length, 4096);
  let odd = 0;
  for (let i = 0; i < n; i++) {
    const b = bytes[i]!;
    if (b < 0x20 && b !== 0x09 && b !== 0x0a && b !== 0x0d) odd++;
  }
  return odd * 20 > n;
}

/** True when every line is blank or a comment. One pass, no regex: this runs on any input. */
function onlyComments(text: string): boolean {
  let lineStart = true;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x0a) lineStart = true;
    else if (c === 0x20 || c === 0x09 || c === 0x0d) continue;
    else if (lineStart && c === 0x23 /* # */) {
      const nl = text.indexOf('\n', i);
      if (nl < 0) return true;
      i = nl - 1;
      lineStart = false;
    } else return false;
  }
  return true;
}

/**
 * An upper bound of the nesting depth, from yaml's lexer (linear, iterative,
 * and aware of quotes, comments and block scalars), before the document is
 * composed: each open flow collection counts one, each indentation level still
 * open counts two (a key and the list under it may share one), and each block
 * indicator on the line (`- `, `? `, `: `) counts one. Returns the offset where
 * the bound first exceeds MAX_DEPTH.
 */
function nestingProblem(text: string): number | undefined {
  const indents: number[] = [];
  let flow = 0;
  let offset = 0;
  let atLineStart = true;
  let lineIndent = 0;
  let indicators = 0;
  for (const token of new Lexer().lex(text)) {
    const type = CST.tokenType(token);
    // Marker tokens (document mode, scalar start, flow error end) hold no source text.
    const len = type === 'doc-mode' || type === 'flow-error-end' || (type === 'scalar' && token === CST.SCALAR) ? 0 : token.length;
    switch (type) {
      case 'newline':
        atLineStart = true;
        lineIndent = 0;
        indicators = 0;
        break;
      case 'space':
        if (atLineStart) lineIndent = token.length;
        break;
      case 'comment':
      case 'doc-mode':
      case 'byte-order-mark':
        break;
      default: {
        if (atLineStart && len > 0) {
          atLineStart = false;
          if (flow === 0) {
            while (indents.length && indents[indents.length - 1]! > lineIndent) indents.pop();
            if (!indents.length || indents[indents.length - 1]! < lineIndent) indents.push(lineIndent);
          }
        }
        if (type === 'flow-map-start' || type === 'flow-seq-start') flow++;
        else if ((type === 'flow-map-end' || type === 'flow-seq-end') && flow > 0) flow--;
        else if (flow === 0 && (type === 'seq-item-ind' || type === 'explicit-key-ind' || type === 'map-value-ind')) indicators++;
        if (2 * indents.length + indicators + flow > MAX_DEPTH) return offset;
      }
    }
    offset += len;
  }
  return undefined;
}

type Seg = string | number;

interface Found {
  node: YamlNode | null;
  /** The key scalar when the last segment was a map key. */
  key?: YamlNode;
  /** The deepest node reached when the path goes further than the document. */
  parent: YamlNode | null;
  depth: number;
}

function findNode(doc: Document, path: readonly Seg[]): Found {
  let node: YamlNode | null = (doc.contents as YamlNode | null) ?? null;
  let key: YamlNode | undefined;
  let depth = 0;
  for (const seg of path) {
    if (node && isAlias(node)) node = (node.resolve(doc) as YamlNode | undefined) ?? null;
    let next: YamlNode | null | undefined;
    if (typeof seg === 'number' && node && isSeq(node)) {
      next = node.items[seg] as YamlNode | undefined;
      key = undefined;
    } else if (node && isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(seg));
      next = pair ? ((pair.value as YamlNode | null) ?? (pair.key as YamlNode)) : undefined;
      key = pair?.key as YamlNode | undefined;
    }
    if (next === undefined || next === null) return { node: null, parent: node, depth };
    node = next;
    depth++;
  }
  return { node, key, parent: node, depth };
}

function valueAt(root: unknown, path: readonly Seg[]): unknown {
  let v: unknown = root;
  for (const seg of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = Object.prototype.hasOwnProperty.call(v, seg) ? (v as Record<string, unknown>)[seg as string] : undefined;
  }
  return v;
}

function describeValue(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null (an empty value)';
  if (Array.isArray(v)) return 'a list';
  if (v instanceof Uint8Array) return 'binary data';
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v)}`;
  return `${typeof v} ${String(v)}`;
}

const EXPECTED: Record<string, string> = {
  string: 'a string',
  number: 'a number',
  int: 'an integer',
  boolean: 'true or false',
  array: 'a list',
  object: 'a mapping',
};

/** Levenshtein distance, small inputs only (key names). */
function distance(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0]!;
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = prev[j]!;
      prev[j] = Math.min(prev[j]! + 1, prev[j - 1]! + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = tmp;
    }
  }
  return prev[b.length]!;
}

/** Distance where swapping two neighbours counts once (fial -> fail). */
function typoDistance(a: string, b: string): number {
  let d = distance(a, b);
  for (let i = 0; i + 1 < a.length; i++) {
    if (a[i] !== a[i + 1]) {
      const swapped = a.slice(0, i) + a[i + 1] + a[i] + a.slice(i + 2);
      if (swapped === b) d = Math.min(d, 1);
    }
  }
  return d;
}

/** The closest candidate, if it is close enough to be a likely typo (add_addr_accepted -> addAddrAccepted). */
export function didYouMean(input: string, candidates: readonly string[]): string | undefined {
  // Names here are short; a long input is no typo, and typoDistance is quadratic in it.
  if (input.length > 64) return undefined;
  const norm = (s: string) => s.toLowerCase().replace(/[-_\s]/g, '');
  const n = norm(input);
  const exact = candidates.find((c) => norm(c) === n);
  if (exact) return exact;
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    const d = typoDistance(n, norm(c));
    if (d < bestD) {
      best = c;
      bestD = d;
    }
  }
  return best !== undefined && bestD <= Math.max(1, Math.floor(n.length / 3)) ? best : undefined;
}

/** Keys the schema allows at a path (for "did you mean"). */
function keysAt(path: readonly Seg[]): string[] {
  let s: z.ZodType | undefined = configSchema as unknown as z.ZodType;
  const unwrap = (t: z.ZodType | undefined): z.ZodType | undefined => {
    let cur = t;
    while (cur && (cur._zod.def.type === 'optional' || cur._zod.def.type === 'nullable' || cur._zod.def.type === 'default')) {
      cur = (cur._zod.def as unknown as { innerType: z.ZodType }).innerType;
    }
    return cur;
  };
  for (const seg of path) {
    s = unwrap(s);
    if (!s) return [];
    const def = s._zod.def as unknown as { type: string; shape?: Record<string, z.ZodType>; element?: z.ZodType; valueType?: z.ZodType };
    if (def.type === 'object') s = def.shape?.[seg as string];
    else if (def.type === 'array') s = def.element;
    else if (def.type === 'record') s = def.valueType;
    else return [];
  }
  s = unwrap(s);
  const def = s?._zod.def as unknown as { type: string; shape?: Record<string, unknown> } | undefined;
  return def?.type === 'object' && def.shape ? Object.keys(def.shape) : [];
}

const MISSING_HINTS: Record<string, string> = {
  version: 'add `version: 1` at the top of the file',
  namespaces: 'add `namespaces:` with a list of entries, e.g. `- netns: host`',
  netns: 'add `netns: host` (the reconciler\'s own namespace), a name from /run/netns, or a glob',
};

const RANGE_HINTS: Record<string, string> = {
  id: 'kernel endpoint ids are 1..255; leave `id` out to let the kernel pick one',
  port: 'ports are 1..65535; leave `port` out for an endpoint without one',
  subflows: 'the kernel allows 0..8 (larger values get "limit greater than maximum (8)")',
  addAddrAccepted: 'the kernel allows 0..8 (larger values get "limit greater than maximum (8)")',
};

function issueToDiagnostic(issue: z.core.$ZodIssue, doc: Document, js: unknown, loc: Locator): Diagnostic[] {
  const path = issue.path.filter((p): p is Seg => typeof p === 'string' || typeof p === 'number');
  const last = path[path.length - 1];
  const value = valueAt(js, path);
  const posOf = (segs: readonly Seg[], preferKey = false) => {
    const f = findNode(doc, segs);
    const target = preferKey && f.key ? f.key : f.node ?? f.parent;
    const r = target?.range;
    // A whole mapping or list is underlined only on its first line.
    return r ? loc.at(r[0], r[1], formatPath(segs)) : loc.at(0, 1, formatPath(segs));
  };
  const out: Diagnostic[] = [];
  switch (issue.code) {
    case 'unrecognized_keys': {
      const known = keysAt(path);
      for (const key of issue.keys) {
        const pos = posOf([...path, key], true);
        const guess = didYouMean(key, known);
        out.push(
          loc.diag(
            'error',
            'unknown-key',
            pos,
            `unknown key \`${key}\``,
            guess ? `did you mean \`${guess}\`?` : known.length ? `allowed keys here: ${known.join(', ')}` : undefined,
          ),
        );
      }
      return out;
    }
    case 'invalid_type': {
      if (value === undefined && last !== undefined && typeof last === 'string') {
        const pos = posOf(path.slice(0, -1));
        out.push(
          loc.diag('error', 'missing-key', { ...pos, path: formatPath(path) }, `missing required key \`${last}\``, MISSING_HINTS[last]),
        );
        return out;
      }
      if (path.length === 0) {
        out.push(
          loc.diag('error', 'wrong-type', posOf([]), `the file must be a mapping with \`version: 1\` and \`namespaces\`, not ${describeValue(value)}`, 'start the file with `version: 1`'),
        );
        return out;
      }
      const want = EXPECTED[issue.expected] ?? issue.expected;
      let hint: string | undefined;
      if (issue.expected === 'array' && typeof value === 'string') hint = `write a list: ${String(last)}: [${value}]`;
      else if (issue.expected === 'boolean' && typeof value === 'string') hint = 'write true or false without quotes';
      else if ((issue.expected === 'number' || issue.expected === 'int') && typeof value === 'string' && /^\d+$/.test(value))
        hint = 'write the number without quotes';
      else if (issue.expected === 'string' && typeof value === 'number') hint = 'quote the value';
      out.push(loc.diag('error', 'wrong-type', posOf(path), `expected ${want}, got ${describeValue(value)}`, hint));
      return out;
    }
    case 'invalid_value': {
      if (value === undefined && typeof last === 'string') {
        const pos = posOf(path.slice(0, -1));
        out.push(loc.diag('error', 'missing-key', { ...pos, path: formatPath(path) }, `missing required key \`${last}\``, MISSING_HINTS[last]));
        return out;
      }
      if (path.length === 1 && last === 'version') {
        out.push(loc.diag('error', 'unsupported-version', posOf(path), `unsupported version ${describeValue(value)}`, 'this reconciler reads `version: 1`'));
        return out;
      }
      const options = issue.values.map((v) => String(v));
      const guess = typeof value === 'string' ? didYouMean(value, options) : undefined;
      out.push(
        loc.diag(
          'error',
          'invalid-value',
          posOf(path),
          `${describeValue(value)} is not one of: ${options.join(', ')}`,
          guess ? `did you mean \`${guess}\`?` : undefined,
        ),
      );
      return out;
    }
    case 'too_big':
    case 'too_small': {
      const pos = posOf(path);
      if (issue.origin === 'string') {
        out.push(loc.diag('error', 'out-of-range', pos, issue.code === 'too_small' ? 'must not be empty' : `is longer than ${String((issue as { maximum: unknown }).maximum)} characters`));
        return out;
      }
      const min = (issue as { minimum?: unknown }).minimum;
      const max = (issue as { maximum?: unknown }).maximum;
      const bound = issue.code === 'too_big' ? `at most ${String(max)}` : `at least ${String(min)}`;
      out.push(
        loc.diag('error', 'out-of-range', pos, `${describeValue(value)} is out of range: must be ${bound}`, typeof last === 'string' ? RANGE_HINTS[last] : undefined),
      );
      return out;
    }
    case 'custom': {
      const params = (issue.params ?? {}) as { hint?: string; code?: string };
      out.push(loc.diag('error', params.code ?? 'invalid', posOf(path), issue.message, params.hint));
      return out;
    }
    case 'invalid_key': {
      const inner = issue.issues[0];
      const params = ((inner as { params?: unknown } | undefined)?.params ?? {}) as { hint?: string };
      out.push(loc.diag('error', 'invalid-key', posOf(path, true), inner?.message ?? issue.message, params.hint));
      return out;
    }
    case 'invalid_union': {
      const hint = typeof value === 'string' ? didYouMean(value, RP_FILTER_NAMES) : undefined;
      out.push(loc.diag('error', 'invalid-value', posOf(path), `${issue.message}, not ${describeValue(value)}`, hint ? `did you mean \`${hint}\`?` : undefined));
      return out;
    }
    default:
      out.push(loc.diag('error', 'invalid', posOf(path), issue.message));
      return out;
  }
}

function yamlErrorHint(code: string): string | undefined {
  switch (code) {
    case 'DUPLICATE_KEY':
      return 'remove one of them; YAML keeps only one and the other would be silently lost';
    case 'MULTIPLE_DOCS':
      return 'put one document per file (split them into several files of a directory)';
    case 'TAG_RESOLVE_FAILED':
      return 'remove the tag; this format uses plain YAML values';
    case 'BAD_INDENT':
    case 'MISSING_CHAR':
      return 'check the indentation: list items under a key are indented by the same amount';
    default:
      return undefined;
  }
}

function entryPosition(doc: Document, loc: Locator, segs: Seg[]): Position {
  const f = findNode(doc, segs);
  const r = f.node?.range;
  return r ? loc.at(r[0], r[1], formatPath(segs)) : loc.at(0, 1, formatPath(segs));
}

/** Identity of an endpoint for merging: (address, port), or (dev, port) for an address-less one. */
export function endpointIdentity(ep: EndpointConfig): string {
  return ep.address !== undefined ? `addr|${canonicalAddress(ep.address)}|${ep.port ?? ''}` : `dev|${ep.dev ?? ''}|${ep.port ?? ''}`;
}

export function describeEndpoint(ep: EndpointConfig): string {
  const what = ep.address !== undefined ? ep.address : `dev ${ep.dev ?? '?'}`;
  return ep.port !== undefined ? `${what} port ${ep.port}` : what;
}

/** Rules within one entry, independent of node and namespace. */
function entryChecks(config: Config, entries: EntrySource[]): Diagnostic[] {
  const out: Diagnostic[] = [];
  const d = (severity: Severity, code: string, pos: Position, message: string, hint?: string): Diagnostic => ({
    severity, code, file: pos.file, line: pos.line, column: pos.column, path: pos.path, message, hint, source: pos.source, length: pos.length,
  });
  config.namespaces.forEach((entry, i) => {
    const src = entries[i]!;
    if (entry.nodes && entry.nodes.length === 0) {
      out.push(d('warning', 'matches-no-node', src, '`nodes: []` matches no node, so this entry never applies', 'remove `nodes` to apply it on every node'));
    }
    const eps = entry.endpoints ?? [];
    if (entry.mptcp?.pathManager === 'userspace' && eps.length > 0) {
      out.push(
        d('warning', 'endpoints-unused', src, 'with `pathManager: userspace` the in-kernel path manager does not use these endpoints', 'remove `endpoints`, or use `pathManager: kernel`'),
      );
    }
    const byKey = new Map<string, number>();
    const byId = new Map<number, number>();
    eps.forEach((ep, j) => {
      const pos = src.endpoints[j]!;
      const flags = ep.flags ?? [];
      if (!flags.includes('signal') && !flags.includes('subflow')) {
        out.push(
          d('warning', 'endpoint-does-nothing', pos, `endpoint ${describeEndpoint(ep)} has neither \`signal\` nor \`subflow\`, so the path manager never uses it`, 'add `subflow` (a client opening subflows) or `signal` (a server announcing it)'),
        );
      }
      const key = endpointIdentity(ep);
      const prev = byKey.get(key);
      if (prev !== undefined) {
        out.push(
          d('error', 'duplicate-endpoint', pos, `endpoint ${describeEndpoint(ep)} is declared twice in this entry (also at ${formatPath(['endpoints', prev])}, line ${src.endpoints[prev]!.line})`, 'an endpoint is identified by (address, port), or (dev, port) without address; keep one'),
        );
      } else byKey.set(key, j);
      if (ep.id !== undefined) {
        const prevId = byId.get(ep.id);
        if (prevId !== undefined) {
          out.push(d('error', 'duplicate-id', pos, `id ${ep.id} is already used by ${formatPath(['endpoints', prevId])} (line ${src.endpoints[prevId]!.line})`, 'ids must be unique in a namespace; change one or leave `id` out'));
        } else byId.set(ep.id, j);
      }
      // rp_filter is effectively max(all, IFACE): strict on an endpoint's interface
      // drops the subflows that arrive on another path than the route back.
      const rp = (k: string) => rpFilterValue(entry.rpFilter?.[k]) ?? entry.rpFilter?.[k];
      const ipv4 = ep.address === undefined ? ep.family !== 'ipv6' : !ep.address.includes(':');
      if (ep.dev !== undefined && ipv4 && Math.max(Number(rp('all') ?? 0), Number(rp(ep.dev) ?? 0)) === 1) {
        out.push(
          d('warning', 'strict-rp-filter-on-endpoint', pos, `endpoint ${describeEndpoint(ep)} is on ${ep.dev}, whose rp_filter this entry makes strict (effective value max(all, ${ep.dev})): MPTCP subflows arriving on another path are dropped`, `declare \`rpFilter: { ${ep.dev}: loose }\` (loose on the interface or on all wins over strict)`),
        );
      }
      if (j === MAX_ENDPOINTS) {
        out.push(d('error', 'too-many-endpoints', pos, `this entry declares ${eps.length} endpoints; the kernel holds at most ${MAX_ENDPOINTS} per namespace`, 'remove endpoints, or spread them over several namespaces'));
      }
    });
  });
  return out;
}

/** Parses one file. `file` is only used in messages. */
export function parseConfigText(input: string | Uint8Array, file: string): ParseResult {
  let text: string;
  if (typeof input === 'string') {
    if (Buffer.byteLength(input, 'utf8') > MAX_FILE_BYTES) return decodeConfigBytes(Buffer.from(input), file);
    text = input;
  } else {
    const dec = decodeConfigBytes(input, file);
    if (dec.text === undefined) return { diagnostics: dec.diagnostics };
    text = dec.text;
  }
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const nul = text.indexOf('\u0000');
  if (nul >= 0) {
    const before = text.slice(0, nul).split('\n');
    const d = wholeFile(file, 'not-text', 'the file contains NUL bytes: it is not a YAML text file', 'pass a YAML file; is this the right path?');
    return { diagnostics: [{ ...d, line: before.length, column: before[before.length - 1]!.length + 1 }] };
  }
  if (onlyComments(text)) {
    return { diagnostics: [{ ...wholeFile(file, 'empty', 'the file is empty', 'start it with `version: 1` and a `namespaces:` list'), line: 1, column: 1 }] };
  }

  const loc = new Locator(file, text);
  const deep = nestingProblem(text);
  if (deep !== undefined) {
    // The parser fills the line table; this file never reaches it, so the lines up to `deep` are counted here.
    loc.lc.addNewLine(0);
    for (let nl = text.indexOf('\n'); nl >= 0; nl = text.indexOf('\n', nl + 1)) {
      loc.lc.addNewLine(nl + 1);
      if (nl >= deep) break;
    }
    return { diagnostics: [loc.diag('error', 'too-deep', loc.at(deep, deep + 1, ''), `the document nests more than ${MAX_DEPTH} levels deep here`, 'a config nests a few levels (namespaces, an entry, endpoints, flags): check the brackets and indentation')] };
  }
  // Duplicate keys are found below with one set per mapping: yaml's own check
  // (uniqueKeys) compares each key with every earlier one, quadratic in a mapping's size.
  const doc = parseDocument(text, { lineCounter: loc.lc, prettyErrors: false, uniqueKeys: false, schema: 'core', merge: false });
  const diags: Diagnostic[] = [];
  for (const e of [...doc.errors, ...doc.warnings]) {
    if (diags.length >= MAX_ERRORS) break;
    const message = e.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
    diags.push(loc.diag('error', `yaml-${e.code.toLowerCase().replace(/_/g, '-')}`, loc.at(e.pos[0], e.pos[1], ''), message, yamlErrorHint(e.code)));
  }
  if (diags.length) return { diagnostics: diags };

  // Before anything is built from the document: keys that reach the object
  // prototype, keys that are not plain names, too many aliases.
  let aliases = 0;
  const pathOf = (ancestors: readonly unknown[]): Seg[] => {
    const segs: Seg[] = [];
    for (let i = 1; i < ancestors.length; i++) {
      const a = ancestors[i];
      const parent = ancestors[i - 1];
      if (isPair(a) && isScalar(a.key)) segs.push(String(a.key.value));
      else if (isSeq(parent)) segs.push(parent.items.indexOf(a as never));
    }
    return segs;
  };
  const tagProblem = (node: YamlNode, ancestors: readonly unknown[]) => {
    if (node.tag === undefined || CORE_TAGS.has(node.tag)) return undefined;
    const r = node.range ?? [0, 1];
    const tag = node.tag.replace(/^tag:yaml\.org,2002:/, '!!');
    diags.push(loc.diag('error', 'unsupported-tag', loc.at(r[0], r[1], formatPath(pathOf(ancestors))), `the tag \`${tag}\` is not supported`, 'remove the tag; this format uses plain YAML values (strings, numbers, true/false, lists, mappings)'));
    return diags.length >= MAX_ERRORS ? visit.BREAK : visit.SKIP;
  };
  visit(doc, {
    Map(_, map, ancestors) {
      const bad = tagProblem(map as YamlNode, ancestors);
      if (bad !== undefined) return bad;
      if (map.items.length > MAX_KEYS_PER_MAPPING) {
        const r = map.range ?? [0, 1];
        diags.push(loc.diag('error', 'too-many-keys', loc.at(r[0], r[1], formatPath(pathOf(ancestors))), `this mapping has ${map.items.length} keys; at most ${MAX_KEYS_PER_MAPPING} are allowed`, 'a config mapping holds a few keys (rpFilter one per interface): is this the right file?'));
        return visit.BREAK;
      }
      const seen = new Set<string>();
      for (const pair of map.items) {
        const key = pair.key as YamlNode | null;
        if (!key || !isScalar(key)) continue;
        const name = String(key.value);
        if (!seen.has(name)) {
          seen.add(name);
          continue;
        }
        const r = key.range ?? [0, 1];
        diags.push(loc.diag('error', 'yaml-duplicate-key', loc.at(r[0], r[1], formatPath(pathOf(ancestors))), `duplicate key \`${name.length > 60 ? `${name.slice(0, 60)}…` : name}\` in this mapping`, yamlErrorHint('DUPLICATE_KEY')));
        if (diags.length >= MAX_ERRORS) return visit.BREAK;
      }
      return undefined;
    },
    Seq(_, seq, ancestors) {
      return tagProblem(seq as YamlNode, ancestors);
    },
    Scalar(_, scalar, ancestors) {
      return tagProblem(scalar as YamlNode, ancestors);
    },
    Pair(_, pair: Pair, ancestors) {
      if (diags.length >= MAX_ERRORS) return visit.BREAK;
      const key = pair.key as YamlNode | null;
      const r = key?.range ?? (pair.value as YamlNode | null)?.range ?? [0, 1];
      // The path is computed only for a problem: it costs a scan of each list on the way.
      if (!key || !isScalar(key) || (typeof key.value !== 'string' && typeof key.value !== 'number')) {
        diags.push(loc.diag('error', 'bad-key', loc.at(r[0], r[1], formatPath(pathOf(ancestors))), 'keys must be plain names', 'write `name: value`'));
        return visit.SKIP;
      }
      if (typeof key.value === 'string' && FORBIDDEN_KEYS.has(key.value)) {
        diags.push(loc.diag('error', 'forbidden-key', loc.at(r[0], r[1], formatPath([...pathOf(ancestors), key.value])), `the key \`${key.value}\` is not allowed`, 'remove it; no key of this format has that name'));
        return visit.SKIP;
      }
      return undefined;
    },
    Alias(_, node) {
      aliases++;
      if (aliases === MAX_ALIASES + 1) {
        const r = node.range ?? [0, 1];
        diags.push(loc.diag('error', 'too-many-aliases', loc.at(r[0], r[1], ''), `more than ${MAX_ALIASES} YAML aliases`, 'write the values out; a desired-state file needs few or no aliases'));
      }
    },
  });
  if (diags.length) return { diagnostics: diags };

  let js: unknown;
  try {
    js = doc.toJS({ maxAliasCount: MAX_ALIASES });
  } catch (err) {
    let first: YamlNode | undefined;
    visit(doc, { Alias(_, n) { first ??= n; return visit.BREAK; } });
    const r = first?.range ?? [0, 1];
    const message = err instanceof ReferenceError ? 'YAML aliases expand too much (an alias bomb?)' : `cannot read the document: ${(err as Error).message}`;
    return { diagnostics: [loc.diag('error', 'alias-expansion', loc.at(r[0], r[1], ''), message, 'write the values out instead of nesting aliases')] };
  }

  const parsed = configSchema.safeParse(js);
  if (!parsed.success) {
    // Each issue is positioned by a walk of the document: bounded, so a file with an error per line stays linear.
    for (const issue of parsed.error.issues.slice(0, MAX_ERRORS)) diags.push(...issueToDiagnostic(issue, doc, js, loc));
    // `namespace:` already says "did you mean `namespaces`?"; "missing `namespaces`" would be noise.
    const parentPath = (p: string) => p.slice(0, Math.max(p.lastIndexOf('.'), p.lastIndexOf('[')) + 1);
    const suggested = new Set(diags.filter((x) => x.code === 'unknown-key' && x.hint?.startsWith('did you mean')).map((x) => `${parentPath(x.path)}${/`(.+)`/.exec(x.hint!)?.[1]}`));
    return { diagnostics: diags.filter((x) => !(x.code === 'missing-key' && suggested.has(x.path))) };
  }
  const config = parsed.data;
  const entries: EntrySource[] = config.namespaces.map((entry, i) => ({
    ...entryPosition(doc, loc, ['namespaces', i]),
    endpoints: (entry.endpoints ?? []).map((_, j) => entryPosition(doc, loc, ['namespaces', i, 'endpoints', j])),
  }));
  diags.push(...entryChecks(config, entries));
  const hasError = diags.some((x) => x.severity === 'error');
  return hasError ? { diagnostics: diags } : { config, entries, diagnostics: diags };
}
