// User-facing problems with a config: where (file:line:column and the key path),
// what is wrong, how to fix it. Printed in the style of eemeli/yaml's pretty
// errors (the source line with a caret under the offending part).

export type Severity = 'error' | 'warning';

export interface Diagnostic {
  severity: Severity;
  /** Stable machine-readable kind, e.g. `unknown-key`, `duplicate-key`, `too-many-endpoints`. */
  code: string;
  /** The file as given (or found in the directory); '' when the problem has no file. */
  file: string;
  /** 1-based; 0 when the problem is about the file as a whole. */
  line: number;
  /** 1-based; 0 when the problem is about the file as a whole. */
  column: number;
  /** Key path inside the file, e.g. `namespaces[0].endpoints[1].flags`; '' for the file itself. */
  path: string;
  message: string;
  hint?: string;
  /** The source line, for the caret excerpt. */
  source?: string;
  /** Characters to underline from `column` (at least 1). */
  length?: number;
}

/** `namespaces[0].endpoints[1].flags` from ['namespaces', 0, 'endpoints', 1, 'flags']. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else {
      const s = String(seg);
      if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(s)) out += out === '' ? s : `.${s}`;
      else out += `[${JSON.stringify(s)}]`;
    }
  }
  return out;
}

export function hasErrors(diags: readonly Diagnostic[]): boolean {
  return diags.some((d) => d.severity === 'error');
}

/** Sorted by file, line, column; stable otherwise. */
export function sortDiagnostics(diags: readonly Diagnostic[]): Diagnostic[] {
  return [...diags].sort(
    (a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : 0) || a.line - b.line || a.column - b.column,
  );
}

/** Drops exact repeats (the same problem found through several node or namespace names). */
export function dedupeDiagnostics(diags: readonly Diagnostic[]): Diagnostic[] {
  const seen = new Set<string>();
  return diags.filter((d) => {
    const k = `${d.severity}|${d.code}|${d.file}|${d.line}|${d.column}|${d.message}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

const ANSI = { red: '\x1b[31m', yellow: '\x1b[33m', bold: '\x1b[1m', dim: '\x1b[2m', cyan: '\x1b[36m', reset: '\x1b[0m' };

// Control characters (binary garbage, escape sequences) must not reach a terminal.
function printable(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g, '\uFFFD');
}

/**
 * A file name or link target as text a terminal shows literally: control
 * characters (escape sequences, newlines) become `\xHH`. Names are bytes the
 * user did not necessarily choose (a directory entry, a link target).
 */
export function escapeName(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

export interface FormatOptions {
  color?: boolean;
}

/**
 * One block per diagnostic:
 *   file.yaml:3:9: error: namespaces[0].endpoints[0].flags: `fullmesh` needs `subflow`
 *      3 |       - flags: [fullmesh]
 *        |         ^^^^^^^^^^
 *     hint: add `subflow` to the flags
 */
export function formatDiagnostics(diags: readonly Diagnostic[], opts: FormatOptions = {}): string {
  const c = (code: keyof typeof ANSI, s: string) => (opts.color ? `${ANSI[code]}${s}${ANSI.reset}` : s);
  const blocks: string[] = [];
  for (const d of diags) {
    const file = escapeName(d.file);
    const where = file ? (d.line > 0 ? `${file}:${d.line}:${d.column}` : file) : '';
    const sev = d.severity === 'error' ? c('red', 'error') : c('yellow', 'warning');
    const head = `${where ? `${c('bold', where)}: ` : ''}${sev}: ${d.path ? `${d.path}: ` : ''}${printable(d.message)}`;
    const lines = [head];
    if (d.source !== undefined && d.line > 0) {
      const num = String(d.line);
      const pad = ' '.repeat(num.length);
      // Tabs keep their width so the caret stays under the right character.
      const src = printable(d.source.length > 200 ? `${d.source.slice(0, 200)}…` : d.source);
      const lead = src.slice(0, Math.max(0, d.column - 1)).replace(/[^\t]/g, ' ');
      const len = Math.max(1, Math.min(d.length ?? 1, src.length - (d.column - 1), 80));
      lines.push(`  ${c('dim', `${num} |`)} ${src}`);
      lines.push(`  ${c('dim', `${pad} |`)} ${lead}${c(d.severity === 'error' ? 'red' : 'yellow', '^'.repeat(len))}`);
    }
    if (d.hint) lines.push(`  ${c('cyan', 'hint')}: ${printable(d.hint)}`);
    blocks.push(lines.join('\n'));
  }
  return blocks.length ? `${blocks.join('\n\n')}\n` : '';
}
