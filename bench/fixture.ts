// A fleet of throwaway namespaces for the benchmark: each has a veth pair with
// 8 documentation addresses. Built with iproute2 (the bench may shell out; the
// product may not) and removed by exact name.
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';

export const IFACES = ['veth0', 'veth1'] as const;
/** 4 addresses per interface: 192.0.2.1-4 on veth0, 198.51.100.1-4 on veth1. */
export const ADDRESSES: { address: string; dev: (typeof IFACES)[number] }[] = [
  ...[1, 2, 3, 4].map((i) => ({ address: `192.0.2.${i}`, dev: 'veth0' as const })),
  ...[1, 2, 3, 4].map((i) => ({ address: `198.51.100.${i}`, dev: 'veth1' as const })),
];

export interface Fleet {
  prefix: string;
  names: string[];
}

function ipBatch(lines: string[], ns?: string): void {
  const args = ns ? ['-n', ns, '-batch', '-'] : ['-batch', '-'];
  const r = spawnSync('ip', args, { input: `${lines.join('\n')}\n`, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ip ${args.join(' ')} failed: ${r.stderr}`);
}

/** `tag` starts every name (an engineer's own prefix keeps side-by-side benches apart). */
export function createFleet(n: number, tag = 'mrb'): Fleet {
  const prefix = `${tag}${randomBytes(3).toString('hex')}`;
  const names = Array.from({ length: n }, (_, i) => `${prefix}-${i}`);
  const fleet = { prefix, names };
  try {
    ipBatch(names.map((ns) => `netns add ${ns}`));
    ipBatch(names.map((ns) => `link add veth0 netns ${ns} type veth peer name veth1 netns ${ns}`));
    for (const ns of names) {
      ipBatch(
        [
          'link set lo up',
          ...IFACES.map((d) => `link set ${d} up`),
          // nodad: tentative addresses are skipped by design; the bench wants them usable at once.
          ...ADDRESSES.map((a) => `addr add ${a.address}/24 dev ${a.dev} nodad`),
        ],
        ns,
      );
    }
  } catch (e) {
    destroyFleet(fleet);
    throw e;
  }
  return fleet;
}

/** Back to a new namespace's MPTCP state: no endpoints, limits 0/2, rp_filter 0. */
export function resetFleet(fleet: Fleet): void {
  for (const ns of fleet.names) {
    ipBatch(['mptcp endpoint flush', 'mptcp limits set subflows 2 add_addr_accepted 0'], ns);
  }
  const script = fleet.names
    .map((ns) => IFACES.map((d) => `ip netns exec ${ns} sh -c 'echo 0 > /proc/sys/net/ipv4/conf/${d}/rp_filter'`).join('\n'))
    .join('\n');
  execFileSync('bash', ['-c', script]);
}

export function destroyFleet(fleet: Fleet): void {
  // By exact name; ignore names already gone.
  spawnSync('ip', ['-batch', '-', '-force'], {
    input: `${fleet.names.map((ns) => `netns del ${ns}`).join('\n')}\n`,
    encoding: 'utf8',
  });
}

/** The oracle: is every namespace at the benchmark's desired state, per iproute2? */
export function checkConverged(
  fleet: Fleet,
  want: { subflows: number; addAddrAccepted: number } = { subflows: 8, addAddrAccepted: 8 },
  names: readonly string[] = fleet.names,
): { ok: boolean; problems: string[] } {
  const problems: string[] = [];
  const limitsRe = new RegExp(`add_addr_accepted ${want.addAddrAccepted} subflows ${want.subflows}\\b`);
  for (const ns of names) {
    const eps = JSON.parse(execFileSync('ip', ['-n', ns, '-j', 'mptcp', 'endpoint', 'show'], { encoding: 'utf8' }) || '[]') as {
      address: string;
      dev?: string;
      subflow?: boolean;
    }[];
    const want = ADDRESSES.map((a) => `${a.address} ${a.dev}`).sort();
    const have = eps.filter((e) => e.subflow).map((e) => `${e.address} ${e.dev}`).sort();
    if (JSON.stringify(want) !== JSON.stringify(have) || eps.length !== 8) problems.push(`${ns}: endpoints ${JSON.stringify(eps)}`);
    const limits = execFileSync('ip', ['-n', ns, 'mptcp', 'limits'], { encoding: 'utf8' });
    if (!limitsRe.test(limits)) problems.push(`${ns}: limits ${limits.trim()}`);
    const rp = execFileSync(
      'ip',
      ['netns', 'exec', ns, 'cat', ...IFACES.map((d) => `/proc/sys/net/ipv4/conf/${d}/rp_filter`)],
      { encoding: 'utf8' },
    );
    if (rp.split('\n').filter(Boolean).some((v) => v.trim() !== '2')) problems.push(`${ns}: rp_filter ${rp.replace(/\n/g, ' ')}`);
    if (problems.length > 5) break;
  }
  return { ok: problems.length === 0, problems };
}

/**
 * The desired state of the benchmark as a config file for our CLI. `derived`
 * declares veth1's endpoints as interface-derived (`dev: veth1`, no address): the
 * same 8 endpoints while veth1 keeps its 4 addresses, and one more per address
 * added later (the watch benchmark's address events).
 */
export function fleetConfig(fleet: Fleet, opts: { derived?: boolean; subflows?: number } = {}): string {
  const explicit = opts.derived ? ADDRESSES.filter((a) => a.dev !== 'veth1') : ADDRESSES;
  return [
    'version: 1',
    'namespaces:',
    `  - netns: "${fleet.prefix}-*"`,
    `    limits: { subflows: ${opts.subflows ?? 8}, addAddrAccepted: 8 }`,
    '    rpFilter: { veth0: loose, veth1: loose }',
    '    endpoints:',
    ...explicit.map((a) => `      - { address: ${a.address}, dev: ${a.dev}, flags: [subflow] }`),
    ...(opts.derived ? ['      - { dev: veth1, family: ipv4, flags: [subflow] }'] : []),
    '',
  ].join('\n');
}
