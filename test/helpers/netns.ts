// Test-only helpers for real-kernel tests: throwaway namespaces with unique
// names, iproute2 as the independent oracle. Tests may shell out; src/ may not.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll } from 'vitest';

export function sh(cmd: string, args: string[], opts: { input?: string } = {}): string {
  return execFileSync(cmd, args, { encoding: 'utf8', input: opts.input, stdio: ['pipe', 'pipe', 'pipe'] });
}

/** Runs `ip ARGS`; throws with ip's stderr on failure. */
export function ip(...args: string[]): string {
  return sh('ip', args);
}

/** Like ip(), but returns the exit status and both streams instead of throwing. */
export function ipTry(...args: string[]): { status: number; stdout: string; stderr: string } {
  try {
    return { status: 0, stdout: ip(...args), stderr: '' };
  } catch (e) {
    const err = e as { status?: number; stdout?: string; stderr?: string };
    return { status: err.status ?? 1, stdout: String(err.stdout ?? ''), stderr: String(err.stderr ?? '') };
  }
}

/** A unique namespace name: `mr<prefix>-<hex>`; at most 31 chars. */
export function uniqueName(prefix: string): string {
  return `mr${prefix}-${randomBytes(4).toString('hex')}`.slice(0, 31);
}

/** Creates a namespace with lo up; the caller deletes it with deleteNetns in a finally/afterAll. */
export function createNetns(prefix: string): string {
  const name = uniqueName(prefix);
  ip('netns', 'add', name);
  ip('-n', name, 'link', 'set', 'lo', 'up');
  return name;
}

export function deleteNetns(name: string): void {
  // By exact name, never a pattern: other tests run side by side.
  ipTry('netns', 'del', name);
}

/** The oracle: `ip -n NS -j mptcp endpoint show`. */
export interface IpEndpoint {
  address: string;
  id: number;
  port?: number;
  dev?: string;
  signal?: boolean;
  subflow?: boolean;
  backup?: boolean;
  fullmesh?: boolean;
  implicit?: boolean;
  rawflags?: string;
}

export function ipEndpoints(ns: string): IpEndpoint[] {
  const out = ip('-n', ns, '-j', 'mptcp', 'endpoint', 'show').trim();
  return out ? (JSON.parse(out) as IpEndpoint[]) : [];
}

/** The oracle: `ip -n NS mptcp limits` (plain text even with -j). */
export function ipLimits(ns: string): { subflows: number; addAddrAccepted: number } {
  const out = ip('-n', ns, 'mptcp', 'limits');
  const sub = /subflows (\d+)/.exec(out);
  const acc = /add_addr_accepted (\d+)/.exec(out);
  if (!sub || !acc) throw new Error(`unexpected ip mptcp limits output: ${out}`);
  return { subflows: Number(sub[1]), addAddrAccepted: Number(acc[1]) };
}

/** The oracle: `ip netns exec NS sysctl -n KEY`. */
export function nsSysctl(ns: string, key: string): string {
  return sh('ip', ['netns', 'exec', ns, 'sysctl', '-n', key]).trim();
}

export function setNsSysctl(ns: string, key: string, value: string): void {
  sh('ip', ['netns', 'exec', ns, 'sysctl', '-q', '-w', `${key}=${value}`]);
}

/** A veth pair between two namespaces (or one end in `a` only when b is undefined). */
export function veth(a: string, aIf: string, b: string | undefined, bIf: string): void {
  if (b) ip('link', 'add', aIf, 'netns', a, 'type', 'veth', 'peer', 'name', bIf, 'netns', b);
  else ip('-n', a, 'link', 'add', aIf, 'type', 'veth', 'peer', 'name', bIf);
}

/** Fails loudly (never skips) when the tests cannot build namespaces. */
export function requireRoot(): void {
  if (process.getuid?.() !== 0) {
    throw new Error('kernel tests need root (CAP_NET_ADMIN and CAP_SYS_ADMIN) to build network namespaces');
  }
}

/**
 * For a test file that makes namespaces as it goes: checks for root before the
 * file's tests, and after them runs `beforeDelete` (e.g. closing cached kernel
 * handles) and deletes every namespace made, by exact name. Returns the maker.
 */
export function namespacesFor(prefix: string, beforeDelete?: () => void): () => string {
  const made: string[] = [];
  beforeAll(() => requireRoot());
  afterAll(() => {
    try {
      beforeDelete?.();
    } finally {
      for (const n of made) deleteNetns(n);
    }
  });
  return () => {
    const n = createNetns(prefix);
    made.push(n);
    return n;
  };
}
