// deploy/grafana: a dashboard Grafana can import (schemaVersion, a datasource
// variable, panels on a 24-column grid) whose queries name only metrics the
// daemon really exports: the oracle is the daemon's own prom-client registry.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { DaemonMetrics } from '../src/daemon/metrics.js';

const FILE = fileURLToPath(new URL('../deploy/grafana/mptcp-reconciler.json', import.meta.url));

interface Target {
  refId: string;
  expr: string;
  datasource?: { type: string; uid: string };
}
interface Panel {
  id: number;
  type: string;
  title: string;
  gridPos: { x: number; y: number; w: number; h: number };
  datasource?: { type: string; uid: string };
  targets: Target[];
}
interface Variable {
  name: string;
  type: string;
  query: string | { query: string };
}
const dash = JSON.parse(readFileSync(FILE, 'utf8')) as {
  title: string;
  uid: string;
  schemaVersion: number;
  panels: Panel[];
  templating: { list: Variable[] };
};
const exprs = dash.panels.flatMap((p) => p.targets.map((t) => t.expr));
const variableQueries = dash.templating.list
  .filter((v) => v.type === 'query')
  .map((v) => (typeof v.query === 'string' ? v.query : v.query.query));

const KEYWORDS = new Set(['and', 'or', 'unless', 'bool', 'offset', 'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'inf', 'nan']);

/** Metric names a PromQL expression (or a Grafana label_values() query) reads. */
function metricNames(expr: string): string[] {
  const s = expr
    .replace(/label_values\(\s*([^,]+?)\s*,\s*\w+\s*\)/g, '$1') // label_values(metric{...}, label)
    .replace(/"(?:[^"\\]|\\.)*"/g, '""') // string literals
    .replace(/\$\{?\w+\}?/g, ' ') // Grafana variables ($job, $__rate_interval)
    .replace(/\{[^}]*\}/g, ' ') // label matchers
    .replace(/\[[^\]]*\]/g, ' ') // ranges
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' '); // label lists
  const names: string[] = [];
  for (const m of s.matchAll(/[A-Za-z_:][A-Za-z0-9_:]*/g)) {
    const rest = s.slice(m.index! + m[0].length);
    if (/^\s*\(/.test(rest)) continue; // a function or aggregation
    if (KEYWORDS.has(m[0].toLowerCase())) continue;
    if (/^\d/.test(m[0])) continue;
    names.push(m[0]);
  }
  return names;
}

async function exported(): Promise<Set<string>> {
  const metrics = await new DaemonMetrics().registry.getMetricsAsJSON();
  const names = new Set<string>();
  for (const m of metrics) {
    if (String(m.type) === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) names.add(m.name + suffix);
    else names.add(m.name);
  }
  return names;
}

describe('Grafana dashboard', () => {
  it('is an importable dashboard: schemaVersion, uid, panels with unique ids on the grid', () => {
    expect(dash.schemaVersion).toBeGreaterThanOrEqual(36);
    expect(dash.uid).toMatch(/^[a-zA-Z0-9_-]{1,40}$/);
    expect(dash.title).toBeTruthy();
    expect(dash.panels.length).toBeGreaterThan(5);
    expect(new Set(dash.panels.map((p) => p.id)).size).toBe(dash.panels.length);
    for (const p of dash.panels) {
      expect(p.gridPos.x + p.gridPos.w, p.title).toBeLessThanOrEqual(24);
      expect(p.targets.length, p.title).toBeGreaterThan(0);
    }
    // No two panels overlap.
    const cells = new Set<string>();
    for (const p of dash.panels) {
      for (let x = p.gridPos.x; x < p.gridPos.x + p.gridPos.w; x++) {
        for (let y = p.gridPos.y; y < p.gridPos.y + p.gridPos.h; y++) {
          expect(cells.has(`${x},${y}`), `${p.title} overlaps at ${x},${y}`).toBe(false);
          cells.add(`${x},${y}`);
        }
      }
    }
  });

  it('queries through a datasource variable, never a fixed data source', () => {
    const ds = dash.templating.list.find((v) => v.type === 'datasource');
    expect(ds?.query).toBe('prometheus');
    const ref = `\${${ds!.name}}`;
    for (const p of dash.panels) {
      expect(p.datasource?.uid, p.title).toBe(ref);
      for (const t of p.targets) expect(t.datasource?.uid ?? ref, p.title).toBe(ref);
    }
  });

  it('reads only metrics the daemon exports', async () => {
    const known = await exported();
    expect(known).toContain('mptcp_reconciler_converged');
    const used = [...exprs, ...variableQueries].flatMap(metricNames);
    expect(used.length).toBeGreaterThan(10);
    for (const name of used) expect(known, `the dashboard reads ${name}, which the daemon does not export`).toContain(name);
  });

  it('the metric-name extraction finds a misspelt metric (the check has teeth)', () => {
    expect(metricNames('sum by (op) (rate(mptcp_reconciler_operation_total{job=~"$job"}[5m]))')).toEqual(['mptcp_reconciler_operation_total']);
    expect(metricNames('label_values(mptcp_reconciler_config_info{job=~"$job"}, hash)')).toEqual(['mptcp_reconciler_config_info']);
    expect(metricNames('count(a and on (instance) (min by (instance) (b) == 1)) or vector(0)')).toEqual(['a', 'b']);
  });

  it('shows convergence per config hash, conflicts by manager, drift, operations and pass duration quantiles', () => {
    const has = (re: RegExp) => expect(exprs.some((e) => re.test(e)), String(re)).toBe(true);
    has(/count by \(hash\)[\s\S]*mptcp_reconciler_config_info[\s\S]*mptcp_reconciler_converged/);
    has(/by \(manager\)[\s\S]*mptcp_reconciler_conflict/);
    has(/rate\(mptcp_reconciler_drift_total/);
    has(/by \(op\)[\s\S]*rate\(mptcp_reconciler_operations_total/);
    has(/histogram_quantile\(0\.5,[\s\S]*mptcp_reconciler_pass_duration_seconds_bucket/);
    has(/histogram_quantile\(0\.99,[\s\S]*mptcp_reconciler_pass_duration_seconds_bucket/);
  });

  it('docs/fleet.md names only metrics the daemon exports', async () => {
    const known = await exported();
    const doc = readFileSync(fileURLToPath(new URL('../docs/fleet.md', import.meta.url)), 'utf8');
    const named = [...doc.matchAll(/\bmptcp_reconciler_[a-z_]+/g)].map((m) => m[0]);
    expect(named.length).toBeGreaterThan(5);
    for (const name of named) expect(known, name).toContain(name);
  });
});
