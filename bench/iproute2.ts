// The baseline: what an operator's shell script of iproute2 calls does for the
// same work, run in the same benchmark run.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ADDRESSES, IFACES, type Fleet } from './fixture.js';

// One directory per bench process, removed when it exits (a run writes a few
// dozen scripts; each used to leave its own directory behind).
let dir: string | undefined;
let made = 0;

function writeScript(name: string, body: string): string {
  if (dir === undefined) {
    const d = mkdtempSync(join(tmpdir(), 'mrbench-'));
    dir = d;
    process.once('exit', () => rmSync(d, { recursive: true, force: true }));
  }
  const path = join(dir, `${++made}-${name}`);
  writeFileSync(path, `#!/bin/bash\nset -e\n${body}\n`, { mode: 0o755 });
  return path;
}

/** One `ip -n NS -batch` plus the rp_filter writes per namespace. */
export function coldApplyScript(fleet: Fleet): string {
  const batch = [
    ...ADDRESSES.map((a) => `mptcp endpoint add ${a.address} dev ${a.dev} subflow`),
    'mptcp limits set subflows 8 add_addr_accepted 8',
  ].join('\\n');
  const rp = IFACES.map((d) => `echo 2 > /proc/sys/net/ipv4/conf/${d}/rp_filter`).join('; ');
  return writeScript(
    'cold-apply.sh',
    `for ns in ${fleet.names.join(' ')}; do\n  printf '${batch}\\n' | ip -n "$ns" -batch -\n  ip netns exec "$ns" sh -c '${rp}'\ndone`,
  );
}

/** `ip -n NS -j mptcp endpoint show` plus `ip -n NS mptcp limits` per namespace. */
export function convergedCheckScript(fleet: Fleet): string {
  return writeScript(
    'check.sh',
    `for ns in ${fleet.names.join(' ')}; do\n  ip -n "$ns" -j mptcp endpoint show >/dev/null\n  ip -n "$ns" mptcp limits >/dev/null\ndone`,
  );
}

export function runScript(path: string): number {
  const t0 = process.hrtime.bigint();
  execFileSync('bash', [path], { stdio: ['ignore', 'ignore', 'inherit'] });
  return Number(process.hrtime.bigint() - t0) / 1e6;
}
