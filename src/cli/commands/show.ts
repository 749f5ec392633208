// `show [--netns GLOB] [-o yaml|json]`: the live state. YAML is the config format
// and valid input for `apply` (what the format cannot say goes into comments);
// JSON is the full snapshot that `plan --live` reads (parseLiveSnapshot).
import { hostname } from 'node:os';
import YAML, { type YAMLMap, type YAMLSeq } from 'yaml';
import { netnsPatternProblem } from '../../core/schema.js';
import { type ShownNamespace, liveToConfig, toLiveSnapshot } from '../../core/live-to-config.js';
import type { KernelCapabilities, LiveNamespace } from '../../core/model.js';
import { KernelError } from '../../kernel/api.js';
import { describeCapabilities, probeCapabilities } from '../../kernel/capabilities.js';
import { closeAllNamespaces, openNamespace } from '../../kernel/namespace.js';
import { listNamespaces, selectNamespaces } from '../../kernel/netns.js';
import type { CliIO } from '../io.js';
import { UsageError } from '../io.js';

export { parseLiveSnapshot } from '../../core/live-to-config.js';

export interface ShowOptions {
  netns?: string;
  output?: 'yaml' | 'json';
}

export async function run(opts: Record<string, unknown>, io: CliIO): Promise<number> {
  const o = opts as ShowOptions;
  const pattern = o.netns;
  if (pattern !== undefined) {
    const p = netnsPatternProblem(pattern);
    if (p) throw new UsageError(`--netns "${pattern}" ${p}`);
  }
  const all = listNamespaces();
  const names = selectNamespaces(pattern, all);
  if (names.length === 0) {
    const some = all.length > 10 ? `${all.slice(0, 10).join(', ')}, ...` : all.join(', ');
    throw new UsageError(`no namespace matches --netns "${pattern}" (there are: ${some}; "host" matches only itself)`);
  }
  const node = io.env.NODE_NAME || hostname();
  const lives: LiveNamespace[] = [];
  const caps: KernelCapabilities[] = [];
  let failed = 0;
  try {
    for (const name of names) {
      try {
        // A snapshot carries every rule (plan --live plans source routing from it); the YAML shows only the tool's own.
        lives.push(await openNamespace(name).readLive({ routing: o.output === 'json' ? { tables: [] } : 'owned' }));
        caps.push(probeCapabilities(name));
      } catch (e) {
        if (!(e instanceof KernelError)) throw e;
        io.stderr.write(`error: ${e.message}\n`);
        failed++;
      }
    }
  } finally {
    closeAllNamespaces();
  }
  if (o.output === 'json') {
    const doc = toLiveSnapshot(node, lives) as { namespaces: Record<string, unknown>[] };
    // Extra key: plan --live ignores it (the snapshot's kernel is not this one).
    doc.namespaces.forEach((n, i) => (n.capabilities = caps[i]));
    io.stdout.write(`${JSON.stringify(doc, null, 2)}\n`);
  } else io.stdout.write(renderYaml(node, lives.map(liveToConfig), caps));
  return failed ? 1 : 0;
}

export function renderYaml(node: string, shown: ShownNamespace[], caps: KernelCapabilities[] = []): string {
  const doc = new YAML.Document({ version: 1, namespaces: shown.map((s) => s.entry) });
  doc.commentBefore = ` live state of node ${node} (mptcp-reconciler show)`;
  shown.forEach((s, i) => {
    const seq = doc.getIn(['namespaces', i, 'endpoints']) as YAMLSeq | undefined;
    if (seq) {
      let item = 0;
      const implicit: string[] = [];
      for (const ep of s.endpoints) {
        if (ep.implicit || ep.refused !== undefined) {
          const flow = YAML.stringify(ep.config, { collectionStyle: 'flow' }).trim();
          const what = ep.implicit ? 'implicit (created by the kernel, never pruned)' : `not valid config (${ep.refused})`;
          implicit.push(` ${what}: ${flow}${ep.notes.length ? `; ${ep.notes.join('; ')}` : ''}`);
          continue;
        }
        const node = seq.items[item++] as YAMLMap;
        if (ep.notes.length) node.commentBefore = ep.notes.map((n) => ` ${n}`).join('\n');
        const flags = node.get('flags', true) as YAMLSeq | undefined;
        if (flags) flags.flow = true;
      }
      if (implicit.length) seq.comment = implicit.join('\n');
    }
    const c = caps[i];
    const notes = [...(c ? [describeCapabilities(c)] : []), ...s.notes];
    if (notes.length) {
      (doc.getIn(['namespaces', i]) as YAMLMap).comment = notes.map((n) => ` ${n}`).join('\n');
    }
  });
  return doc.toString();
}
