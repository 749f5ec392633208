// The long-running daemon's Node options (V8 young generation, worker threads):
// one value, set wherever the product runs `watch` — the systemd unit and the
// image (the bench reads the unit). They only work on node's command line or in
// NODE_OPTIONS, so a copy that drifts or a typo would silently cost memory.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { ensureBuilt, ROOT } from './helpers/build.js';

const unit = readFileSync(join(ROOT, 'deploy/systemd/mptcp-reconciler.service'), 'utf8');
const dockerfile = readFileSync(join(ROOT, 'deploy/Dockerfile'), 'utf8');

const fromUnit = /^Environment="NODE_OPTIONS=([^"]*)"$/m.exec(unit)?.[1];
const fromImage = /^ENV NODE_OPTIONS="([^"]*)"$/m.exec(dockerfile.split(/^FROM /m).at(-1)!)?.[1];

describe('daemon NODE_OPTIONS', () => {
  it('are the same in the systemd unit and in the image runtime stage', () => {
    expect(fromUnit).toBeDefined();
    expect(fromImage).toBe(fromUnit);
    expect(fromUnit).toMatch(/--max-semi-space-size=\d+/);
  });

  it('are accepted by node in NODE_OPTIONS and keep the young generation small under allocation', () => {
    // Garbage as a pass makes it; V8's default grows new space to 32 MB.
    const script = `
      const v8 = require('node:v8');
      let keep = [];
      for (let i = 0; i < 2e6; i++) { keep.push({ i, s: 'x' + i }); if (keep.length > 5000) keep = []; }
      const ns = v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space');
      console.log(ns.space_size);
    `;
    const newSpace = (options: string) => {
      const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: options } });
      expect(r.status, r.stderr).toBe(0);
      return Number(r.stdout.trim());
    };
    const semi = Number(/--max-semi-space-size=(\d+)/.exec(fromUnit!)![1]);
    const bounded = newSpace(fromUnit!);
    const unbounded = newSpace('');
    // Without the option this allocation grows new space to V8's default (32 MiB on Node 20 and 26).
    expect(unbounded).toBeGreaterThanOrEqual(16 * 1024 * 1024);
    // Two semi-spaces; Node 26's V8 now and then reports a few pages more for a
    // moment (up to 5.25 MiB seen with 1 MiB semi-spaces), still a sixth of the default.
    expect(bounded).toBeLessThanOrEqual(Math.max(8, 6 * semi) * 1024 * 1024);
    expect(bounded).toBeLessThanOrEqual(unbounded / 4);
  });

  it("keep V8's heap ceiling, with node's own memory, below the DaemonSet's memory limit", () => {
    // Past the ceiling V8 collects hard and then gives up; past the cgroup limit the
    // kernel kills the pod first. The ceiling must come first, with room for node.
    const ds = parseAllDocuments(readFileSync(join(ROOT, 'deploy/kubernetes/base/daemonset.yaml'), 'utf8'))
      .map((d) => d.toJSON() as { kind?: string; spec?: { template: { spec: { containers: { resources: { limits: { memory: string } } }[] } } } })
      .find((d) => d?.kind === 'DaemonSet')!;
    const limit = ds.spec!.template.spec.containers[0]!.resources.limits.memory;
    const limitBytes = Number(/^(\d+)Mi$/.exec(limit)![1]) * 1024 * 1024;
    const script = `const v8 = require('node:v8'); console.log(v8.getHeapStatistics().heap_size_limit, process.memoryUsage().rss);`;
    const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: fromUnit } });
    expect(r.status, r.stderr).toBe(0);
    const [heapLimit, bareRss] = r.stdout.trim().split(' ').map(Number) as [number, number];
    expect(fromUnit).toMatch(/--max-old-space-size=\d+/);
    // Without the option V8 sizes its heap from the machine (gigabytes here).
    expect(heapLimit).toBeLessThan(256 * 1024 * 1024);
    expect(heapLimit + bareRss).toBeLessThan(limitBytes);
  });

  it('run the built CLI', () => {
    const bin = ensureBuilt();
    const r = spawnSync(process.execPath, [bin, 'watch', '--help'], { encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: fromUnit } });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain('--resync');
  });
});
