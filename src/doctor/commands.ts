// The shell commands doctor suggests as fixes. A command pasted for another
// namespace must act on that namespace, never on the host's: `ip -n NS ...` and
// `ip netns exec NS sysctl ...`; the host namespace keeps the plain form. Every
// name put into a command must be one a config may declare and carry nothing a
// shell reads specially; otherwise no command is suggested at all (the prose fix
// still is), so a hostile interface or namespace name can't turn into one.
import { configInterfaceNameProblem, netnsPatternProblem } from '../core/schema.js';
import { HOST_NETNS } from '../kernel/netns.js';

/** Glob characters and a leading "-" (an option to ip/sysctl) on top of the config grammar's exclusions. */
const UNSAFE_IN_COMMAND = /[*?[\]{}~!#]|^-/;

export function safeNetnsName(name: string): boolean {
  return netnsPatternProblem(name) === undefined && !UNSAFE_IN_COMMAND.test(name) && !name.startsWith('.');
}

export function safeInterfaceName(name: string): boolean {
  return configInterfaceNameProblem(name) === undefined && !UNSAFE_IN_COMMAND.test(name);
}

/** Addresses come from the kernel in canonical text form; anything else is refused. */
function safeAddress(a: string): boolean {
  return /^[0-9a-fA-F.:]+$/.test(a);
}

/** `ip [-n NS] ARGS`, or undefined when a name in it is not safe to paste. */
export function ipCommand(netns: string, args: readonly (string | number)[], names: { ifaces?: string[]; addresses?: string[] } = {}): string | undefined {
  if (netns !== HOST_NETNS && !safeNetnsName(netns)) return undefined;
  if ((names.ifaces ?? []).some((i) => !safeInterfaceName(i))) return undefined;
  if ((names.addresses ?? []).some((a) => !safeAddress(a))) return undefined;
  return ['ip', ...(netns === HOST_NETNS ? [] : ['-n', netns]), ...args.map(String)].join(' ');
}

/**
 * `[ip netns exec NS ]sysctl -w KEY=VALUE`. An interface name is one segment of
 * the key; sysctl(8) reads "." as the separator, so a dot inside the name is
 * written as "/" (eth0.100 -> net.ipv4.conf.eth0/100.rp_filter).
 */
export function sysctlCommand(netns: string, key: readonly string[], value: string | number, iface?: string): string | undefined {
  if (netns !== HOST_NETNS && !safeNetnsName(netns)) return undefined;
  if (iface !== undefined && !safeInterfaceName(iface)) return undefined;
  const path = key.map((k) => (k === iface ? k.replaceAll('.', '/') : k)).join('.');
  return `${netns === HOST_NETNS ? '' : `ip netns exec ${netns} `}sysctl -w ${path}=${value}`;
}

/** ", or run `CMD`" when there is a command to suggest; "" when not. */
export function orRun(...cmds: (string | undefined)[]): string {
  if (cmds.length === 0 || cmds.some((c) => c === undefined)) return '';
  return `, or run \`${cmds.join('; ')}\``;
}
