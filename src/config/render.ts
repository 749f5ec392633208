// The effective desired state of a node, as a config file (docs/design.md#the-config-contract: "render
// prints the result, so a merge is never a surprise"). Pure.
//
// Layout that keeps resolution identical for every concrete namespace name:
//  1. the glob entries that apply to the node, in their original order, each
//     with only what it declares (a name matched only by globs resolves exactly
//     as before);
//  2. one fully merged entry per literal name (`host`, `ns1`), after every glob:
//     it declares every key its merge has, so it wins over the globs above for
//     that name, and the result equals the original merge.
// Rendering the output again gives the same text.
import { Document, isPair, isScalar, isSeq, visit } from 'yaml';
import { isGlob } from '../core/glob.js';
import { normalizeEndpoint, orderedRpFilter, resolveNamespace, rpFilterName, entryMatchesNode, entryMatchesNetns, resolveRouting } from './merge.js';
import type { Config, NamespaceEntry } from '../core/schema.js';
import { formatDuration, parseDuration } from '../core/duration.js';
import { orderedSourceRouting } from '../core/schema-routing.js';

function normalizedGlobEntry(e: NamespaceEntry): NamespaceEntry {
  const out: NamespaceEntry = { netns: e.netns };
  if (e.mptcp !== undefined) out.mptcp = { ...e.mptcp };
  if (e.limits !== undefined) out.limits = { ...e.limits };
  if (e.endpoints !== undefined) out.endpoints = e.endpoints.map(normalizeEndpoint);
  if (e.rpFilter !== undefined) {
    out.rpFilter = orderedRpFilter(Object.fromEntries(Object.entries(e.rpFilter).map(([k, v]) => [k, rpFilterName(v)])));
  }
  if (e.sourceRouting !== undefined) out.sourceRouting = orderedSourceRouting(e.sourceRouting);
  if (e.linkDown !== undefined) out.linkDown = e.linkDown;
  if (e.linkDownHold !== undefined) out.linkDownHold = formatDuration(parseDuration(e.linkDownHold)!);
  if (e.prune !== undefined) out.prune = e.prune;
  if (e.conflicts !== undefined) out.conflicts = e.conflicts;
  return out;
}

/** The effective config for `node`: valid input that resolves like `config` for every namespace name. */
export function renderedConfig(config: Config, node: string): Config {
  const applying = config.namespaces.filter((e) => entryMatchesNode(e, node));
  const globs = applying.filter((e) => isGlob(e.netns)).map(normalizedGlobEntry);
  const literals = [...new Set(applying.filter((e) => !isGlob(e.netns)).map((e) => e.netns))];
  const merged: NamespaceEntry[] = [];
  for (const name of literals) {
    const d = resolveNamespace(config, node, name);
    if (!d) continue;
    const e: NamespaceEntry = { netns: name };
    if (Object.keys(d.mptcp).length) e.mptcp = d.mptcp;
    if (Object.keys(d.limits).length) e.limits = d.limits;
    if (d.endpoints !== undefined) e.endpoints = d.endpoints;
    if (Object.keys(d.rpFilter).length) e.rpFilter = d.rpFilter;
    // Routing keys only where some entry declares them, so older configs render as before.
    const r = resolveRouting(config, node, name)!;
    const declares = (k: 'sourceRouting' | 'linkDown' | 'linkDownHold') => applying.some((x) => x[k] !== undefined && entryMatchesNetns(x, name));
    if (Object.keys(r.sourceRouting).length) e.sourceRouting = r.sourceRouting;
    if (declares('linkDown')) e.linkDown = r.linkDown;
    if (declares('linkDownHold')) e.linkDownHold = formatDuration(r.linkDownHoldMs);
    e.prune = d.prune;
    e.conflicts = d.conflicts;
    merged.push(e);
  }
  return { version: 1, namespaces: [...globs, ...merged] };
}

/** `renderedConfig` as YAML text, with the schema header and a `version: 1` first line of content. */
export function renderConfig(config: Config, node: string): string {
  const doc = new Document(renderedConfig(config, node));
  // Short lists read better inline: flags: [signal, backup].
  visit(doc, {
    Pair(_, pair) {
      if (isPair(pair) && isScalar(pair.key) && (pair.key.value === 'flags' || pair.key.value === 'nodes') && isSeq(pair.value)) {
        pair.value.flow = true;
      }
    },
  });
  const body = doc.toString({ lineWidth: 0, flowCollectionPadding: false });
  return `# yaml-language-server: $schema=../schemas/mptcp-reconciler.schema.json\n# Effective desired state for node ${JSON.stringify(node)} (mptcp-reconciler render).\n${body}`;
}
