// How `plan` and `apply` show a pass: per namespace, a unified diff of the live
// state against the desired state (both in the config format, restricted to the
// keys the config declares, so the diff shows only what the reconciler may
// change), then the numbered operations. `-o json` is the documented machine-readable shape.
import { createTwoFilesPatch } from 'diff';
import YAML from 'yaml';
import { canonicalAddress, endpointKey } from '../core/address.js';
import { resolveEndpoints } from '../core/derive.js';
import { sortFlags, type FlagName } from '../core/flags.js';
import type { DesiredNamespace, LiveEndpoint, LiveNamespace, Operation } from '../core/model.js';
import type { OpResult, ReconcileResult } from '../apply/reconcile.js';
import { describeOperation, rpFilterLabel } from '../core/vocabulary.js';
import { routingToConfig } from '../core/live-to-config.js';
import { describeRoutingOp, RTPROT_RECONCILER } from '../core/source-routing.js';

// The caller decides whether to colour (io.stdout.isTTY), so no library that second-guesses it.
const ANSI = { bold: '\x1b[1m', red: '\x1b[31m', green: '\x1b[32m', yellow: '\x1b[33m', cyan: '\x1b[36m' } as const;
function styleText(style: keyof typeof ANSI, s: string): string {
  return `${ANSI[style]}${s}\x1b[0m`;
}

type EndpointView = { address?: string; port?: number; id?: number; dev?: string; flags: string[] };

function liveEndpointView(ep: LiveEndpoint, live: LiveNamespace, withId: boolean, withDev: boolean): EndpointView {
  const v = { address: ep.address } as EndpointView;
  if (ep.port !== undefined) v.port = ep.port;
  if (withId) v.id = ep.id;
  if (withDev && ep.ifindex !== undefined) v.dev = live.links.find((l) => l.ifindex === ep.ifindex)?.name ?? `if${ep.ifindex}`;
  v.flags = sortFlags(ep.flags.filter((f) => f !== 'implicit'));
  return v;
}

/**
 * The desired and live states of one namespace as two config documents with the
 * same keys and endpoint order, so that their diff is exactly the drift.
 */
export function planViews(desired: DesiredNamespace, live: LiveNamespace): { live: object; desired: object } {
  const want: Record<string, unknown> = { netns: desired.netns };
  const have: Record<string, unknown> = { netns: desired.netns };

  const mptcpKeys = Object.keys(desired.mptcp) as (keyof typeof desired.mptcp)[];
  if (mptcpKeys.length) {
    want.mptcp = { ...desired.mptcp };
    have.mptcp = Object.fromEntries(mptcpKeys.filter((k) => live.mptcp[k] !== undefined).map((k) => [k, live.mptcp[k]]));
  }
  const limitKeys = (['subflows', 'addAddrAccepted'] as const).filter((k) => desired.limits[k] !== undefined);
  if (limitKeys.length) {
    want.limits = Object.fromEntries(limitKeys.map((k) => [k, desired.limits[k]]));
    have.limits = Object.fromEntries(limitKeys.map((k) => [k, live.limits[k]]));
  }
  if (desired.endpoints !== undefined) {
    const res = resolveEndpoints(desired.endpoints, live);
    const liveByKey = new Map(live.endpoints.map((e) => [endpointKey(e.address, e.port), e]));
    const wantEps: EndpointView[] = [];
    const haveEps: EndpointView[] = [];
    const seen = new Set<string>();
    for (const r of res.endpoints) {
      seen.add(r.key);
      const w = { address: r.address } as EndpointView;
      if (r.port !== undefined) w.port = r.port;
      if (r.id !== undefined) w.id = r.id;
      if (r.dev !== undefined) w.dev = r.dev;
      w.flags = sortFlags(r.flags);
      wantEps.push(w);
      const l = liveByKey.get(r.key);
      if (l) haveEps.push(liveEndpointView(l, live, r.id !== undefined, r.dev !== undefined));
    }
    for (const l of live.endpoints) {
      const key = endpointKey(l.address, l.port);
      // Kernel-created endpoints and ones whose declaration is pending are never drift.
      if (seen.has(key) || l.flags.includes('implicit') || res.heldKeys.has(key)) continue;
      const v = liveEndpointView(l, live, false, false);
      haveEps.push(v);
      if (!desired.prune) wantEps.push(v);
    }
    // A declared endpoint whose dev does not exist yet is still wanted: it shows in
    // the diff (and as pending below), never silently left out.
    for (const ep of desired.endpoints) {
      if (ep.dev === undefined || live.links.some((l) => l.name === ep.dev)) continue;
      const w = { ...(ep.address !== undefined && { address: canonicalAddress(ep.address) }) } as EndpointView;
      if (ep.port !== undefined) w.port = ep.port;
      if (ep.id !== undefined) w.id = ep.id;
      w.dev = ep.dev;
      w.flags = sortFlags((ep.flags ?? []) as FlagName[]);
      wantEps.push(w);
    }
    want.endpoints = wantEps;
    have.endpoints = haveEps;
  }
  const ifaces = Object.keys(desired.rpFilter);
  if (ifaces.length) {
    want.rpFilter = Object.fromEntries(ifaces.map((i) => [i, rpFilterLabel(desired.rpFilter[i]!)]));
    have.rpFilter = Object.fromEntries(
      ifaces.filter((i) => live.rpFilter[i] !== undefined).map((i) => [i, rpFilterLabel(live.rpFilter[i]!)]),
    );
  }
  const ownRouting = live.rules?.some((r) => r.protocol === RTPROT_RECONCILER) || live.routes?.some((r) => r.protocol === RTPROT_RECONCILER);
  if (desired.sourceRouting !== undefined || ownRouting) {
    want.sourceRouting = desired.sourceRouting ?? {};
    have.sourceRouting = routingToConfig(live, []);
  }
  return { live: have, desired: want };
}

/** YAML in the config's style: flag lists on one line. */
export function toConfigYaml(value: unknown): string {
  const doc = new YAML.Document(value);
  YAML.visit(doc, {
    Seq(_, node) {
      if (node.items.every((i) => YAML.isScalar(i))) node.flow = true;
    },
  });
  return doc.toString({ lineWidth: 0, flowCollectionPadding: false });
}

// A fleet shares one desired state, and many of its namespaces one live state:
// everything but the netns line is rendered once per distinct content (YAML
// rendering was a third of a 200-namespace plan). Top-level block pairs render
// line by line, so the two parts concatenate to what the whole would render.
const bodyYaml = new Map<string, string>();
function viewYaml(view: object): string {
  const { netns, ...rest } = view as Record<string, unknown>;
  if (netns === undefined) return toConfigYaml(view);
  const key = JSON.stringify(rest);
  let body = bodyYaml.get(key);
  if (body === undefined) {
    body = Object.keys(rest).length ? toConfigYaml(rest) : '';
    if (bodyYaml.size >= 1024) bodyYaml.clear();
    bodyYaml.set(key, body);
  }
  return toConfigYaml({ netns }) + body;
}

export function unifiedDiff(netns: string, views: { live: object; desired: object }, color: boolean): string {
  // Equal views render equally: nothing to diff (most namespaces of a converged fleet).
  if (JSON.stringify(views.live) === JSON.stringify(views.desired)) return '';
  const patch = createTwoFilesPatch(
    `live/${netns}`,
    `desired/${netns}`,
    viewYaml(views.live),
    viewYaml(views.desired),
    undefined,
    undefined,
    { context: 3 },
  );
  // Drop the "=====" banner line createTwoFilesPatch puts first.
  const lines = patch.split('\n').filter((l) => !/^={5,}$/.test(l));
  if (lines.length <= 3) return ''; // headers only: nothing differs
  if (!color) return lines.join('\n');
  return lines
    .map((l) => {
      if (l.startsWith('+++') || l.startsWith('---')) return styleText('bold', l);
      if (l.startsWith('+')) return styleText('green', l);
      if (l.startsWith('-')) return styleText('red', l);
      if (l.startsWith('@@')) return styleText('cyan', l);
      return l;
    })
    .join('\n');
}

function resultText(o: Pick<OpResult, 'result' | 'error' | 'note'>, color: boolean): string {
  const paint = (c: 'green' | 'red' | 'yellow', s: string) => (color ? styleText(c, s) : s);
  switch (o.result) {
    case 'ok':
      return paint('green', 'ok') + (o.note ? ` (${o.note})` : '');
    case 'failed':
      return paint('red', 'FAILED') + (o.error ? `: ${o.error}` : '');
    case 'skipped':
      return paint('yellow', 'skipped') + (o.error ? `: ${o.error}` : '');
    default:
      return '';
  }
}

export interface NamespaceReport {
  result: ReconcileResult;
  /** The live state the plan was made from; absent when it could not be read. */
  live?: LiveNamespace;
  desired?: DesiredNamespace;
}

export function renderText(reports: readonly NamespaceReport[], opts: { color: boolean; applied: boolean }): string {
  const out: string[] = [];
  const bold = (s: string) => (opts.color ? styleText('bold', s) : s);
  for (const { result: r, live, desired } of reports) {
    out.push(bold(`netns ${r.netns}`));
    if (live && desired) {
      const d = unifiedDiff(r.netns, planViews(desired, live), opts.color);
      if (d) out.push(d.trimEnd());
    }
    if (r.operations.length === 0 && r.routing.length === 0 && r.errors.length === 0) {
      out.push(r.pending.length === 0 ? '  no changes' : `  no changes possible yet: ${r.pending.length} pending (done once they become possible)`);
    }
    r.operations.forEach((o, i) => {
      const marks = o.disruptive ? ' [disruptive]' : '';
      const reason = o.reason ? ` (${o.reason})` : '';
      const res = opts.applied && o.result ? `: ${resultText(o, opts.color)}` : '';
      out.push(`  ${i + 1}. ${describeOperation(o, 'plan')}${marks}${reason}${res}`);
    });
    // Routing: before the endpoint writes (a join needs its rule first), removals after.
    r.routing.forEach((o, i) => {
      const res = opts.applied && o.result ? `: ${resultText(o, opts.color)}` : '';
      const when = o.when === 'before' ? 'before endpoints' : 'after endpoints';
      out.push(`  r${i + 1}. ${describeRoutingOp(o)} [${when}]${res}`);
    });
    for (const w of r.warnings) out.push(w.split('\n').map((l) => `  warning: ${l}`).join('\n'));
    for (const p of r.pending) out.push(`  pending: ${p.what}: ${p.reason}`);
    for (const l of r.linkDown ?? []) {
      out.push(`  ${l.state === 'withdrawn' ? 'held back' : 'note'}: endpoints[${l.endpoint}]: ${l.reason}${l.state === 'withdrawn' && l.id !== undefined ? ` (back as id ${l.id} once usable)` : ''}`);
    }
    const shownWithOp = new Set(opts.applied ? [...r.operations, ...r.routing].map((o) => o.error) : []);
    for (const e of r.errors) {
      if (shownWithOp.has(e.message)) continue; // already printed after its operation
      if (e.op === 'conflict') {
        out.push(e.message.split('\n').map((l) => `  ${l}`).join('\n'));
        continue;
      }
      const extra = e.errno && !e.message.includes(e.errno) ? ` [${e.errno}]` : '';
      out.push(`  error: ${e.message}${extra}`);
    }
    if (r.firstDifference && !r.converged) out.push(`  first difference: ${r.firstDifference}`);
    if (opts.applied) out.push(r.converged ? '  converged and verified' : '  NOT converged');
    out.push('');
  }
  return out.join('\n');
}

export function toJsonDoc(node: string, results: readonly ReconcileResult[]): object {
  return {
    node,
    namespaces: results.map((r) => {
      const ns: Record<string, unknown> = {
        netns: r.netns,
        operations: r.operations,
        ...(r.routing.length > 0 && { routing: r.routing.map((o) => ({ ...o, text: describeRoutingOp(o) })) }),
        converged: r.converged,
        errors: r.errors,
        pending: r.pending,
      };
      if (r.firstDifference !== undefined) ns.firstDifference = r.firstDifference;
      if (r.conflicts.length) ns.conflicts = r.conflicts;
      if (r.warnings.length) ns.warnings = r.warnings;
      if (r.linkDown?.length) ns.linkDown = r.linkDown;
      return ns;
    }),
  };
}
