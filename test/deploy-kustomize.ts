// The part of kustomize that deploy/kubernetes uses, so the tests can check the
// overlays' output without a kustomize binary (none is published on npm and
// nothing may be downloaded). Any kustomization field outside this subset is an
// error, so a manifest change that this emulation does not understand fails the
// tests instead of being silently ignored.
import { readFileSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import jsonpatch from 'fast-json-patch';
import { parseAllDocuments } from 'yaml';

export type Resource = {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  [key: string]: unknown;
};

const KNOWN_FIELDS = new Set([
  'apiVersion',
  'kind',
  'namespace',
  'resources',
  'configMapGenerator',
  'generatorOptions',
  'patches',
]);

// Kinds of this repo's manifests that are not namespaced.
const CLUSTER_SCOPED = new Set(['Namespace']);

interface PatchTarget {
  group?: string;
  version?: string;
  kind?: string;
  name?: string;
}

/** Every YAML document of a file, each parsed strictly (duplicate keys fail). */
export function readYamlDocuments(file: string): unknown[] {
  const docs = parseAllDocuments(readFileSync(file, 'utf8'), { uniqueKeys: true, prettyErrors: true });
  return docs.map((d) => {
    if (d.errors.length > 0) throw new Error(`${file}: ${d.errors.map((e) => e.message).join('; ')}`);
    return d.toJS();
  });
}

function matches(target: PatchTarget, r: Resource): boolean {
  const [group, version] = r.apiVersion.includes('/') ? r.apiVersion.split('/') : ['', r.apiVersion];
  return (
    (target.group === undefined || target.group === group) &&
    (target.version === undefined || target.version === version) &&
    (target.kind === undefined || target.kind === r.kind) &&
    (target.name === undefined || target.name === r.metadata.name)
  );
}

/** Builds a kustomization directory the way `kustomize build DIR` would. */
export function build(dir: string): Resource[] {
  const k = readYamlDocuments(join(dir, 'kustomization.yaml'))[0] as Record<string, unknown>;
  for (const key of Object.keys(k)) {
    if (!KNOWN_FIELDS.has(key)) throw new Error(`${dir}/kustomization.yaml: field "${key}" is not supported by the test build`);
  }
  if (k.kind !== 'Kustomization') throw new Error(`${dir}/kustomization.yaml: kind is ${String(k.kind)}`);

  const out: Resource[] = [];
  for (const entry of (k.resources as string[] | undefined) ?? []) {
    const p = resolve(dir, entry);
    if (statSync(p).isDirectory()) out.push(...build(p));
    else out.push(...(readYamlDocuments(p) as Resource[]));
  }

  const generatorOptions = (k.generatorOptions ?? {}) as { disableNameSuffixHash?: boolean };
  for (const g of (k.configMapGenerator as Array<Record<string, unknown>> | undefined) ?? []) {
    if (generatorOptions.disableNameSuffixHash !== true) {
      throw new Error(`${dir}: name-suffix hashes are not emulated; set generatorOptions.disableNameSuffixHash`);
    }
    const data: Record<string, string> = {};
    for (const f of (g.files as string[] | undefined) ?? []) data[basename(f)] = readFileSync(resolve(dir, f), 'utf8');
    const options = (g.options ?? {}) as { labels?: Record<string, string> };
    out.push({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: g.name as string, ...(options.labels ? { labels: options.labels } : {}) },
      data,
    });
  }

  if (typeof k.namespace === 'string') {
    for (const r of out) if (!CLUSTER_SCOPED.has(r.kind)) r.metadata.namespace = k.namespace;
  }

  for (const p of (k.patches as Array<{ target: PatchTarget; patch: string }> | undefined) ?? []) {
    const ops = parsePatch(p.patch);
    const hits = out.filter((r) => matches(p.target, r));
    if (hits.length === 0) throw new Error(`${dir}: patch target ${JSON.stringify(p.target)} matches nothing`);
    for (const r of hits) {
      // validate=true makes a failed `test` op (or a bad path) throw, as kustomize fails the build.
      const patched = jsonpatch.applyPatch(r, ops, true, false).newDocument;
      out[out.indexOf(r)] = patched;
    }
  }
  return out;
}

function parsePatch(text: string): jsonpatch.Operation[] {
  const docs = parseAllDocuments(text, { uniqueKeys: true });
  if (docs.length !== 1 || docs[0]!.errors.length > 0) throw new Error('a patch must be one YAML document');
  const ops: unknown = docs[0]!.toJS();
  if (!Array.isArray(ops)) throw new Error('only JSON 6902 patches (a list of operations) are emulated');
  return ops as jsonpatch.Operation[];
}

export function find(resources: Resource[], kind: string, name?: string): Resource {
  const r = resources.find((x) => x.kind === kind && (name === undefined || x.metadata.name === name));
  if (!r) throw new Error(`no ${kind}${name ? ` ${name}` : ''} in the build`);
  return r;
}
