// Creating and removing named network namespaces (the /run/netns convention of
// iproute2) and wiring them with a veth pair, without running `ip`: the demo and
// tests of the product must not shell out. unshare/mount/setns are made on the
// main thread through koffi and the thread is always back in its home namespace
// before the function returns (no await in between), so nothing else in the
// process ever runs in the new namespace.
import { closeSync, mkdirSync, openSync, unlinkSync } from 'node:fs';
import { isIPv6 } from 'node:net';
import { constants as osConstants } from 'node:os';
import { interfaceNameProblem, netnsPatternProblem } from '../core/names.js';
import { isGlob } from '../core/glob.js';
import type { LiveLink } from '../core/model.js';
import { KernelError } from './api.js';
import { parseIPv4, parseIPv6 } from './mptcp-codec.js';
import { run } from './mptcp-pm.js';
import { NETLINK_ROUTE, NLM_F_ACK, NLM_F_REQUEST, NlSocket, NlWriter, nextSeq, type NlRequest } from './nlsock.js';
import { queueDumpLinks } from './rtnl.js';
import { errnoName, lastErrno, lib } from './libc.js';
import { CLONE_NEWNET } from './uapi.js';

const NETNS_RUN_DIR = '/run/netns';
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

const RTM_NEWLINK = 16;
const RTM_NEWADDR = 20;
const NLM_F_EXCL = 0x200;
const NLM_F_CREATE = 0x400;
const IFINFOMSG_LEN = 16;
const IFADDRMSG_LEN = 8;
const IFF_UP = 0x1;
const IFLA_IFNAME = 3;
const IFLA_LINKINFO = 18;
const IFLA_NET_NS_FD = 28;
const IFLA_INFO_KIND = 1;
const IFLA_INFO_DATA = 2;
const VETH_INFO_PEER = 1;
const IFA_ADDRESS = 1;
const IFA_LOCAL = 2;

/** An rtnetlink socket bound to namespace `name` (sockets keep the namespace they were made in). */
function rtSocketIn(name: string): NlSocket {
  return inNetns(name, () => new NlSocket(NETLINK_ROUTE, name));
}

/** One rtnetlink request that asks for an ack. */
function rtRequest(w: NlWriter, type: number, flags: number, op: string, fill: (w: NlWriter) => void): NlRequest {
  const seq = nextSeq();
  w.beginMsg(type, NLM_F_REQUEST | NLM_F_ACK | flags, seq);
  fill(w);
  w.endMsg();
  return { seq, op, dump: false };
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
    const w = new NlWriter();
    const req = rtRequest(w, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, `RTM_NEWLINK veth ${a.ifname}/${b.ifname}`, (w) => {
      w.header(IFINFOMSG_LEN).string(IFLA_IFNAME, a.ifname).u32(IFLA_NET_NS_FD, fdA);
      const info = w.beginNest(IFLA_LINKINFO);
      w.string(IFLA_INFO_KIND, 'veth');
      const data = w.beginNest(IFLA_INFO_DATA);
      // VETH_INFO_PEER carries a struct ifinfomsg, then the peer's attributes.
      const peer = w.beginNest(VETH_INFO_PEER);
      w.header(IFINFOMSG_LEN).string(IFLA_IFNAME, b.ifname).u32(IFLA_NET_NS_FD, fdB);
      w.endNest(peer).endNest(data).endNest(info);
    });
    run(sock, w, [req]);
  } finally {
    sock.close();
    closeSync(fdA);
    closeSync(fdB);
  }
  for (const end of [a, b]) configureEnd(end);
}

/** Brings lo and the veth end up and adds its addresses. */
function configureEnd(end: VethEnd): void {
  const sock = rtSocketIn(end.netns);
  try {
    const w = new NlWriter();
    const links: LiveLink[] = [];
    run(sock, w, [queueDumpLinks(w.reset(), links)]);
    const indexOf = (name: string): number => {
      const l = links.find((x) => x.name === name);
      if (!l) throw new Error(`interface ${name} not found in netns ${end.netns}`);
      return l.ifindex;
    };
    const index = indexOf(end.ifname);
    const reqs: NlRequest[] = [];
    w.reset();
    for (const name of ['lo', end.ifname]) {
      const i = indexOf(name);
      reqs.push(
        rtRequest(w, RTM_NEWLINK, 0, `RTM_NEWLINK ${name} up`, (w) =>
          w.header(IFINFOMSG_LEN, (buf, off) => {
            buf.writeInt32LE(i, off + 4);
            buf.writeUInt32LE(IFF_UP, off + 8);
            buf.writeUInt32LE(IFF_UP, off + 12);
          }),
        ),
      );
    }
    for (const cidr of end.addresses) {
      const [addr, len] = cidr.split('/') as [string, string];
      const v6 = isIPv6(addr);
      const bytes = v6 ? parseIPv6(addr) : parseIPv4(addr);
      reqs.push(
        rtRequest(w, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, `RTM_NEWADDR ${cidr} dev ${end.ifname}`, (w) =>
          w
            .header(IFADDRMSG_LEN, (buf, off) => {
              buf.writeUInt8(v6 ? 10 : 2, off);
              buf.writeUInt8(Number(len), off + 1);
              buf.writeUInt32LE(index, off + 4);
            })
            .bytes(IFA_LOCAL, bytes)
            .bytes(IFA_ADDRESS, bytes),
        ),
      );
    }
    run(sock, w, reqs);
  } finally {
    sock.close();
  }
}
