// Network namespaces by name: "host" (the one this process started in) and the
// iproute2 convention /run/netns/NAME. Entering one is setns(2) on the main
// thread, synchronously, and always back home before returning: anything that
// awaits would let other code run in the wrong namespace.
import { closeSync, fstatSync, openSync, readdirSync, statSync } from 'node:fs';
import { netnsPatternProblem } from '../core/names.js';
import { globMatch, isGlob } from '../core/glob.js';
import { KernelError } from './api.js';
import { errnoName, isRetryable, lastErrno, lib } from './libc.js';
import { CLONE_NEWNET } from './uapi.js';

export const HOST_NETNS = 'host';
export const NETNS_DIR = '/run/netns';

/** What a namespace name points at; a different value means deleted and re-created. */
export interface NetnsIdentity {
  dev: number;
  ino: number;
}

let homeFd: number | undefined;
let homeIdentity: NetnsIdentity | undefined;
/** The namespace the thread is in right now, while inside withNetns. */
let current: string | undefined;

function home(): number {
  if (homeFd === undefined) {
    // Opened on first use, which is necessarily at home: only withNetns leaves it.
    homeFd = openSync('/proc/thread-self/ns/net', 'r');
    const st = fstatSync(homeFd);
    homeIdentity = { dev: st.dev, ino: st.ino };
  }
  return homeFd;
}

/** Why `name` cannot be a namespace name (checked before any path is built), or undefined. */
export function netnsNameProblem(name: string): string | undefined {
  const p = netnsPatternProblem(name);
  if (p) return p;
  if (name === '.' || name.startsWith('.')) return 'may not start with "."';
  return undefined;
}

function checkName(name: string): void {
  const p = netnsNameProblem(name);
  if (p) {
    throw new KernelError({ op: 'open netns', netns: name, errno: 22, code: 'EINVAL', extack: `netns name ${p}`, retryable: false });
  }
}

/** "host" first, then the names under /run/netns, sorted. */
export function listNamespaces(): string[] {
  let names: string[];
  try {
    names = readdirSync(NETNS_DIR);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [HOST_NETNS];
    throw e;
  }
  // A file named "host" under /run/netns would be shadowed by the real host namespace.
  const named = names.filter((n) => n !== HOST_NETNS && netnsNameProblem(n) === undefined).sort();
  return [HOST_NETNS, ...named];
}

/** Glob match over namespace names; "host" only matches the literal pattern "host". */
export function netnsMatches(pattern: string, name: string): boolean {
  if (name === HOST_NETNS) return pattern === HOST_NETNS;
  if (!isGlob(pattern)) return pattern === name;
  return globMatch(pattern, name);
}

/** The namespaces matching `pattern` (all when undefined), in listNamespaces order. */
export function selectNamespaces(pattern?: string, names: string[] = listNamespaces()): string[] {
  if (pattern === undefined) return names;
  return names.filter((n) => netnsMatches(pattern, n));
}

/** The identity of the namespace `name` names now; undefined when it does not exist. */
export function netnsIdentity(name: string): NetnsIdentity | undefined {
  if (name === HOST_NETNS) {
    home();
    return homeIdentity;
  }
  checkName(name);
  try {
    const st = statSync(`${NETNS_DIR}/${name}`);
    return { dev: st.dev, ino: st.ino };
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw e;
  }
}

function fail(op: string, netns: string, errno: number, extack?: string): never {
  const code = errnoName(errno);
  throw new KernelError({ op, netns, errno, code, ...(extack ? { extack } : {}), retryable: isRetryable(code) });
}

/**
 * Runs `fn` with the main thread inside namespace `name`, then returns home (also
 * on throw). `fn` must be synchronous: sockets and /proc/sys files it creates stay
 * bound to the namespace. With `expect`, refuses (ESTALE) when the name now points
 * at another namespace than the one a cache was built for.
 */
export function withNetns<T>(name: string, fn: () => T, expect?: NetnsIdentity): T {
  if (name === HOST_NETNS && current === undefined) {
    home();
    return guardSync(fn());
  }
  if (current !== undefined) {
    if (current === name) return guardSync(fn());
    throw new Error(`withNetns(${name}) nested inside withNetns(${current})`);
  }
  checkName(name);
  const homeFdNow = home();
  let fd: number;
  try {
    fd = openSync(`${NETNS_DIR}/${name}`, 'r');
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    fail('open netns', name, -(err.errno ?? -2), err.code === 'ENOENT' ? 'no such namespace in /run/netns' : undefined);
  }
  try {
    if (expect) {
      const st = fstatSync(fd);
      if (st.dev !== expect.dev || st.ino !== expect.ino) {
        fail('enter netns', name, 116, 'the namespace was deleted and re-created under the same name');
      }
    }
    const c = lib();
    if (c.setns(fd, CLONE_NEWNET) !== 0) {
      const errno = lastErrno();
      fail('setns', name, errno, errno === 1 ? 'entering a namespace needs CAP_SYS_ADMIN' : undefined);
    }
    current = name;
    try {
      return guardSync(fn());
    } finally {
      current = undefined;
      if (c.setns(homeFdNow, CLONE_NEWNET) !== 0) {
        // Carrying on in the wrong namespace would silently act on it; stop instead.
        process.stderr.write(`fatal: cannot return to the home network namespace from ${name} (errno ${lastErrno()})\n`);
        process.abort();
      }
    }
  } finally {
    closeSync(fd);
  }
}

function guardSync<T>(v: T): T {
  if (v !== null && typeof v === 'object' && typeof (v as { then?: unknown }).then === 'function') {
    throw new Error('withNetns callback returned a promise: it must be synchronous');
  }
  return v;
}
