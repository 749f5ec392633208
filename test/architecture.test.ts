// The folders of src/ form layers: a folder may use the ones below it, never one
// that uses it back. This builds the folder-level import graph from the sources
// (value and type imports alike: a type import is a dependency on the shape) and
// fails on any cycle, naming the files that close it.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const SRC = resolve(import.meta.dirname, '../src');

/**
 * Cycles that remain only through files owned elsewhere, each to be removed
 * when that work lands. core <-> config: the core's shapes use the config
 * types (z.infer of the schema), while the config loader and merge use core
 * helpers (glob, address, flags, names); the way out is a types-only module
 * below both.
 */
const KNOWN_CYCLES: string[][] = [['config', 'core']];

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

  it('the folder import graph of src/ has no cycle beyond the known ones', () => {
    const found = cycles(g);
    const explain = (scc: string[]) =>
      scc.flatMap((a) => scc.filter((b) => g.get(a)?.has(b)).map((b) => `${a} -> ${b}: ${[...new Set(g.get(a)!.get(b))].join(', ')}`)).join('\n');
    const unknown = found.filter((c) => !KNOWN_CYCLES.some((k) => k.join() === c.join()));
    expect(unknown.map(explain), 'folders that import each other').toEqual([]);
    // A known cycle that is gone must leave the list, so that it cannot come back unnoticed.
    const stale = KNOWN_CYCLES.filter((k) => !found.some((c) => c.join() === k.join()));
    expect(stale, 'known cycles that no longer exist: remove them from KNOWN_CYCLES').toEqual([]);
  });

  it('the kernel layer takes its name checks from the pure core, not from the config format', () => {
    const offenders = [...new Set(g.get('kernel')?.get('config') ?? [])].filter((f) =>
      (readFileSync(join(SRC, f), 'utf8').match(/import[^;]*from '\.\.\/config\/[^']+'/g) ?? []).some((imp) => /NameProblem|PatternProblem/.test(imp)),
    );
    expect(offenders).toEqual([]);
  });
});
