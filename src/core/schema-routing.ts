// The routing half of a namespace entry: `sourceRouting` (one routing table per
// uplink and a policy rule per endpoint source address) and what happens to the
// endpoints of a link that lost carrier (`linkDown`, `linkDownHold`).
//
// Why source routing at all: a subflow from a second address leaves by the
// default route unless a rule sends it out of that address's own interface; a
// gateway with strict ingress filtering then drops it, and the join fails.
import { isIP } from 'node:net';
import { z } from 'zod';
import { formatDuration, parseDuration } from './duration.js';

/** Tables the kernel reserves: unspec (0), default (253), main (254), local (255). */
export const RESERVED_TABLES: ReadonlyMap<number, string> = new Map([
  [0, 'unspec'],
  [253, 'default'],
  [254, 'main'],
  [255, 'local'],
]);
export const MAX_TABLE = 4294967295;

/**
 * Rule priority when none is declared. Below the main table's 32766 (so the
 * rule is consulted first) and well away from the 32765, 32764, ... that
 * `ip rule add` picks for rules added without one.
 */
export const DEFAULT_RULE_PRIORITY = 10000;
export const DEFAULT_LINK_DOWN_HOLD_MS = 3000;
/** An hour: longer is a typo, and a link that flaps that slowly is down. */
export const MAX_LINK_DOWN_HOLD_MS = 3_600_000;

const table = z
  .number()
  .int()
  .superRefine((v, ctx) => {
    const reserved = RESERVED_TABLES.get(v);
    if (reserved !== undefined) {
      ctx.addIssue({
        code: 'custom',
        message: `routing table ${v} is the kernel's \`${reserved}\` table; the tool keeps tables of its own`,
        params: { code: 'reserved-table', hint: 'pick an unused table, e.g. 101 (1..252 or 256..4294967295)' },
      });
    } else if (v < 1 || v > MAX_TABLE) {
      ctx.addIssue({
        code: 'custom',
        message: `routing table ${v} is out of range: must be 1..${MAX_TABLE}`,
        params: { code: 'out-of-range', hint: 'pick an unused table, e.g. 101' },
      });
    }
  })
  .describe('Routing table the tool keeps for this interface: 1..4294967295 except 253, 254, 255; one table per interface.')
  // A refinement does not reach the JSON Schema; say the range here.
  .meta({ minimum: 1, maximum: MAX_TABLE });

function gatewayOf(family: 4 | 6) {
  const example = family === 4 ? '198.51.100.1' : '2001:db8::1';
  return z
    .string()
    .superRefine((v, ctx) => {
      const f = isIP(v);
      if (f === family) return;
      const what = f === 0 ? 'is not an IP address' : `is an IPv${f} address`;
      const hint =
        f === 0 ? `write the next hop's address alone, e.g. ${example}` : family === 4 ? 'put an IPv6 next hop under `gateway6`' : 'put an IPv4 next hop under `gateway`';
      ctx.addIssue({ code: 'custom', message: `${family === 4 ? 'gateway' : 'gateway6'} "${v}" ${what}; it must be IPv${family}`, params: { hint } });
    })
    .describe(
      family === 4
        ? 'IPv4 next hop of the default route in this table (default via GATEWAY dev IFACE). Without it the table holds only the connected prefixes.'
        : 'IPv6 next hop of the default route in this table; a link-local address is fine.',
    );
}

export const sourceRouteSchema = z
  .strictObject({
    table,
    gateway: gatewayOf(4).optional(),
    gateway6: gatewayOf(6).optional(),
    priority: z
      .number()
      .int()
      .superRefine((v, ctx) => {
        if (v >= 1 && v <= 32765) return;
        ctx.addIssue({
          code: 'custom',
          message: `rule priority ${v} is out of range: must be 1..32765 (0 is the local table's rule, 32766 the main table's)`,
          params: { code: 'out-of-range', hint: `leave it out for ${DEFAULT_RULE_PRIORITY}, or pick one below 32766` },
        });
      })
      .optional()
      .describe(`Priority (ip rule pref) of the \`from ADDR lookup TABLE\` rules, 1..32765 (default ${DEFAULT_RULE_PRIORITY}).`)
      .meta({ minimum: 1, maximum: 32765, default: DEFAULT_RULE_PRIORITY }),
  })
  .describe(
    'One uplink: the table holds its connected prefixes and a default route via its gateway; every endpoint address on it gets `from ADDR lookup TABLE`.',
  );

/** Interface name -> its table; a table used by two interfaces is refused. */
export function sourceRoutingSchema<K extends z.ZodType<string>>(key: K) {
  return z
    .record(key, sourceRouteSchema)
    .superRefine((map, ctx) => {
      const seen = new Map<number, string>();
      for (const [iface, r] of Object.entries(map)) {
        const other = seen.get(r.table);
        if (other !== undefined) {
          ctx.addIssue({
            code: 'custom',
            path: [iface, 'table'],
            message: `routing table ${r.table} of ${iface} is already the table of ${other}`,
            params: { code: 'shared-table', hint: 'give every interface a table of its own (its default route would replace the other one)' },
          });
        } else seen.set(r.table, iface);
      }
    })
    .describe(
      'Source routing per interface: a routing table with its connected prefixes and default route, and a rule per endpoint address on it. Removing an interface removes only what the tool created.',
    );
}

export const LINK_DOWN_POLICIES = ['withdraw', 'keep'] as const;
export type LinkDownPolicy = (typeof LINK_DOWN_POLICIES)[number];

export const linkDownSchema = z
  .enum(LINK_DOWN_POLICIES)
  .meta({ default: 'withdraw' })
  .describe(
    'withdraw (default): `watch` deletes the endpoints of an interface that has been without carrier (or down) for `linkDownHold` and adds them back (same id) once carrier has been stable for 1s; `apply` keeps them and says so (it cannot tell for how long); keep: leave them.',
  );

export const linkDownHoldSchema = z
  .string()
  .superRefine((v, ctx) => {
    const ms = parseDuration(v);
    if (ms === undefined) {
      ctx.addIssue({
        code: 'custom',
        message: `"${v}" is not a duration`,
        params: { code: 'invalid-value', hint: 'write e.g. 3s, 500ms or 1m30s' },
      });
    } else if (ms > MAX_LINK_DOWN_HOLD_MS) {
      ctx.addIssue({
        code: 'custom',
        message: `linkDownHold ${v} is longer than ${formatDuration(MAX_LINK_DOWN_HOLD_MS)}`,
        params: { code: 'out-of-range', hint: 'a link down that long is down: use a few seconds, or `linkDown: keep`' },
      });
    }
  })
  .meta({ default: formatDuration(DEFAULT_LINK_DOWN_HOLD_MS) })
  .describe(
    'How long an interface must stay without carrier before its endpoints are withdrawn (default 3s). Shorter flaps change nothing: established subflows survive them on their own.',
  );

export type SourceRouteConfig = z.infer<typeof sourceRouteSchema>;

/** The routing part of one namespace's effective desired state, after merging. */
export interface DesiredRouting {
  /** Interface -> route; only declared interfaces, in name order. Empty: nothing declared. */
  sourceRouting: Record<string, SourceRouteConfig>;
  linkDown: LinkDownPolicy;
  linkDownHoldMs: number;
}

/** Canonical form of one interface's route: fixed key order. */
export function normalizeSourceRoute(r: SourceRouteConfig): SourceRouteConfig {
  const out: SourceRouteConfig = { table: r.table };
  if (r.gateway !== undefined) out.gateway = r.gateway;
  if (r.gateway6 !== undefined) out.gateway6 = r.gateway6;
  if (r.priority !== undefined) out.priority = r.priority;
  return out;
}

export function orderedSourceRouting(m: Record<string, SourceRouteConfig>): Record<string, SourceRouteConfig> {
  const out: Record<string, SourceRouteConfig> = {};
  for (const k of Object.keys(m).sort()) out[k] = normalizeSourceRoute(m[k]!);
  return out;
}
