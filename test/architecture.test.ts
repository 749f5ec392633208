// The folders of src/ form layers: a folder may use the ones below it, never one
// that uses it back. This builds the folder-level import graph from the sources
// (value and type imports alike: a type import is a dependency on the shape) and
// fails on any cycle, naming the files that close it. It also keeps functions
// short enough to read in one screen, measured with the TypeScript compiler.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const SRC = resolve(import.meta.dirname, '../src');

/** Longest function body, in lines from its first token to its closing brace. */
const MAX_FUNCTION_LINES = 100;

/**
 * Functions allowed to be longer, as "file:name" -> why. An entry must name a
 * function that is still too long: one that shrinks must leave the list.
 */
const LONG_FUNCTIONS: Record<string, string> = {
  'core/plan.ts:endpointOps':
    'the endpoint diff as numbered steps (match by identity, flags in place, replace, remove, add, name the ids); splitting it scatters one ordering argument',
  'config/parse.ts:parseConfigText':
    'a sequence of guards (size, encoding, YAML limits, aliases, depth, schema), each returning positioned diagnostics; reads top to bottom as the order the checks must run in',
  'config/parse.ts:issueToDiagnostic':
    'one case per zod issue kind, each turning a schema error into file:line:column, what and how to fix; a table in code form',
  'core/source-routing.ts:planSourceRouting':
    'steps in order: per-interface wants, endpoint placement, routes (keep, replace ours, never touch others), rules keyed the same way',
  'conflicts/evidence.ts:buildEvidence':
    'one section per manager (NetworkManager, mptcpd, others, path manager), in the order the report lists them',
  'cli/commands/demo.ts:run':
    'a scripted demo: the steps in the order a person watches them happen',
  'daemon/daemon.ts:startDaemon':
    'wires the roles (config source, registry, scheduler, pass, report) in start order, one call each; the roles themselves live in their own modules',
  'cli/main.ts:build':
    'the command table: one block per subcommand and its flags, in the iproute2-style order of the help text',
  'core/derive.ts:resolveEndpoints':
    'explicit endpoints, then derived ones, then the duplicate-id guard: three numbered passes over the same pending list',
};

/** Every function-like node with a body in src/, as "file:name" and its length in lines. */
function functionLengths(): { key: string; lines: number }[] {
  const out: { key: string; lines: number }[] = [];
  for (const file of sources(SRC)) {
    const sf = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true);
    const rel = relative(SRC, file);
    const nameOf = (n: ts.SignatureDeclaration): string => {
      if (n.name) return n.name.getText(sf);
      const p = n.parent;
      if ((ts.isVariableDeclaration(p) || ts.isPropertyAssignment(p) || ts.isPropertyDeclaration(p)) && p.name) return p.name.getText(sf);
      return `<anonymous at line ${sf.getLineAndCharacterOfPosition(n.getStart(sf)).line + 1}>`;
    };
    const visit = (n: ts.Node): void => {
      if (ts.isFunctionLike(n) && 'body' in n && n.body) {
        const first = sf.getLineAndCharacterOfPosition(n.getStart(sf)).line;
        const last = sf.getLineAndCharacterOfPosition(n.end).line;
        out.push({ key: `${rel}:${nameOf(n)}`, lines: last - first + 1 });
      }
      ts.forEachChild(n, visit);
    };
    visit(sf);
  }
  return out;
}

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return sources(p);
    return e.name.endsWith('.ts') ? [p] : [];
  });
}

/** "kernel" for src/kernel/netns.ts; a file directly in src/ is its own node ("log"). */
function folderOf(file: string): string {
  const rel = relative(SRC, file);
  const parts = rel.split('/');
  return parts.length > 1 ? parts[0]! : parts[0]!.replace(/\.ts$/, '');
}

const IMPORT = /^\s*(?:import|export)\s[^;]*?from\s+'(\.[^']+)'/gms;

/** Folder -> folder -> the files whose imports make the edge. */
function folderGraph(): Map<string, Map<string, string[]>> {
  const g = new Map<string, Map<string, string[]>>();
  for (const file of sources(SRC)) {
    const from = folderOf(file);
    if (!g.has(from)) g.set(from, new Map());
    for (const m of readFileSync(file, 'utf8').matchAll(IMPORT)) {
      const target = resolve(dirname(file), m[1]!).replace(/\.js$/, '.ts');
      if (!target.startsWith(SRC + '/')) continue;
      const to = folderOf(target);
      if (to === from) continue;
      const edges = g.get(from)!;
      edges.set(to, [...(edges.get(to) ?? []), relative(SRC, file)]);
    }
  }
  return g;
}

/** Strongly connected components with more than one folder (Tarjan). */
function cycles(g: Map<string, Map<string, string[]>>): string[][] {
  let index = 0;
  const idx = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const on = new Set<string>();
  const out: string[][] = [];
  const visit = (v: string) => {
    idx.set(v, index);
    low.set(v, index++);
    stack.push(v);
    on.add(v);
    for (const w of g.get(v)?.keys() ?? []) {
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (on.has(w)) low.set(v, Math.min(low.get(v)!, idx.get(w)!));
    }
    if (low.get(v) === idx.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        on.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1) out.push(scc.sort());
    }
  };
  for (const v of g.keys()) if (!idx.has(v)) visit(v);
  return out;
}

describe('architecture', () => {
  const g = folderGraph();

  it('finds the folders and their imports (the graph is not empty by accident)', () => {
    expect([...g.keys()].sort()).toEqual(expect.arrayContaining(['apply', 'config', 'core', 'daemon', 'kernel']));
    expect(g.get('daemon')!.has('apply')).toBe(true);
  });

  it('the folder import graph of src/ has no cycle', () => {
    const explain = (scc: string[]) =>
      scc.flatMap((a) => scc.filter((b) => g.get(a)?.has(b)).map((b) => `${a} -> ${b}: ${[...new Set(g.get(a)!.get(b))].join(', ')}`)).join('\n');
    expect(cycles(g).map(explain), 'folders that import each other').toEqual([]);
  });

  it('the config format sits above the core: the core never imports src/config', () => {
    expect([...new Set(g.get('core')?.get('config') ?? [])]).toEqual([]);
  });

  it('the pure folders do no I/O: src/core not at all, src/config only in the file loader and the hostname default', () => {
    const IO = /from '(node:(fs|fs\/promises|os|child_process|http|https|dgram|worker_threads)|koffi)'/;
    const allowed = new Set(['config/load.ts', 'config/node.ts']);
    const offenders = sources(SRC)
      .map((f) => relative(SRC, f))
      .filter((f) => (f.startsWith('core/') || f.startsWith('config/')) && !allowed.has(f))
      .filter((f) => IO.test(readFileSync(join(SRC, f), 'utf8')));
    expect(offenders).toEqual([]);
    for (const f of allowed) expect(IO.test(readFileSync(join(SRC, f), 'utf8')), `${f} still does I/O (else drop it from the list)`).toBe(true);
  });

  it(`no function in src/ is longer than ${MAX_FUNCTION_LINES} lines unless listed with a reason`, () => {
    const all = functionLengths();
    expect(all.length, 'the compiler walk found the functions').toBeGreaterThan(500);
    const long = all.filter((f) => f.lines > MAX_FUNCTION_LINES);
    const unlisted = long.filter((f) => !(f.key in LONG_FUNCTIONS)).map((f) => `${f.key} (${f.lines} lines)`);
    expect(unlisted, 'split these, or list them in LONG_FUNCTIONS with why they read better whole').toEqual([]);
    const stale = Object.keys(LONG_FUNCTIONS).filter((k) => !long.some((f) => f.key === k));
    expect(stale, 'no longer too long (or renamed): remove from LONG_FUNCTIONS').toEqual([]);
  });

  it('the kernel layer takes its name checks from the pure core, not from the config format', () => {
    const offenders = [...new Set(g.get('kernel')?.get('config') ?? [])].filter((f) =>
      (readFileSync(join(SRC, f), 'utf8').match(/import[^;]*from '\.\.\/config\/[^']+'/g) ?? []).some((imp) => /NameProblem|PatternProblem/.test(imp)),
    );
    expect(offenders).toEqual([]);
  });
});
