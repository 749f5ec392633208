// The words the reconciler uses for what it manages, defined once: the endpoint
// cap, rp_filter names and values, which net.mptcp.* sysctl came with which
// kernel, and how an operation is described in logs and errors. Pure: no I/O.
import { sortFlags, type FlagName } from './flags.js';
import type { MptcpKey } from './schema.js';
import type { Operation } from './model.js';

/** The in-kernel path manager holds at most this many endpoints per namespace. */
export const MAX_ENDPOINTS = 8;

/** rp_filter names, in the order of their values 0, 1, 2 (the only values the kernel acts on). */
export const RP_FILTER_NAMES = ['off', 'strict', 'loose'] as const;
export type RpFilterName = (typeof RP_FILTER_NAMES)[number];

/** rp_filter values by name. */
export const RP_FILTER_VALUES: Readonly<Record<RpFilterName, 0 | 1 | 2>> = { off: 0, strict: 1, loose: 2 };

/**
 * A name stays a name; a value becomes its name, or stays a number when it has
 * none (the kernel keeps 3, 4, ...), so that a YAML view shows it as a number.
 */
export function rpFilterLabel(value: RpFilterName | number): RpFilterName | number {
  return typeof value === 'string' ? value : (RP_FILTER_NAMES[value] ?? value);
}

/** "loose" for 2; any other raw value as its number. */
export function rpFilterName(value: number): string {
  return String(rpFilterLabel(value));
}

/** The value of an rp_filter name, or undefined for anything that is not one. */
export function rpFilterValue(name: unknown): 0 | 1 | 2 | undefined {
  return typeof name === 'string' && Object.hasOwn(RP_FILTER_VALUES, name) ? RP_FILTER_VALUES[name as RpFilterName] : undefined;
}

/** How a net.mptcp.* file holds its value: 0/1, a decimal, or a word. */
export type SysctlKind = 'bool' | 'int' | 'string';

/**
 * The net.mptcp.* sysctls, one row each: the kernel's file name, how its value
 * is held, and the release that added it. The rows are in the order they are
 * written: `enabled` and the path manager first, since the others only matter
 * once MPTCP is on and its path manager chosen.
 */
export const SYSCTLS: Readonly<Record<MptcpKey, { name: string; kind: SysctlKind; since: string }>> = {
  enabled: { name: 'enabled', kind: 'bool', since: '5.6' },
  pathManager: { name: 'path_manager', kind: 'string', since: '6.15 (or 5.19 through pm_type)' },
  addAddrTimeout: { name: 'add_addr_timeout', kind: 'int', since: '5.11' },
  checksumEnabled: { name: 'checksum_enabled', kind: 'bool', since: '5.14' },
  allowJoinInitialAddrPort: { name: 'allow_join_initial_addr_port', kind: 'bool', since: '5.14' },
  staleLossCnt: { name: 'stale_loss_cnt', kind: 'int', since: '5.15' },
  scheduler: { name: 'scheduler', kind: 'string', since: '6.6' },
  closeTimeout: { name: 'close_timeout', kind: 'int', since: '6.7' },
  blackholeTimeout: { name: 'blackhole_timeout', kind: 'int', since: '6.12' },
  synRetransBeforeTcpFallback: { name: 'syn_retrans_before_tcp_fallback', kind: 'int', since: '6.15' },
};

const column = <C extends 'name' | 'kind' | 'since'>(c: C) =>
  Object.fromEntries(Object.entries(SYSCTLS).map(([k, row]) => [k, row[c]])) as Readonly<Record<MptcpKey, (typeof SYSCTLS)[MptcpKey][C]>>;

/** Key as in the config file -> name under /proc/sys/net/mptcp. */
export const SYSCTL_NAMES = column('name');
/** The kernel release that added each net.mptcp.* sysctl. */
export const SYSCTL_SINCE = column('since');
export const SYSCTL_KINDS = column('kind');
/** Sysctls in the order they are written (the rows' order). */
export const SYSCTL_ORDER: readonly MptcpKey[] = Object.keys(SYSCTLS) as MptcpKey[];

/** "192.0.2.1", "192.0.2.1 port 10000". */
export function endpointLabel(ep: { address: string; port?: number | undefined }): string {
  return `${ep.address}${ep.port ? ` port ${ep.port}` : ''}`;
}

function endpointText(ep: { address: string; port?: number | undefined; dev?: string | undefined }): string {
  return `${ep.address}${ep.port !== undefined ? ` port ${ep.port}` : ''}${ep.dev ? ` dev ${ep.dev}` : ''}`;
}

function flagList(flags: readonly FlagName[]): string {
  return flags.length ? `[${sortFlags(flags).join(', ')}]` : '[]';
}

/** The plan's line: what changes from what to what, in the words of `ip mptcp` where there is one. */
function describeChange(op: Operation): string {
  switch (op.op) {
    case 'add':
      return `add endpoint ${endpointText(op.endpoint)}${op.endpoint.id !== undefined ? ` id ${op.endpoint.id}` : ''} flags ${flagList(op.endpoint.flags)}`;
    case 'delete':
      return `delete endpoint id ${op.id} (${endpointText(op.endpoint)})${op.via === 'flush' ? ', flushed together' : ''}`;
    case 'set-flags': {
      const parts: string[] = [];
      if (op.from.backup !== op.backup) parts.push(`backup ${op.from.backup} -> ${op.backup}`);
      if (op.from.fullmesh !== op.fullmesh) parts.push(`fullmesh ${op.from.fullmesh} -> ${op.fullmesh}`);
      return `set-flags id ${op.id} (${endpointText(op.endpoint)}): ${parts.join(', ') || 'backup/fullmesh unchanged'}`;
    }
    case 'set-limits': {
      const parts: string[] = [];
      if (op.subflows !== undefined) parts.push(`subflows ${op.from.subflows} -> ${op.subflows}`);
      if (op.addAddrAccepted !== undefined) parts.push(`addAddrAccepted ${op.from.addAddrAccepted} -> ${op.addAddrAccepted}`);
      return `set-limits ${parts.join(', ')}`;
    }
    case 'set-sysctl':
      return `set-sysctl ${op.sysctl} ${op.from !== undefined ? `${String(op.from)} -> ` : ''}${String(op.value)}`;
    case 'set-rp-filter':
      return `set-rp-filter ${op.iface} ${op.from !== undefined ? `${rpFilterLabel(op.from)} -> ` : ''}${rpFilterLabel(op.value)}`;
  }
}

/**
 * One line for an operation. `short` names what is touched (error messages:
 * "set-sysctl net.mptcp.enabled"); `full` also says the new value (logs:
 * "set-sysctl net.mptcp.enabled=1"); `plan` says what changes from what, as
 * `plan` and `apply` print it ("set-sysctl enabled 0 -> 1").
 */
export function describeOperation(op: Operation, detail: 'short' | 'full' | 'plan' = 'full'): string {
  if (detail === 'plan') return describeChange(op);
  const full = detail === 'full';
  switch (op.op) {
    case 'add':
      return `add ${endpointLabel(op.endpoint)}`;
    case 'delete':
    case 'set-flags':
      return `${op.op} ${endpointLabel(op.endpoint)} id ${op.id}`;
    case 'set-limits':
      if (!full) return 'set-limits';
      return `set-limits${op.subflows !== undefined ? ` subflows ${op.subflows}` : ''}${op.addAddrAccepted !== undefined ? ` add_addr_accepted ${op.addAddrAccepted}` : ''}`;
    case 'set-sysctl':
      return full ? `set-sysctl ${op.sysctl}=${String(op.value)}` : `set-sysctl ${op.sysctl}`;
    case 'set-rp-filter':
      return full ? `set-rp-filter ${op.iface}=${op.value}` : `set-rp-filter ${op.iface}`;
  }
}
