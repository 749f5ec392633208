// Prometheus metrics of the daemon. The names and labels are a contract:
// dashboards, alerts and the docs use them. One Registry per daemon (never the
// global one), so several daemons in one test process do not collide.
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { buildInfo } from '../version.js';

export const PASS_RESULTS = ['converged', 'changed', 'error', 'conflict', 'observed'] as const;
export type PassResultLabel = (typeof PASS_RESULTS)[number];

const DROPPED_DEFAULT_METRICS = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'];

export class DaemonMetrics {
  readonly registry = new Registry();
  readonly passes = new Counter({
    name: 'mptcp_reconciler_passes_total',
    help: 'Reconcile passes by result (converged, changed, error, conflict, observed).',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });
  readonly operations = new Counter({
    name: 'mptcp_reconciler_operations_total',
    help: 'Changes written to the kernel, by operation (add, delete, set-flags, set-limits, set-sysctl, set-rp-filter).',
    labelNames: ['op'] as const,
    registers: [this.registry],
  });
  readonly drift = new Counter({
    name: 'mptcp_reconciler_drift_total',
    help: 'Passes that found something to change, per namespace.',
    labelNames: ['netns'] as const,
    registers: [this.registry],
  });
  readonly converged = new Gauge({
    name: 'mptcp_reconciler_converged',
    help: '1 when the namespace matched the desired state after its last pass.',
    labelNames: ['netns'] as const,
    registers: [this.registry],
  });
  readonly configInfo = new Gauge({
    name: 'mptcp_reconciler_config_info',
    help: 'The config being enforced: short sha256 of its bytes (value always 1).',
    labelNames: ['hash'] as const,
    registers: [this.registry],
  });
  readonly configValid = new Gauge({
    name: 'mptcp_reconciler_config_valid',
    help: '0 when the config on disk is invalid (the last good one stays enforced).',
    registers: [this.registry],
  });
  readonly configGeneration = new Gauge({
    name: 'mptcp_reconciler_config_generation',
    help: 'How many distinct valid configs were loaded since start.',
    registers: [this.registry],
  });
  readonly conflict = new Gauge({
    name: 'mptcp_reconciler_conflict',
    help: '1 while another manager is seen writing MPTCP state in the namespace.',
    labelNames: ['netns', 'manager'] as const,
    registers: [this.registry],
  });
  readonly withdrawn = new Gauge({
    name: 'mptcp_reconciler_withdrawn_endpoints',
    help: 'Declared endpoints held back because their interface has been without carrier for linkDownHold.',
    labelNames: ['netns'] as const,
    registers: [this.registry],
  });
  readonly suspendedKeys = new Gauge({
    name: 'mptcp_reconciler_suspended_keys',
    help: 'Keys left alone in the namespace because someone keeps undoing our changes to them (a fight).',
    labelNames: ['netns'] as const,
    registers: [this.registry],
  });
  readonly suspensionBackoff = new Gauge({
    name: 'mptcp_reconciler_suspension_backoff_seconds',
    help: 'Longest current backoff of a key in a fight in the namespace (0 when none).',
    labelNames: ['netns'] as const,
    registers: [this.registry],
  });
  readonly passDuration = new Histogram({
    name: 'mptcp_reconciler_pass_duration_seconds',
    help: 'Duration of one reconcile pass of one namespace (read, plan, apply, verify).',
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [this.registry],
  });

  readonly buildInfo = new Gauge({
    name: 'mptcp_reconciler_build_info',
    help: 'The running build: package version, Node.js version and kernel release (value always 1).',
    labelNames: ['version', 'node_version', 'kernel'] as const,
    registers: [this.registry],
  });

  private readonly conflictLabels = new Map<string, Set<string>>();
  private readonly passChildren = new Map<PassResultLabel, ReturnType<Counter<'result'>['labels']>>();

  /** The pass counter of one result, its labels hashed once (a resync round counts a pass per namespace). */
  passesOf(result: PassResultLabel): ReturnType<Counter<'result'>['labels']> {
    let c = this.passChildren.get(result);
    if (!c) this.passChildren.set(result, (c = this.passes.labels({ result })));
    return c;
  }

  constructor() {
    // Collected on scrape only. The event-loop-lag histogram samples with a timer
    // (default every 10 ms: 100 wake-ups a second, most of an idle daemon's CPU);
    // once a second is plenty for a process that mostly sleeps.
    collectDefaultMetrics({ register: this.registry, eventLoopMonitoringPrecision: 1000 });
    // prom-client's totals of these are gauges named *_total, which Prometheus
    // reserves for counters (promtool check metrics fails on them); the
    // per-type nodejs_active_* gauges carry the same numbers, summed by sum().
    for (const name of DROPPED_DEFAULT_METRICS) this.registry.removeSingleMetric(name);
    const b = buildInfo();
    this.buildInfo.set({ version: b.version, node_version: b.nodeVersion, kernel: b.kernel }, 1);
    for (const r of PASS_RESULTS) this.passes.inc({ result: r }, 0);
  }

  setConfig(hash: string, generation: number): void {
    this.configInfo.reset();
    this.configInfo.set({ hash }, 1);
    this.configGeneration.set(generation);
  }

  setConflicts(netns: string, managers: readonly string[]): void {
    if (managers.length === 0 && !this.conflictLabels.has(netns)) return;
    for (const m of this.conflictLabels.get(netns) ?? []) {
      if (!managers.includes(m)) this.conflict.remove({ netns, manager: m });
    }
    for (const m of managers) this.conflict.set({ netns, manager: m }, 1);
    if (managers.length > 0) this.conflictLabels.set(netns, new Set(managers));
    else this.conflictLabels.delete(netns);
  }

  setSuspended(netns: string, keys: readonly { backoffMs: number }[]): void {
    this.suspendedKeys.set({ netns }, keys.length);
    this.suspensionBackoff.set({ netns }, Math.max(0, ...keys.map((k) => k.backoffMs)) / 1000);
  }

  /** A namespace no longer managed: its per-namespace series go away. */
  forget(netns: string): void {
    this.converged.remove({ netns });
    this.suspendedKeys.remove({ netns });
    this.suspensionBackoff.remove({ netns });
    this.drift.remove({ netns });
    this.withdrawn.remove({ netns });
    this.setConflicts(netns, []);
  }
}
