// Test-only helpers shared by the hardening and fuzz suites: the CLI run in-process
// with its output captured, and a byte-exact picture of a namespace's state as
// iproute2 and the namespace's own /proc/sys show it (the oracle for "nothing changed").
import { main } from '../../src/cli/main.js';
import { ip, sh } from './netns.js';

export interface CliRun {
  code: number;
  out: string;
  err: string;
}

export async function cli(argv: string[], cwd = process.cwd()): Promise<CliRun> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(argv, {
    stdout: { write: (s: string) => out.push(s) },
    stderr: { write: (s: string) => err.push(s) },
    env: { NODE_NAME: 'test-node' },
    cwd,
  });
  return { code, out: out.join(''), err: err.join('') };
}

/** A JavaScript stack frame as Node prints it. */
export const STACK_FRAME = /\n\s+at .+[(:]\d+/;

/**
 * Everything the reconciler could write in `ns` (endpoints, limits, every
 * net.mptcp sysctl, every rp_filter) plus its links and addresses, as text.
 */
export function nsState(ns: string): string {
  const sysctls = sh('ip', ['netns', 'exec', ns, 'grep', '-r', '.', '/proc/sys/net/mptcp', '/proc/sys/net/ipv4/conf']);
  const wanted = sysctls
    .split('\n')
    .filter((l) => l.startsWith('/proc/sys/net/mptcp/') || l.includes('/rp_filter:'))
    .sort()
    .join('\n');
  return [
    ip('-n', ns, '-j', 'mptcp', 'endpoint', 'show'),
    ip('-n', ns, 'mptcp', 'limits'),
    wanted,
    ip('-n', ns, '-br', 'link', 'show'),
    ip('-n', ns, '-br', 'addr', 'show'),
  ].join('\n--\n');
}
