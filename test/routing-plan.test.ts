// Golden source-routing plans: every directory under test/fixtures/routing holds
// live.yaml (links, addresses, routes, rules; omitted fields take defaults),
// desired.yaml (a config entry as a user writes it: endpoints and sourceRouting)
// and plan.yaml (the expected operations, one line each, in order). Each case is
// also applied to a small model of the kernel's tables (which refuses what the
// kernel refuses: a second route with the same key, a delete naming our
// protocol on someone else's route) and planned again: a complete plan leaves
// nothing to do. A property test does the same over generated states.
//
// UPDATE_GOLDEN=1 npx vitest run test/routing-plan.test.ts rewrites plan.yaml;
// review every rewritten file: they are the specification, not snapshots.
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { namespaceEntrySchema } from '../src/core/schema.js';
import { orderedSourceRouting } from '../src/core/schema-routing.js';
import { addressFamily } from '../src/core/address.js';
import { resolveEndpoints } from '../src/core/derive.js';
import type { DesiredNamespace, LiveNamespace } from '../src/core/model.js';
import { verifyNamespace } from '../src/core/verify.js';
import { describeRoutingOp, networkOf, planSourceRouting, RTPROT_RECONCILER } from '../src/core/source-routing.js';
import type { LiveRoute, LiveRule, RoutingInput, RoutingOp } from '../src/core/source-routing.js';

const ROOT = join(import.meta.dirname, 'fixtures', 'routing');
const UPDATE = process.env.UPDATE_GOLDEN === '1';

interface Live {
  ns: LiveNamespace;
  routes: LiveRoute[];
  rules: LiveRule[];
}

function loadLive(text: string): Live {
  const raw = (parse(text) ?? {}) as {
    links?: Record<string, unknown>[];
    addresses?: Record<string, unknown>[];
    routes?: Record<string, unknown>[];
    rules?: Record<string, unknown>[];
  };
  const ns: LiveNamespace = {
    netns: 'test',
    endpoints: [],
    limits: { subflows: 2, addAddrAccepted: 0 },
    mptcp: {},
    rpFilter: {},
    links: (raw.links ?? []).map((l) => ({ up: true, lowerUp: true, ...l })) as LiveNamespace['links'],
    addresses: (raw.addresses ?? []).map((a) => ({
      family: addressFamily(String(a.address)),
      prefixlen: 24,
      scope: 'global',
      tentative: false,
      dadfailed: false,
      deprecated: false,
      temporary: false,
      ...a,
    })) as LiveNamespace['addresses'],
  };
  const routes = (raw.routes ?? []).map((r) => {
    const dst = String(r.dst ?? 'default');
    const family = r.family === 6 || dst.includes(':') || String(r.gateway ?? '').includes(':') ? 6 : 4;
    const [net, len] = dst === 'default' ? [family === 4 ? '0.0.0.0' : '::', '0'] : dst.split('/');
    return {
      family,
      table: r.table,
      dst: net,
      dstLen: Number(len),
      ifindex: r.ifindex ?? 0,
      ...(r.gateway !== undefined && { gateway: r.gateway }),
      scope: r.scope ?? (family === 4 && len !== '0' ? 'link' : 'universe'),
      protocol: r.protocol ?? RTPROT_RECONCILER,
      other: r.other ?? false,
    } as LiveRoute;
  });
  const rules = (raw.rules ?? []).map((r) => {
    const family = String(r.src).includes(':') ? 6 : 4;
    return { family, priority: 10000, srcLen: family === 4 ? 32 : 128, protocol: RTPROT_RECONCILER, other: false, ...r } as LiveRule;
  });
  return { ns, routes, rules };
}

function inputFor(desiredText: string, live: Live): RoutingInput {
  const entry = namespaceEntrySchema.parse(parse(desiredText));
  return {
    declared: orderedSourceRouting(entry.sourceRouting ?? {}),
    links: live.ns.links,
    addresses: live.ns.addresses,
    endpoints: resolveEndpoints(entry.endpoints ?? [], live.ns).endpoints,
    routes: live.routes,
    rules: live.rules,
  };
}

const rKey = (r: { family: number; table: number; dst: string; dstLen: number }) => `${r.family}|${r.table}|${r.dst}/${r.dstLen}`;
const ruleId = (r: { family: number; priority: number; src: string; srcLen: number; table: number }) => `${r.family}|${r.priority}|${r.src}/${r.srcLen}|${r.table}`;

/** Applies operations as the kernel would; throws on what the kernel refuses. */
function applyOps(routes: LiveRoute[], rules: LiveRule[], ops: readonly RoutingOp[]): { routes: LiveRoute[]; rules: LiveRule[] } {
  let rs = [...routes];
  let us = [...rules];
  for (const op of ops) {
    if (op.op === 'add-route') {
      if (rs.some((h) => rKey(h) === rKey(op.route))) throw new Error(`EEXIST ${describeRoutingOp(op)}`);
      const { dev: _dev, ...r } = op.route;
      rs.push({ ...r, protocol: RTPROT_RECONCILER, other: false });
    } else if (op.op === 'delete-route') {
      // The delete names our protocol: a foreign route with the same key is not matched.
      rs = rs.filter((h) => !(rKey(h) === rKey(op.route) && h.protocol === RTPROT_RECONCILER && h.ifindex === op.route.ifindex));
    } else if (op.op === 'add-rule') {
      if (us.some((h) => ruleId(h) === ruleId(op.rule) && !h.other)) throw new Error(`EEXIST ${describeRoutingOp(op)}`);
      us.push({ ...op.rule, protocol: RTPROT_RECONCILER, other: false });
    } else {
      const i = us.findIndex((h) => ruleId(h) === ruleId(op.rule) && h.protocol === RTPROT_RECONCILER);
      if (i >= 0) us = us.filter((_, j) => j !== i);
    }
  }
  return { routes: rs, rules: us };
}

function render(input: RoutingInput): Record<string, unknown> {
  const p = planSourceRouting(input);
  let afterApply: string;
  try {
    const next = applyOps([...input.routes], [...input.rules], [...p.before, ...p.after]);
    const again = planSourceRouting({ ...input, ...next });
    const left = [...again.before, ...again.after];
    afterApply = left.length === 0 ? 'converged' : `not converged: ${left.map(describeRoutingOp).join('; ')}`;
  } catch (e) {
    afterApply = `kernel model refused: ${(e as Error).message}`;
  }
  return {
    before: p.before.map(describeRoutingOp),
    after: p.after.map(describeRoutingOp),
    pending: p.pending.map((x) => `${x.what}: ${x.reason}`),
    errors: p.errors,
    afterApply,
  };
}

const cases = existsSync(ROOT)
  ? readdirSync(ROOT, { withFileTypes: true })
      .filter((d) => d.isDirectory())
      .map((d) => d.name)
      .sort()
  : [];

describe('golden source-routing plans', () => {
  it('has the cases', () => {
    expect(cases.length).toBeGreaterThanOrEqual(10);
  });
  for (const name of cases) {
    it(name, () => {
      const dir = join(ROOT, name);
      const live = loadLive(readFileSync(join(dir, 'live.yaml'), 'utf8'));
      const got = render(inputFor(readFileSync(join(dir, 'desired.yaml'), 'utf8'), live));
      const file = join(dir, 'plan.yaml');
      if (UPDATE || !existsSync(file)) {
        writeFileSync(file, stringify(got, { lineWidth: 0 }));
        if (!UPDATE) throw new Error(`${file} was missing; written from the current planner: review it`);
      }
      expect(got).toEqual(parse(readFileSync(file, 'utf8')));
    });
  }
});

describe('properties', () => {
  const ifaces = ['c1', 'c2', 'c3'];
  const v4 = fc.record({ iface: fc.constantFrom(0, 1, 2), host: fc.integer({ min: 2, max: 250 }), len: fc.constantFrom(24, 30, 32) });
  const v6 = fc.record({ iface: fc.constantFrom(0, 1, 2), host: fc.integer({ min: 2, max: 250 }), len: fc.constantFrom(64, 128) });
  const route = fc.record({
    table: fc.constantFrom(101, 102, 103, 500),
    dst: fc.constantFrom('default', '198.51.100.0/24', '203.0.113.0/24', '2001:db8:1::/64', 'default6'),
    iface: fc.constantFrom(0, 1, 2),
    gw: fc.constantFrom(undefined, '198.51.100.1', '203.0.113.1'),
    foreign: fc.boolean(),
  });
  const rule = fc.record({ host: fc.integer({ min: 2, max: 250 }), table: fc.constantFrom(101, 102, 103, 500), priority: fc.constantFrom(10000, 200), foreign: fc.boolean() });
  const declared = fc.dictionary(
    fc.constantFrom(...ifaces),
    fc.record({ table: fc.constantFrom(101, 102, 103), gateway: fc.option(fc.constant('198.51.100.1'), { nil: undefined }), gateway6: fc.option(fc.constant('fe80::1'), { nil: undefined }) }),
  );

  it('a plan converges in one step, never deletes or replaces a foreign route or rule, and adds a rule only after its table is filled', () => {
    fc.assert(
      fc.property(fc.array(v4, { maxLength: 4 }), fc.array(v6, { maxLength: 2 }), fc.array(route, { maxLength: 5 }), fc.array(rule, { maxLength: 4 }), declared, fc.boolean(), (a4, a6, rs, us, decl, devEndpoints) => {
        // One table per interface, as the schema insists.
        const seen = new Set<number>();
        for (const k of Object.keys(decl)) {
          if (seen.has(decl[k]!.table)) delete decl[k];
          else seen.add(decl[k]!.table);
        }
        const links = ifaces.map((name, i) => ({ ifindex: i + 2, name, up: true, lowerUp: true }));
        const addresses = [
          ...a4.map((a) => ({ ifindex: a.iface + 2, family: 4 as const, address: `198.51.100.${a.host}`, prefixlen: a.len })),
          ...a6.map((a) => ({ ifindex: a.iface + 2, family: 6 as const, address: `2001:db8:1::${a.host.toString(16)}`, prefixlen: a.len })),
        ].map((a) => ({ ...a, scope: 'global' as const, tentative: false, dadfailed: false, deprecated: false, temporary: false }));
        const uniqAddrs = addresses.filter((a, i) => addresses.findIndex((b) => b.address === a.address) === i);
        const liveRoutes: LiveRoute[] = [];
        for (const r of rs) {
          const fam = r.dst.includes(':') || r.dst === 'default6' ? 6 : 4;
          const [dst, len] = r.dst.startsWith('default') ? [fam === 4 ? '0.0.0.0' : '::', 0] : [r.dst.split('/')[0]!, Number(r.dst.split('/')[1])];
          const lr: LiveRoute = { family: fam, table: r.table, dst, dstLen: len, ifindex: r.iface + 2, scope: fam === 4 && len ? 'link' : 'universe', protocol: r.foreign ? 4 : RTPROT_RECONCILER, other: false };
          if (fam === 4 && r.gw) lr.gateway = r.gw;
          if (!liveRoutes.some((h) => rKey(h) === rKey(lr))) liveRoutes.push(lr);
        }
        const liveRules: LiveRule[] = us.map((u) => ({ family: 4, priority: u.priority, src: `198.51.100.${u.host}`, srcLen: 32, table: u.table, protocol: u.foreign ? 3 : RTPROT_RECONCILER, other: false }));
        const ns = { netns: 't', endpoints: [], limits: { subflows: 2, addAddrAccepted: 0 }, mptcp: {}, rpFilter: {}, links, addresses: uniqAddrs };
        const endpoints = devEndpoints
          ? resolveEndpoints(ifaces.map((dev) => ({ dev, flags: ['subflow' as const] })), ns).endpoints
          : uniqAddrs.map((a) => ({ address: a.address }));
        const input: RoutingInput = { declared: decl, links, addresses: uniqAddrs, endpoints, routes: liveRoutes, rules: liveRules };
        const p = planSourceRouting(input);
        const ops = [...p.before, ...p.after];
        for (const op of ops) {
          if (op.op === 'delete-route') expect(op.route.protocol).toBe(RTPROT_RECONCILER);
          if (op.op === 'delete-rule') expect(op.rule.protocol).toBe(RTPROT_RECONCILER);
        }
        // Every add-rule's table gets its routes earlier in `before` (or already has them).
        const ruleAt = p.before.findIndex((o) => o.op === 'add-rule');
        if (ruleAt >= 0) expect(p.before.slice(ruleAt).some((o) => o.op === 'add-route' || o.op === 'delete-route')).toBe(false);
        const next = applyOps(liveRoutes, liveRules, ops);
        for (const f of [...liveRoutes.filter((r) => r.protocol !== RTPROT_RECONCILER)]) expect(next.routes).toContainEqual(f);
        for (const f of [...liveRules.filter((r) => r.protocol !== RTPROT_RECONCILER)]) expect(next.rules).toContainEqual(f);
        const again = planSourceRouting({ ...input, ...next });
        expect([...again.before, ...again.after].map(describeRoutingOp)).toEqual([]);
        expect(again.errors).toEqual(p.errors);
        // verify, written apart from the planner, agrees: converged exactly when the plan had no error.
        const desired: DesiredNamespace = {
          netns: 't',
          mptcp: {},
          limits: {},
          endpoints: devEndpoints ? ifaces.map((dev) => ({ dev, flags: ['subflow'] })) : uniqAddrs.map((a) => ({ address: a.address, flags: [] })),
          rpFilter: {},
          prune: true,
          conflicts: 'fail',
          sourceRouting: decl,
        };
        const diffs = verifyNamespace(desired, { ...ns, ...next }).differences.filter((d) => d.startsWith('sourceRouting'));
        if (p.errors.length === 0) expect(diffs).toEqual([]);
        else expect(diffs).not.toEqual([]);
        if (p.errors.length === 0) expect(verifyNamespace(desired, { ...ns, routes: liveRoutes, rules: liveRules }).differences.filter((d) => d.startsWith('sourceRouting')).length > 0).toBe(ops.length > 0);
      }),
      { numRuns: 300 },
    );
  });

  it('networkOf zeroes the host bits', () => {
    expect(networkOf('198.51.100.77', 24)).toBe('198.51.100.0');
    expect(networkOf('198.51.100.77', 30)).toBe('198.51.100.76');
    expect(networkOf('198.51.100.77', 0)).toBe('0.0.0.0');
    expect(networkOf('2001:db8:1:2:3::9', 64)).toBe('2001:db8:1:2::');
    expect(networkOf('2001:db8:1:2:3::9', 56)).toBe('2001:db8:1::');
    expect(networkOf('2001:db8:1:2:3::9', 128)).toBe('2001:db8:1:2:3::9');
  });
});
