// A resync over a converged fleet takes the quiet path of PassReport.record
// (nothing rewritten that did not change); what /status and /metrics say must
// be the same as if every pass had been recorded in full.
import { describe, expect, it } from 'vitest';
import { DaemonMetrics } from '../src/daemon/metrics.js';
import { PassReport, type PassResult } from '../src/daemon/pass-report.js';

const silent = { info() {}, warn() {}, error() {}, debug() {} };
const converged = (ns: string): PassResult => ({ netns: ns, operations: [], converged: true, pending: [], errors: [] });
const failed = (ns: string): PassResult => ({ netns: ns, operations: [], converged: false, pending: [], errors: [{ message: 'get limits: EPERM', errno: 'EPERM', retryable: true }] });

async function series(m: DaemonMetrics, name: string): Promise<string[]> {
  return (await m.registry.metrics()).split('\n').filter((l) => l.startsWith(name));
}

describe('pass report', () => {
  it('keeps status and metrics true across quiet resyncs, a failure and the recovery', async () => {
    const m = new DaemonMetrics();
    const rep = new PassReport('enforce', m, () => false);
    const pass = (i: number, result: PassResult, retry = false) =>
      rep.record({ netns: 'a', passId: `p${i}`, reasons: ['resync'], result, crashed: undefined, seconds: 0.001, retry, failuresBefore: retry ? 0 : 0 }, silent);

    for (let i = 0; i < 5; i++) pass(i, converged('a'));
    let st = rep.snapshot(['a']).a!;
    expect(st).toMatchObject({ passes: 5, passId: 'p4', converged: true, lastResult: 'converged', errors: [], failedPasses: 0 });
    const first = Date.parse(st.lastPass!);
    expect(first).not.toBeNaN();
    expect(await series(m, 'mptcp_reconciler_converged{')).toEqual(['mptcp_reconciler_converged{netns="a"} 1']);
    expect(await series(m, 'mptcp_reconciler_passes_total{result="converged"}')).toEqual(['mptcp_reconciler_passes_total{result="converged"} 5']);

    pass(5, failed('a'), true);
    st = rep.snapshot(['a']).a!;
    expect(st).toMatchObject({ passes: 6, converged: false, lastResult: 'error', failedPasses: 1, consecutiveFailures: 1 });
    expect(st.errors).toHaveLength(1);
    expect(await series(m, 'mptcp_reconciler_converged{')).toEqual(['mptcp_reconciler_converged{netns="a"} 0']);

    // The first converged pass after the failure is recorded in full (the status had errors), then quiet again.
    pass(6, converged('a'));
    pass(7, converged('a'));
    st = rep.snapshot(['a']).a!;
    expect(st).toMatchObject({ passes: 8, passId: 'p7', converged: true, lastResult: 'converged', errors: [], failedPasses: 0, consecutiveFailures: 0 });
    expect(Date.parse(st.lastPass!)).toBeGreaterThanOrEqual(first);
    expect(await series(m, 'mptcp_reconciler_converged{')).toEqual(['mptcp_reconciler_converged{netns="a"} 1']);
    expect(await series(m, 'mptcp_reconciler_passes_total{result="error"}')).toEqual(['mptcp_reconciler_passes_total{result="error"} 1']);
    expect(await series(m, 'mptcp_reconciler_passes_total{result="converged"}')).toEqual(['mptcp_reconciler_passes_total{result="converged"} 7']);

    // A namespace that leaves the managed set takes its series with it; coming back starts them again.
    rep.forget('a');
    expect(await series(m, 'mptcp_reconciler_converged{')).toEqual([]);
    pass(8, converged('a'));
    expect(await series(m, 'mptcp_reconciler_converged{')).toEqual(['mptcp_reconciler_converged{netns="a"} 1']);
    expect(await series(m, 'mptcp_reconciler_withdrawn_endpoints{')).toEqual(['mptcp_reconciler_withdrawn_endpoints{netns="a"} 0']);
  });
});
