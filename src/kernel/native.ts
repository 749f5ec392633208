// The two native addons (koffi for libc calls, netlink for event sockets) are
// loaded on first use rather than imported: `validate` and `render` need neither,
// and the CLI's start-up snapshot (src/cli/snapshot.ts) can hold every module of
// the CLI only if none of them loads an addon while it is evaluated (a snapshot
// cannot carry native code; the addon is loaded in the process that runs).
import { createRequire } from 'node:module';
import type Koffi from 'koffi';
import type * as NetlinkRaw from 'netlink/dist/raw.js';

let load: NodeJS.Require | undefined;

function addon<T>(id: string): T {
  load ??= createRequire(import.meta.url);
  return load(id) as T;
}

let koffiModule: typeof Koffi | undefined;
let netlinkRaw: typeof NetlinkRaw | undefined;

export function koffi(): typeof Koffi {
  return (koffiModule ??= addon<typeof Koffi>('koffi'));
}

export function netlinkRawSockets(): typeof NetlinkRaw {
  return (netlinkRaw ??= addon<typeof NetlinkRaw>('netlink/dist/raw.js'));
}
