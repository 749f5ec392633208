// The few libc calls node does not offer: setns(2), unshare(2), mount(2) and
// netlink sockets. They are made synchronously on the calling (main) thread
// through koffi, which is what keeps a socket bound to the namespace the thread
// is in at that moment. The one place that loads libc: the rest of the kernel
// layer imports these.
import { constants as osConstants } from 'node:os';
import { koffi } from './native.js';

type Fn = (...args: unknown[]) => number;

export interface Libc {
  setns: Fn;
  unshare: Fn;
  mount: Fn;
  umount2: Fn;
  socket: Fn;
  bind: Fn;
  getsockname: Fn;
  setsockopt: Fn;
  getsockopt: Fn;
  send: Fn;
  recv: Fn;
  close: Fn;
}

let libc: Libc | undefined;

/** Loaded on first use, so read-only work in the host namespace does not need the FFI at all. */
export function lib(): Libc {
  if (!libc) {
    const l = koffi().load('libc.so.6');
    libc = {
      setns: l.func('int setns(int fd, int nstype)') as Fn,
      unshare: l.func('int unshare(int flags)') as Fn,
      mount: l.func('int mount(const char *src, const char *target, const char *fstype, unsigned long flags, const void *data)') as Fn,
      umount2: l.func('int umount2(const char *target, int flags)') as Fn,
      socket: l.func('int socket(int domain, int type, int protocol)') as Fn,
      bind: l.func('int bind(int fd, void *addr, uint32_t len)') as Fn,
      getsockname: l.func('int getsockname(int fd, void *addr, void *len)') as Fn,
      setsockopt: l.func('int setsockopt(int fd, int level, int name, void *val, uint32_t len)') as Fn,
      getsockopt: l.func('int getsockopt(int fd, int level, int name, void *val, void *len)') as Fn,
      send: l.func('intptr_t send(int fd, void *buf, uintptr_t len, int flags)') as Fn,
      recv: l.func('intptr_t recv(int fd, void *buf, uintptr_t len, int flags)') as Fn,
      close: l.func('int close(int fd)') as Fn,
    };
  }
  return libc;
}

export function lastErrno(): number {
  return koffi().errno();
}

const errnoNames = new Map<number, string>();
for (const [name, n] of Object.entries(osConstants.errno)) {
  // EWOULDBLOCK and EDEADLOCK alias other numbers; keep the common name.
  if (!errnoNames.has(n)) errnoNames.set(n, name);
}

export function errnoName(errno: number): string {
  return errnoNames.get(errno) ?? `errno ${errno}`;
}

const RETRYABLE = new Set(['EBUSY', 'ENOBUFS', 'EAGAIN', 'ENODEV', 'EINTR', 'ENOMEM', 'ESTALE', 'ETIMEDOUT']);

export function isRetryable(code: string): boolean {
  return RETRYABLE.has(code);
}
