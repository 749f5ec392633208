// The words the reconciler uses for what it manages, defined once: the endpoint
// cap, rp_filter names and values, which net.mptcp.* sysctl came with which
// kernel, and how an operation is described in logs and errors. Pure: no I/O.
import type { MptcpKey, RpFilterName } from './schema.js';
import type { Operation } from './model.js';

/** The in-kernel path manager holds at most this many endpoints per namespace. */
export const MAX_ENDPOINTS = 8;

/** rp_filter values by name (0, 1, 2: the only values the kernel acts on). */
export const RP_FILTER_VALUES: Readonly<Record<RpFilterName, 0 | 1 | 2>> = { off: 0, strict: 1, loose: 2 };
export const RP_FILTER_NAMES = ['off', 'strict', 'loose'] as const satisfies readonly RpFilterName[];

/** "loose" for 2; any other raw value (the kernel keeps 3, 4, ...) as its number. */
export function rpFilterName(value: number): string {
  return RP_FILTER_NAMES[value] ?? String(value);
}

/** The kernel release that added each net.mptcp.* sysctl. */
export const SYSCTL_SINCE: Readonly<Record<MptcpKey, string>> = {
  enabled: '5.6',
  pathManager: '6.15 (or 5.19 through pm_type)',
  addAddrTimeout: '5.11',
  checksumEnabled: '5.14',
  allowJoinInitialAddrPort: '5.14',
  staleLossCnt: '5.15',
  scheduler: '6.6',
  closeTimeout: '6.7',
  blackholeTimeout: '6.12',
  synRetransBeforeTcpFallback: '6.15',
};

/** "192.0.2.1", "192.0.2.1 port 10000". */
export function endpointLabel(ep: { address: string; port?: number | undefined }): string {
  return `${ep.address}${ep.port ? ` port ${ep.port}` : ''}`;
}

/**
 * One line for an operation. `short` names what is touched (error messages:
 * "set-sysctl net.mptcp.enabled"); `full` also says the new value (logs:
 * "set-sysctl net.mptcp.enabled=1").
 */
export function describeOperation(op: Operation, detail: 'short' | 'full' = 'full'): string {
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
