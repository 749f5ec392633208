// The desired-state file format (docs/design.md#the-config-contract). This zod schema is the single
// source of the config types (z.infer below) and of schemas/*.schema.json.
// Rules that span several keys of one endpoint live in superRefine so that the
// error points at the endpoint; rules that span a whole namespace after merging
// live in merge.ts.
import { isIP } from 'node:net';
import { z } from 'zod';
import { canonicalAddress } from './address.js';
import { configInterfaceNameProblem, netnsPatternProblem } from './names.js';
import { RP_FILTER_NAMES } from './vocabulary.js';
import { linkDownHoldSchema, linkDownSchema, sourceRoutingSchema } from './schema-routing.js';
export { configInterfaceNameProblem, interfaceNameProblem, netnsPatternProblem } from './names.js';

// The characters a config may not use in names (see configInterfaceNameProblem),
// as a regex class body, shared by the JSON Schema patterns below.
const FORBIDDEN_CHARS = String.raw`/\s;&|$\x60'"<>()\\\x00-\x1f\x7f`;
const IFNAME_PATTERN = String.raw`^(?!\.\.?$)[^:${FORBIDDEN_CHARS}]+$`;

const interfaceName = z
  .string()
  .superRefine((v, ctx) => {
    const p = configInterfaceNameProblem(v);
    if (p)
      ctx.addIssue({
        code: 'custom',
        message: `interface name "${v}" ${p}`,
        params: { hint: 'use the name `ip link` shows, e.g. eth0' },
      });
  })
  // What JSON Schema can say of the rule above, for editors (length in characters, not bytes).
  .meta({ minLength: 1, maxLength: 15, pattern: IFNAME_PATTERN })
  .describe('Interface name as the kernel accepts it: 1-15 bytes, no "/", ":" or whitespace.');

/**
 * Addresses the kernel takes as an endpoint but that can never work as one: it
 * would announce them to peers (ADD_ADDR) or bind subflows to them. Checked on
 * the canonical form, so ::ffff:127.0.0.1 is loopback too.
 */
function unusableAddress(canon: string): string | undefined {
  if (!canon.includes(':')) {
    const [a, b, c, d] = canon.split('.').map(Number) as [number, number, number, number];
    if (a === 0) return canon === '0.0.0.0' ? 'the unspecified address' : 'in 0.0.0.0/8, which no host may use as a source';
    if (a === 127) return 'a loopback address';
    if (a >= 224 && a <= 239) return 'a multicast address';
    if (a === 255 && b === 255 && c === 255 && d === 255) return 'the broadcast address';
    return undefined;
  }
  if (canon === '::') return 'the unspecified address';
  if (canon === '::1') return 'the loopback address';
  if (/^ff[0-9a-f]{2}:/.test(canon)) return 'a multicast address';
  return undefined;
}

/** IPv6 link-local (fe80::/10): usable only on one link, so only with `dev`. */
export function isLinkLocalV6(address: string): boolean {
  return /^fe[89ab][0-9a-f]:/.test(canonicalAddress(address));
}

/** An IPv4 or IPv6 address without a zone id (the kernel has no place for one). */
export function addressProblem(v: string): string | undefined {
  if (v.includes('%')) return `address "${v}" has a zone id; MPTCP endpoints take a plain address (drop "%${v.split('%')[1]}")`;
  if (v.includes('/')) return `address "${v}" has a prefix length; give the address alone (e.g. "${v.split('/')[0]}")`;
  if (isIP(v) === 0) return `"${v}" is not a valid IPv4 or IPv6 address`;
  const bad = unusableAddress(canonicalAddress(v));
  if (bad) return `address "${v}" is ${bad}; peers could never reach an endpoint there`;
  return undefined;
}

// JSON Schema for the same rules. The pattern is a necessary condition any
// validator applies (editors rarely check `format`); the formats finish the job
// where supported. `not` catches the usual spellings of the unusable addresses.
const OCTET = '(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])';
const IPV4 = `${OCTET}(\\.${OCTET}){3}`;
const ADDRESS_JSON_SCHEMA = {
  pattern: `^(${IPV4}|[0-9A-Fa-f:]*:[0-9A-Fa-f:]*(${IPV4})?)$`,
  anyOf: [{ format: 'ipv4' }, { format: 'ipv6' }],
  not: {
    anyOf: [
      { pattern: '^(::[fF]{4}:)?(0|127|22[4-9]|23[0-9])\\.' },
      { pattern: '^(::[fF]{4}:)?255\\.255\\.255\\.255$' },
      { pattern: '^(::|::1|0:0:0:0:0:0:0:[01])$' },
      { pattern: '^[fF][fF][0-9a-fA-F]{2}:' },
    ],
  },
};
const LINK_LOCAL_V6_PATTERN = '^[fF][eE][89abAB][0-9a-fA-F]:';

const address = z
  .string()
  .superRefine((v, ctx) => {
    const p = addressProblem(v);
    if (p)
      ctx.addIssue({
        code: 'custom',
        message: p,
        params: { hint: 'write a unicast address the node has (see `ip -br addr` there), e.g. 192.0.2.10 or 2001:db8::10' },
      });
  })
  .meta(ADDRESS_JSON_SCHEMA)
  .describe('IPv4 or IPv6 address of the endpoint, without prefix length or zone id; not unspecified, loopback, multicast or broadcast. IPv6 link-local (fe80::/10) only with `dev`.');

export const CONFIG_FLAG_NAMES = ['signal', 'subflow', 'backup', 'fullmesh', 'laminar'] as const;
export type ConfigFlagName = (typeof CONFIG_FLAG_NAMES)[number];

// Each subschema names the properties it requires, so that strict validators
// (ajv --strict) accept the schema.
const req = (...keys: string[]) => ({ required: keys, properties: Object.fromEntries(keys.map((k) => [k, true])) });
const hasFlag = (f: ConfigFlagName) => ({ required: ['flags'], properties: { flags: { type: 'array', contains: { const: f } } } });

/** The rules of the refinement below that JSON Schema can express, for editors. */
const ENDPOINT_RULES = [
  { anyOf: [req('address'), req('dev')] },
  { if: req('family'), then: { ...req('dev'), not: req('address') } },
  { not: { allOf: [hasFlag('signal'), hasFlag('fullmesh')] } },
  { if: hasFlag('fullmesh'), then: hasFlag('subflow') },
  { if: req('port'), then: { allOf: [hasFlag('signal'), { not: hasFlag('subflow') }] } },
  {
    if: { required: ['address'], properties: { address: { type: 'string', pattern: LINK_LOCAL_V6_PATTERN } } },
    then: req('dev'),
  },
];

export const endpointSchema = z
  .strictObject({
    address: address.optional(),
    dev: interfaceName
      .optional()
      .describe(
        'Interface the endpoint is bound to. Without `address`: one endpoint per global address of this interface, following address changes.',
      ),
    family: z
      .enum(['ipv4', 'ipv6', 'any'])
      .optional()
      .describe('Only for an address-less `dev` endpoint: which address families of the interface to use (default any).'),
    port: z
      .number()
      .int()
      .min(1)
      .max(65535)
      .optional()
      .describe('Port to announce and listen on; only with `signal` and without `subflow` (the kernel creates a listener).'),
    id: z
      .number()
      .int()
      .min(1)
      .max(255)
      .optional()
      .describe('Pin the kernel endpoint id (1..255). Without it, apply names the id that adding the endpoints in file order would get on a fresh namespace, the same on every node.'),
    flags: z
      .array(z.enum(CONFIG_FLAG_NAMES))
      .meta({ uniqueItems: true })
      .optional()
      .describe(
        'signal: announce with ADD_ADDR; subflow: open subflows from it; backup: use only when no other path; fullmesh (with subflow, never signal): a subflow to every known peer address; laminar (6.18+).',
      ),
  })
  .superRefine((ep, ctx) => {
    const flags = ep.flags ?? [];
    const has = (f: ConfigFlagName) => flags.includes(f);
    const seen = new Set<string>();
    flags.forEach((f, i) => {
      if (seen.has(f))
        ctx.addIssue({
          code: 'custom',
          path: ['flags', i],
          message: `flag "${f}" is listed twice`,
          params: { hint: 'remove the second one' },
        });
      seen.add(f);
    });
    if (ep.address === undefined && ep.dev === undefined) {
      ctx.addIssue({
        code: 'custom',
        message: 'an endpoint needs `address`, or `dev` to take the addresses of an interface',
        params: { hint: 'add `address: 192.0.2.10` or `dev: eth0`' },
      });
    }
    if (ep.address !== undefined && ep.dev === undefined && addressProblem(ep.address) === undefined && isLinkLocalV6(ep.address)) {
      ctx.addIssue({
        code: 'custom',
        path: ['address'],
        message: `link-local address "${ep.address}" needs \`dev\`: it is only valid on one link, and subflows from it must be bound to that interface`,
        params: { hint: 'add `dev: <the interface that has the address>`, or use a global address' },
      });
    }
    if (ep.family !== undefined && (ep.address !== undefined || ep.dev === undefined)) {
      ctx.addIssue({
        code: 'custom',
        path: ['family'],
        message: '`family` is only for an endpoint with `dev` and no `address`',
        params: { hint: 'remove `family`: the address already says which family it is' },
      });
    }
    if (has('fullmesh') && has('signal')) {
      ctx.addIssue({
        code: 'custom',
        path: ['flags'],
        message: 'flags mustn\'t have both signal and fullmesh (the kernel refuses it)',
        params: { hint: 'drop `fullmesh`, or use `subflow` instead of `signal`' },
      });
    } else if (has('fullmesh') && !has('subflow')) {
      ctx.addIssue({
        code: 'custom',
        path: ['flags'],
        message: '`fullmesh` needs `subflow`',
        params: { hint: 'add `subflow` to the flags' },
      });
    }
    if (ep.port !== undefined && (!has('signal') || has('subflow'))) {
      ctx.addIssue({
        code: 'custom',
        path: ['port'],
        message: '`port` needs flags with `signal` and without `subflow` (the kernel refuses anything else)',
        params: {
          hint: has('signal') ? 'remove `subflow` from the flags, or remove `port`' : 'add `signal` to the flags, or remove `port`',
        },
      });
    }
  })
  .meta({ allOf: ENDPOINT_RULES })
  .describe('One MPTCP endpoint. Its identity is (address, port); `id` only pins the kernel id.');

export { RP_FILTER_NAMES, type RpFilterName } from './vocabulary.js';

export const rpFilterValueSchema = z
  .union([z.enum(RP_FILTER_NAMES), z.literal(0), z.literal(1), z.literal(2)], {
    error: 'rp_filter must be off, strict or loose (or 0, 1, 2)',
  })
  .describe('off (0), strict (1) or loose (2). MPTCP needs loose or off on interfaces it uses.');

export const limitsSchema = z
  .strictObject({
    subflows: z
      .number()
      .int()
      .min(0)
      .max(8)
      .optional()
      .describe('Limit of additional subflows created and accepted per connection (kernel default 2, max 8).'),
    addAddrAccepted: z
      .number()
      .int()
      .min(0)
      .max(8)
      .optional()
      .describe('Limit of ADD_ADDR received that result in new subflows per connection (kernel default 0, max 8).'),
  })
  .describe('MPTCP path-manager limits (ip mptcp limits). Only declared keys are touched.');

const u8 = (d: string) => z.number().int().min(0).max(255).describe(d);

/** net.mptcp.* sysctls, keyed as in the file; see SYSCTL_NAMES for the kernel names. */
export const mptcpSchema = z
  .strictObject({
    enabled: z.boolean().optional().describe('net.mptcp.enabled: allow MPTCP sockets to be created (kernel default true).'),
    pathManager: z
      .enum(['kernel', 'userspace'])
      .optional()
      .describe('net.mptcp.path_manager (pm_type on kernels before 6.15, 5.19+): in-kernel or userspace path manager (kernel default kernel).'),
    addAddrTimeout: z
      .number()
      .int()
      .min(0)
      .max(2147483)
      .optional()
      .describe('net.mptcp.add_addr_timeout, seconds before an unacknowledged ADD_ADDR is resent; 0 never resends (kernel default 120).'),
    checksumEnabled: z.boolean().optional().describe('net.mptcp.checksum_enabled: use DSS checksums (kernel default false).'),
    allowJoinInitialAddrPort: z
      .boolean()
      .optional()
      .describe('net.mptcp.allow_join_initial_addr_port: accept MP_JOIN to the initial address and port; false behind a load balancer (kernel default true).'),
    staleLossCnt: z
      .number()
      .int()
      .min(0)
      .max(4294967295)
      .optional()
      .describe('net.mptcp.stale_loss_cnt: retransmission intervals before a subflow is considered stale (kernel default 4).'),
    scheduler: z
      .string()
      .regex(/^[A-Za-z0-9_-]{1,15}$/, 'a scheduler name is 1-15 letters, digits, "_" or "-"')
      .optional()
      .describe('net.mptcp.scheduler (6.6+): packet scheduler, one of net.mptcp.available_schedulers (kernel default "default").'),
    closeTimeout: z
      .number()
      .int()
      .min(0)
      .max(2147483)
      .optional()
      .describe('net.mptcp.close_timeout (6.7+), seconds an orphaned connection lingers after close (kernel default 60).'),
    blackholeTimeout: z
      .number()
      .int()
      .min(0)
      .max(2147483647)
      .optional()
      .describe('net.mptcp.blackhole_timeout (6.12+), seconds MPTCP stays disabled after a blackhole is detected; 0 disables the detection (kernel default 3600).'),
    synRetransBeforeTcpFallback: u8(
      'net.mptcp.syn_retrans_before_tcp_fallback (6.15+): SYN retransmissions with MPTCP options before falling back to TCP; 128+ never drops them (kernel default 2).',
    ).optional(),
  })
  .describe('net.mptcp.* sysctls of the namespace. Only declared keys are touched.');

export type MptcpKey = keyof z.infer<typeof mptcpSchema>;

/** File key -> sysctl name under /proc/sys/net/mptcp. */
export { SYSCTL_NAMES } from './vocabulary.js';

// The JSON Schema side of netnsPatternProblem (length in characters, not bytes).
const NETNS_CHAR = `[^\\[\\]${FORBIDDEN_CHARS}]`;
const NETNS_PATTERN = `^(?!\\.)(?!.*\\.\\.)(${NETNS_CHAR}|\\[${NETNS_CHAR}*\\])+$`;

const netnsPattern = z
  .string()
  .superRefine((v, ctx) => {
    const p = netnsPatternProblem(v);
    if (p)
      ctx.addIssue({
        code: 'custom',
        message: `netns "${v}" ${p}`,
        params: { hint: 'use "host", a name from `ip netns list`, or a glob such as "cni-*" or "pod-[0-9]*"' },
      });
  })
  .meta({ minLength: 1, maxLength: 255, pattern: NETNS_PATTERN })
  .describe('"host" (the namespace the reconciler runs in), a name in /run/netns, or a glob over those names.');

// A key check rather than an entry refinement, so that it is reported together
// with the entry's other problems.
const rpFilterKey = z
  .string()
  .superRefine((key, ctx) => {
    if (key === 'all' || key === 'default') return;
    const p = configInterfaceNameProblem(key);
    if (p)
      ctx.addIssue({
        code: 'custom',
        message: `interface name "${key}" ${p}`,
        params: { hint: 'use an interface name as `ip link` shows it, or `all` / `default`' },
      });
  })
  .meta({ minLength: 1, maxLength: 15, pattern: IFNAME_PATTERN })
  .describe('Interface name, or `all` / `default`.');

export const CONFLICT_POLICIES = ['fail', 'warn', 'ignore'] as const;

export const namespaceEntrySchema = z
  .strictObject({
    netns: netnsPattern,
    nodes: z
      .array(z.string().min(1).max(253).describe('Node-name glob, e.g. "edge-*".'))
      .optional()
      .describe('Node-name globs this entry applies to (default: every node).'),
    mptcp: mptcpSchema.optional(),
    limits: limitsSchema.optional(),
    endpoints: z
      .array(endpointSchema)
      // One entry alone may not exceed the kernel's 8 (merging is checked by `validate`).
      .meta({ maxItems: 8, uniqueItems: true })
      .optional()
      .describe('Endpoints wanted in the namespace. Leave the key out to leave endpoints alone.'),
    rpFilter: z
      .record(rpFilterKey, rpFilterValueSchema)
      .optional()
      .describe('net.ipv4.conf.<iface>.rp_filter per interface, plus `all` and `default`. Only declared interfaces are touched.'),
    sourceRouting: sourceRoutingSchema(interfaceName).optional(),
    linkDown: linkDownSchema.optional(),
    linkDownHold: linkDownHoldSchema.optional(),
    prune: z
      .boolean()
      .optional()
      .meta({ default: true })
      .describe('Remove live endpoints that are not declared (default true). Kernel-created implicit endpoints are never removed.'),
    conflicts: z
      .enum(CONFLICT_POLICIES)
      .optional()
      .meta({ default: 'fail' })
      .describe('What to do when another manager (NetworkManager, mptcpd, ...) also writes this namespace: fail (default), warn, ignore.'),
  })
  .describe('Desired state for every namespace matching `netns` on every node matching `nodes`.');

export const configSchema = z
  .strictObject({
    version: z.literal(1).describe('Format version; always 1.'),
    namespaces: z.array(namespaceEntrySchema).describe('Entries, merged in file order.'),
  })
  .describe('mptcp-reconciler desired state');

export type Config = z.infer<typeof configSchema>;
export type NamespaceEntry = z.infer<typeof namespaceEntrySchema>;
export type EndpointConfig = z.infer<typeof endpointSchema>;
export type LimitsConfig = z.infer<typeof limitsSchema>;
export type MptcpConfig = z.infer<typeof mptcpSchema>;
export type RpFilterValue = z.infer<typeof rpFilterValueSchema>;
export type ConflictPolicy = (typeof CONFLICT_POLICIES)[number];
