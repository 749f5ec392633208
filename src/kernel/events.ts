// rtnetlink notifications of one namespace: links, IPv4/IPv6 addresses and IPv4
// netconf (rp_filter) changes (docs/kernel-notes.md#rp_filter). The daemon only needs to know that
// something changed in which namespace; the pass re-reads everything, so events
// are parsed just enough to say what happened in a log line.
//
// A netlink socket is bound for life to the namespace it was created in, so the
// caller creates it with the thread inside the target namespace (`enter`).
//
// Overflow: when the receive queue is full the kernel drops notifications and
// flags the socket with ENOBUFS. The `netlink` package's native poll handler
// aborts the whole process on that socket error (libuv reports EPOLLERR as a
// poll failure, and the addon builds its error with a NULL syscall name), so the
// socket is set to NETLINK_NO_ENOBUFS and losses are read instead from the
// socket's drop counter (SO_MEMINFO, SK_MEMINFO_DROPS) each time messages are
// received. A full queue always holds messages, so a loss is always noticed at
// the next read.
import { closeSync, openSync, readdirSync } from 'node:fs';
// Only the raw socket: the package's index also builds its nl80211, rtnetlink and
// WireGuard tables (31 ms, 1.2 MB of heap the daemon never uses).
import type { RawNetlinkSocket } from 'netlink/dist/raw.js';
import { netlinkRawSockets } from './native.js';
import { lastErrno, lib } from './libc.js';
import { forEachAttr, forEachMessage } from './nlsock.js';
import {
  AF_NETLINK,
  NETLINK_NO_ENOBUFS,
  NETLINK_ROUTE,
  NLMSG_OVERRUN,
  RTM_DELROUTE,
  RTM_NEWROUTE,
  RTNLGRP,
  SK_MEMINFO_DROPS,
  SK_MEMINFO_VARS,
  SOL_NETLINK,
  SOL_SOCKET,
  SO_MEMINFO,
} from './uapi.js';

export { RTNLGRP } from './uapi.js';

/** Multicast groups (linux/rtnetlink.h, enum rtnetlink_groups). */

const RTM_NAMES: Record<number, string> = {
  16: 'newlink',
  17: 'dellink',
  20: 'newaddr',
  21: 'deladdr',
  24: 'newroute',
  25: 'delroute',
  32: 'newrule',
  33: 'delrule',
  80: 'newnetconf',
  81: 'delnetconf',
};
const RTA_TABLE = 15;

/**
 * A RawNetlinkSocket and its fd (the package does not expose it). The kernel
 * gives a new socket the lowest free fd, so the fd free just before creating it
 * is checked first; only if that guess fails (another thread opened a file in
 * between) is /proc/self/fd scanned. The scan alone made opening N namespaces
 * O(N^2): at 800 namespaces it was 6 of 9 s of the daemon's start-up (cpu profile).
 */
export function openRawNetlink(protocol: number, options: ConstructorParameters<typeof RawNetlinkSocket>[1]): { sock: RawNetlinkSocket; fd: number } {
  const probe = openSync('/dev/null', 'r');
  closeSync(probe);
  const sock = new (netlinkRawSockets().RawNetlinkSocket)(protocol, options);
  try {
    return { sock, fd: netlinkFd(sock.address().port, probe) };
  } catch (e) {
    sock.close();
    throw e;
  }
}

function isNetlinkPort(fd: number, port: number): boolean {
  const addr = Buffer.alloc(12);
  const len = Buffer.alloc(4);
  len.writeUInt32LE(addr.length);
  if (lib().getsockname(fd, addr, len) !== 0) return false;
  return addr.readUInt16LE(0) === AF_NETLINK && addr.readUInt32LE(4) === port;
}

/** The fd of our netlink socket bound to `port`; `hint` is tried first. */
export function netlinkFd(port: number, hint?: number): number {
  if (hint !== undefined && isNetlinkPort(hint, port)) return hint;
  const fds = readdirSync('/proc/self/fd')
    .map(Number)
    .sort((x, y) => y - x);
  for (const fd of fds) if (isNetlinkPort(fd, port)) return fd;
  throw new Error(`cannot find the fd of netlink socket ${port}`);
}

function setNoEnobufs(fd: number): void {
  const one = Buffer.alloc(4);
  one.writeInt32LE(1);
  if (lib().setsockopt(fd, SOL_NETLINK, NETLINK_NO_ENOBUFS, one, 4) !== 0) {
    throw new Error(`setsockopt(NETLINK_NO_ENOBUFS) failed: errno ${lastErrno()}`);
  }
}

/** Messages the kernel dropped on this socket (SO_MEMINFO), since it was opened. */
export function dropCount(fd: number): number {
  const val = Buffer.alloc(4 * SK_MEMINFO_VARS);
  const len = Buffer.alloc(4);
  len.writeUInt32LE(val.length);
  if (lib().getsockopt(fd, SOL_SOCKET, SO_MEMINFO, val, len) !== 0) return 0;
  return val.readUInt32LE(4 * SK_MEMINFO_DROPS);
}

export interface RtnlEvent {
  /** newlink, dellink, newaddr, deladdr, newnetconf, delnetconf. */
  kind: string;
  ifindex?: number;
  family?: 4 | 6;
  /** Routes: the table and the protocol that made the route (source routing watches only some). */
  table?: number;
  protocol?: number;
}

export interface EventSocketHandlers {
  onEvents(events: RtnlEvent[]): void;
  /**
   * Notifications were lost (ENOBUFS: the receive queue overflowed). Nothing can
   * tell what was missed, so the whole namespace must be read again.
   */
  onOverflow(): void;
  /** Any other receive error; the socket may be unusable afterwards. */
  onError?(err: Error & { code?: string }): void;
}

export interface EventSocket {
  readonly netns: string;
  /** Joins more multicast groups (route and rule notifications, for source routing). */
  join?(groups: readonly number[]): void;
  close(): void;
}

/** Runs `fn` with the thread inside the namespace; must be synchronous. */
export type EnterNetns = <T>(fn: () => T) => T;

export interface EventSocketOptions {
  /** SO_RCVBUF; large enough that a burst (hundreds of links at boot) does not overflow. */
  recvBufferSize?: number;
}

export function parseRtnlMessages(buf: Buffer): { events: RtnlEvent[]; overrun: boolean } {
  const events: RtnlEvent[] = [];
  let overrun = false;
  forEachMessage(buf, (type, body, end) => {
    const kind = RTM_NAMES[type];
    if (type === NLMSG_OVERRUN) overrun = true;
    else if (kind) {
      const ev: RtnlEvent = { kind };
      if ((type === 20 || type === 21) && end - body >= 8) {
        // struct ifaddrmsg { u8 family, prefixlen, flags, scope; u32 index }
        const fam = buf.readUInt8(body);
        if (fam === 2 || fam === 10) ev.family = fam === 2 ? 4 : 6;
        ev.ifindex = buf.readUInt32LE(body + 4);
      } else if ((type === 16 || type === 17) && end - body >= 16) {
        // struct ifinfomsg { u8 family, pad; u16 type; s32 index; u32 flags, change }
        ev.ifindex = buf.readInt32LE(body + 4);
      } else if ((type === RTM_NEWROUTE || type === RTM_DELROUTE) && end - body >= 12) {
        // struct rtmsg { u8 family, dst_len, src_len, tos, table, protocol, scope, type; u32 flags }; RTA_TABLE for tables > 255
        ev.table = buf.readUInt8(body + 4);
        ev.protocol = buf.readUInt8(body + 5);
        try {
          forEachAttr(buf, body + 12, end, (t, o, l) => {
            if (t === RTA_TABLE && l >= 4) ev.table = buf.readUInt32LE(o);
          });
        } catch {
          // A malformed attribute leaves the header's table: the event still marks the namespace.
        }
      }
      events.push(ev);
    }
  });
  return { events, overrun };
}

/**
 * Opens one NETLINK_ROUTE socket inside the namespace and joins the link,
 * address and netconf groups. One socket per namespace: the cost of watching a
 * namespace is one fd and no timers.
 */
export function openEventSocket(
  netns: string,
  enter: EnterNetns,
  handlers: EventSocketHandlers,
  opts: EventSocketOptions = {},
): EventSocket {
  // Loaded before entering: the namespace is left as soon as the socket exists.
  netlinkRawSockets();
  const created = enter(() => {
    const { sock: s, fd } = openRawNetlink(NETLINK_ROUTE, {
      recvBufferSize: opts.recvBufferSize ?? 1 << 20,
      sendBufferSize: 0,
    });
    try {
      // Before joining any group: from then on an overflow could arrive.
      setNoEnobufs(fd);
      for (const g of Object.values(RTNLGRP)) s.addMembership(g);
      return { s, fd };
    } catch (e) {
      s.close();
      throw e;
    }
  });
  const { s: sock, fd } = created;
  let drops = dropCount(fd);
  // The daemon stays alive through its HTTP server and watchers; an event socket
  // alone must not keep a stopping process from exiting.
  sock.unref();
  let closed = false;
  sock.on('message', (msg) => {
    if (closed) return;
    const { events, overrun } = parseRtnlMessages(msg);
    const now = dropCount(fd);
    const lost = now !== drops;
    drops = now;
    if (overrun || lost) handlers.onOverflow();
    else if (events.length > 0) handlers.onEvents(events);
  });
  sock.on('truncatedMessage', () => {
    if (!closed) handlers.onOverflow();
  });
  sock.on('error', (err) => {
    if (closed) return;
    if (err.code === 'ENOBUFS') handlers.onOverflow();
    else handlers.onError?.(err);
  });
  return {
    netns,
    join(groups) {
      if (!closed) for (const g of groups) sock.addMembership(g);
    },
    close() {
      if (closed) return;
      closed = true;
      sock.close();
    },
  };
}
