// Creating and removing named network namespaces (the /run/netns convention of
// iproute2) and wiring them with a veth pair, without running `ip`: the demo and
// tests of the product must not shell out. unshare/mount/setns are made on the
// main thread through koffi and the thread is always back in its home namespace
// before the function returns (no await in between), so nothing else in the
// process ever runs in the new namespace.
import { closeSync, mkdirSync, openSync, unlinkSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { AttrStream, createRtNetlink, ifla, type RtNetlinkSocket, type StreamData } from 'netlink';
import { interfaceNameProblem, netnsPatternProblem } from '../config/schema.js';
import { isGlob } from '../core/glob.js';
import { KernelError } from './api.js';
import { errnoName, knownErrnoName, lastErrno, lib } from './libc.js';

const NETNS_RUN_DIR = '/run/netns';
const CLONE_NEWNET = 0x40000000;
const MS_BIND = 4096;
const MS_REC = 16384;
const MS_SHARED = 1 << 20;
const MNT_DETACH = 2;

function fail(op: string, netns: string, errno = lastErrno()): never {
  throw new KernelError({
    op,
    netns,
    errno,
    code: errnoName(errno),
    retryable: false,
  });
}

/** A namespace name we may create or delete: a plain entry of /run/netns, never a glob or path. */
export function checkNetnsName(name: string): void {
  const p = netnsPatternProblem(name);
  if (p) throw new Error(`netns name "${name}" ${p}`);
  if (isGlob(name) || name === 'host') throw new Error(`netns name "${name}" must be a plain name`);
}

function ensureRunDir(): void {
  mkdirSync(NETNS_RUN_DIR, { recursive: true, mode: 0o755 });
  // Like iproute2: /run/netns must be a shared mount so that the bind mounts made
  // here show up in other mount namespaces (containers, the DaemonSet).
  const c = lib();
  if (c.mount('none', NETNS_RUN_DIR, null, MS_SHARED | MS_REC, null) === 0) return;
  const e = lastErrno();
  if (e !== osConstants.errno.EINVAL) fail('make /run/netns shared', 'host', e);
  if (c.mount(NETNS_RUN_DIR, NETNS_RUN_DIR, 'none', MS_BIND | MS_REC, null) !== 0) fail('bind /run/netns', 'host');
  if (c.mount('none', NETNS_RUN_DIR, null, MS_SHARED | MS_REC, null) !== 0) fail('make /run/netns shared', 'host');
}

/** Runs `fn` synchronously with the main thread in namespace `name`, then returns home. */
export function inNetns<T>(name: string, fn: () => T): T {
  checkNetnsName(name);
  const c = lib();
  const home = openSync('/proc/thread-self/ns/net', 'r');
  let target: number | undefined;
  try {
    target = openSync(`${NETNS_RUN_DIR}/${name}`, 'r');
    if (c.setns(target, CLONE_NEWNET) !== 0) fail('setns', name);
    try {
      return fn();
    } finally {
      // Without this the whole process would stay in the other namespace.
      if (c.setns(home, CLONE_NEWNET) !== 0) fail('setns back to the home namespace', name);
    }
  } finally {
    if (target !== undefined) closeSync(target);
    closeSync(home);
  }
}

/** Creates /run/netns/NAME holding a fresh network namespace (like `ip netns add`). */
export function createNetns(name: string): void {
  checkNetnsName(name);
  ensureRunDir();
  const c = lib();
  const path = `${NETNS_RUN_DIR}/${name}`;
  // O_EXCL: never take over a namespace someone else already has under that name.
  closeSync(openSync(path, 'wx', 0o444));
  const home = openSync('/proc/thread-self/ns/net', 'r');
  let made = false;
  try {
    if (c.unshare(CLONE_NEWNET) !== 0) fail('unshare(CLONE_NEWNET)', name);
    try {
      if (c.mount('/proc/thread-self/ns/net', path, 'none', MS_BIND, null) !== 0) fail('bind-mount netns', name);
      made = true;
    } finally {
      if (c.setns(home, CLONE_NEWNET) !== 0) fail('setns back to the home namespace', name);
    }
  } finally {
    closeSync(home);
    if (!made) {
      try {
        unlinkSync(path);
      } catch {
        /* already gone */
      }
    }
  }
}

/** Removes /run/netns/NAME (like `ip netns delete`); the namespace dies with its last user. */
export function deleteNetns(name: string): void {
  checkNetnsName(name);
  const path = `${NETNS_RUN_DIR}/${name}`;
  const c = lib();
  if (c.umount2(path, MNT_DETACH) !== 0) {
    const e = lastErrno();
    // EINVAL: not a mount point (half-created); ENOENT: already gone.
    if (e !== osConstants.errno.EINVAL && e !== osConstants.errno.ENOENT) fail('umount netns', name, e);
  }
  try {
    unlinkSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

/** An rtnetlink socket bound to namespace `name` (sockets keep the namespace they were made in). */
export function rtSocketIn(name: string): RtNetlinkSocket {
  return inNetns(name, () => createRtNetlink());
}

function nla(type: number, payload: Buffer): Buffer {
  const len = 4 + payload.length;
  const b = Buffer.alloc((len + 3) & ~3);
  b.writeUInt16LE(len, 0);
  b.writeUInt16LE(type, 2);
  payload.copy(b, 4);
  return b;
}

const NLA_F_NESTED = 0x8000;
const IFLA_INFO_KIND = 1;
const IFLA_INFO_DATA = 2;
const VETH_INFO_PEER = 1;

function streamToBuffer(data: StreamData): Buffer {
  const s = new AttrStream();
  s.emit(data);
  return Buffer.concat(s.bufs);
}

export interface VethEnd {
  netns: string;
  ifname: string;
  /** CIDR addresses, e.g. "192.0.2.1/24". */
  addresses: string[];
}

/**
 * A veth pair with one end in each namespace, both up, with addresses. The pair
 * is created straight into the two namespaces, so no interface ever appears in
 * the host namespace.
 */
export async function createVethPair(a: VethEnd, b: VethEnd): Promise<void> {
  for (const end of [a, b]) {
    checkNetnsName(end.netns);
    const p = interfaceNameProblem(end.ifname);
    if (p) throw new Error(`interface name "${end.ifname}" ${p}`);
  }
  const fdA = openSync(`${NETNS_RUN_DIR}/${a.netns}`, 'r');
  const fdB = openSync(`${NETNS_RUN_DIR}/${b.netns}`, 'r');
  const sock = rtSocketIn(a.netns);
  try {
    // VETH_INFO_PEER carries a struct ifinfomsg (16 zero bytes) then the peer's attributes.
    const peer = Buffer.concat([Buffer.alloc(16), streamToBuffer(ifla.formatLinkAttrs({ ifname: b.ifname, netNsFd: fdB }))]);
    const linkinfo = Buffer.concat([
      nla(IFLA_INFO_KIND, Buffer.from('veth\0')),
      nla(IFLA_INFO_DATA | NLA_F_NESTED, nla(VETH_INFO_PEER, peer)),
    ]);
    await sock.newLink({}, { ifname: a.ifname, netNsFd: fdA, linkinfo }, { flags: 0x400 | 0x200 } as never);
  } catch (err) {
    throw asKernelError(err, `RTM_NEWLINK veth ${a.ifname}/${b.ifname}`, a.netns);
  } finally {
    sock.socket.close();
    closeSync(fdA);
    closeSync(fdB);
  }
  for (const end of [a, b]) await configureEnd(end);
}

async function configureEnd(end: VethEnd): Promise<void> {
  const sock = rtSocketIn(end.netns);
  try {
    const links = await sock.getLinks();
    const up = async (name: string) => {
      const l = links.find((x) => x.attrs.ifname === name);
      if (!l) throw new Error(`interface ${name} not found in netns ${end.netns}`);
      await sock.setLink({ index: l.data.index, change: { up: true }, flags: { up: true } });
      return l.data.index!;
    };
    await up('lo');
    const index = await up(end.ifname);
    for (const cidr of end.addresses) {
      const [addr, len] = cidr.split('/');
      const v6 = addr!.includes(':');
      const bytes = v6 ? ipv6Bytes(addr!) : Buffer.from(addr!.split('.').map(Number));
      try {
        await sock.newAddress(
          { family: v6 ? 10 : 2, prefixlen: Number(len), index },
          { address: bytes, local: bytes },
        );
      } catch (err) {
        throw asKernelError(err, `RTM_NEWADDR ${cidr} dev ${end.ifname}`, end.netns);
      }
    }
  } finally {
    sock.socket.close();
  }
}

function ipv6Bytes(addr: string): Buffer {
  const [head, tail] = addr.split('::') as [string, string | undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  const b = Buffer.alloc(16);
  groups.forEach((g, i) => b.writeUInt16BE(parseInt(g, 16), i * 2));
  return b;
}

function asKernelError(err: unknown, op: string, netns: string): KernelError {
  if (err instanceof KernelError) return err;
  const e = err as { errno?: number; code?: string; message?: string };
  // The netlink package reports a NLMSG_ERROR as "Request rejected: EEXIST".
  const named = /Request rejected: (\w+)/.exec(String(e.message ?? ''))?.[1];
  const byName = named ? (osConstants.errno as Record<string, number>)[named] : undefined;
  const errno = typeof e.errno === 'number' ? Math.abs(e.errno) : (byName ?? 0);
  return new KernelError({
    op,
    netns,
    errno,
    code: named ?? e.code ?? knownErrnoName(errno) ?? String(e.message ?? err),
    retryable: false,
  });
}
