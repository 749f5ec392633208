// The long-running daemon's Node options (V8 young generation, worker threads):
// one value, set wherever the product runs `watch` — the systemd unit and the
// image (the bench reads the unit). They only work on node's command line or in
// NODE_OPTIONS, so a copy that drifts or a typo would silently cost memory.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
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
    const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: fromUnit } });
    expect(r.status, r.stderr).toBe(0);
    const semi = Number(/--max-semi-space-size=(\d+)/.exec(fromUnit!)![1]);
    expect(Number(r.stdout.trim())).toBeLessThanOrEqual(2 * semi * 1024 * 1024);
  });

  it('run the built CLI', () => {
    const bin = ensureBuilt();
    const r = spawnSync(process.execPath, [bin, 'watch', '--help'], { encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: fromUnit } });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain('--resync');
  });
});
