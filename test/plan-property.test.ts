// Property test: over random (schema-valid) desired/live pairs, the plan applied
// to a model of the kernel's rules never fails and never holds more than 8
// endpoints; the result verifies; planning again does nothing; nothing is done
// that was not needed.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { EndpointConfig, MptcpConfig, RpFilterName } from '../src/core/schema.js';
import { endpointSchema } from '../src/core/schema.js';
import { endpointKey } from '../src/core/address.js';
import { resolveEndpoints } from '../src/core/derive.js';
import type { FlagName } from '../src/core/flags.js';
import type { DesiredNamespace, LiveAddress, LiveEndpoint, LiveNamespace, Operation } from '../src/core/model.js';
import { planNamespace } from '../src/core/plan.js';
import { verifyNamespace } from '../src/core/verify.js';
import { KernelModel } from './support/kernel-model.js';

const LINKS = [
  { ifindex: 1, name: 'lo', up: true, lowerUp: true },
  { ifindex: 2, name: 'eth0', up: true, lowerUp: true },
  { ifindex: 3, name: 'eth1', up: true, lowerUp: true },
  { ifindex: 4, name: 'usb0', up: true, lowerUp: false },
];
const ADDRS = ['192.0.2.1', '192.0.2.2', '192.0.2.3', '198.51.100.1', '198.51.100.2', '2001:db8::1', '2001:db8::2', '203.0.113.7'];
const PORTS = [undefined, undefined, undefined, 10000, 10001];
const IDS = fc.integer({ min: 1, max: 10 });

/** Flags the kernel would hold for an endpoint with this port (pm_kernel.c). */
function liveFlags(port: number | undefined) {
  if (port !== undefined) return fc.subarray(['backup', 'laminar'] as FlagName[]).map((f) => ['signal', ...f] as FlagName[]);
  return fc.oneof(
    fc.subarray(['signal', 'subflow', 'backup', 'laminar'] as FlagName[]),
    fc.subarray(['backup', 'laminar'] as FlagName[]).map((f) => ['subflow', 'fullmesh', ...f] as FlagName[]),
    fc.constantFrom<FlagName[]>(['implicit'], ['implicit', 'backup']),
  ).filter((f) => !(f.includes('implicit') && port !== undefined));
}

const liveEndpointsArb = fc
  .uniqueArray(
    fc.record({ address: fc.constantFrom(...ADDRS), port: fc.constantFrom(...PORTS), id: fc.integer({ min: 1, max: 12 }) }),
    { maxLength: 8, selector: (e) => endpointKey(e.address, e.port) },
  )
  .chain((base) => {
    // Ids are unique in the kernel.
    const seen = new Set<number>();
    const uniq = base.filter((b) => (seen.has(b.id) ? false : (seen.add(b.id), true)));
    return fc.tuple(
      ...uniq.map((b) =>
        fc.record({ flags: liveFlags(b.port), ifindex: fc.constantFrom(undefined, undefined, 2, 3, 99) }).map(
          ({ flags, ifindex }): LiveEndpoint => ({
            id: b.id,
            family: b.address.includes(':') ? 6 : 4,
            address: b.address,
            ...(b.port !== undefined && { port: b.port }),
            flags,
            ...(ifindex !== undefined && !flags.includes('implicit') && { ifindex }),
          }),
        ),
      ),
    );
  });

const liveAddressesArb = fc.uniqueArray(
  fc.record({
    ifindex: fc.constantFrom(2, 3, 4),
    address: fc.constantFrom(...ADDRS, 'fe80::1'),
    flag: fc.constantFrom('ok', 'ok', 'ok', 'tentative', 'deprecated', 'dadfailed', 'scope-link'),
  }),
  { maxLength: 6, selector: (a) => a.address },
).map((xs) =>
  xs.map(
    (x): LiveAddress => ({
      ifindex: x.ifindex,
      family: x.address.includes(':') ? 6 : 4,
      address: x.address,
      prefixlen: 24,
      scope: x.flag === 'scope-link' || x.address.startsWith('fe80') ? 'link' : 'global',
      tentative: x.flag === 'tentative',
      dadfailed: x.flag === 'dadfailed',
      deprecated: x.flag === 'deprecated',
      temporary: false,
    }),
  ),
);

// Mostly a current kernel; now and then one that lacks a sysctl.
const mptcpLiveArb = fc
  .record({
    enabled: fc.boolean(),
    pathManager: fc.constantFrom('kernel' as const, 'userspace' as const),
    addAddrTimeout: fc.constantFrom(60, 120),
    checksumEnabled: fc.boolean(),
    scheduler: fc.constantFrom('default', 'bpf_rr'),
    closeTimeout: fc.constantFrom(60, 30),
    lacks: fc.oneof(
      { weight: 8, arbitrary: fc.constant(undefined) },
      { weight: 1, arbitrary: fc.constantFrom('pathManager', 'scheduler', 'closeTimeout') },
    ),
  })
  .map(({ lacks, ...m }) => {
    if (lacks) delete (m as Record<string, unknown>)[lacks];
    return m;
  });

const rpArb = fc.constantFrom(0, 1, 2);
const liveArb: fc.Arbitrary<{ live: LiveNamespace; nextIdBump: number }> = fc
  .record({
    endpoints: liveEndpointsArb,
    limits: fc.record({ subflows: fc.integer({ min: 0, max: 8 }), addAddrAccepted: fc.integer({ min: 0, max: 8 }) }),
    mptcp: mptcpLiveArb,
    rp: fc.record({ all: rpArb, default: rpArb, eth0: rpArb, eth1: rpArb, usb0: rpArb }),
    addresses: liveAddressesArb,
    nextIdBump: fc.integer({ min: 0, max: 300 }),
  })
  .map((r) => ({
    live: {
      netns: 't',
      endpoints: r.endpoints,
      limits: r.limits,
      mptcp: r.mptcp as MptcpConfig,
      rpFilter: r.rp,
      links: LINKS,
      addresses: r.addresses,
    },
    nextIdBump: r.nextIdBump,
  }));

/** Config flags valid per the schema for an endpoint with/without a port. */
function configFlags(port: number | undefined): fc.Arbitrary<EndpointConfig['flags']> {
  if (port !== undefined) return fc.subarray(['backup', 'laminar'] as const).map((f) => ['signal' as const, ...f]);
  return fc.oneof(
    fc.subarray(['signal', 'subflow', 'backup', 'laminar'] as const),
    fc.subarray(['backup', 'laminar'] as const).map((f) => ['subflow' as const, 'fullmesh' as const, ...f]),
  );
}

const explicitArb: fc.Arbitrary<EndpointConfig> = fc
  .record({
    address: fc.constantFrom(...ADDRS, '::ffff:192.0.2.1'),
    port: fc.constantFrom(...PORTS),
    id: fc.oneof({ weight: 3, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: IDS }),
    dev: fc.constantFrom(undefined, undefined, 'eth0', 'eth1', 'wwan0'),
  })
  .chain((b) =>
    configFlags(b.port).map((flags) => {
      const ep: EndpointConfig = { address: b.address, flags };
      if (b.port !== undefined) ep.port = b.port;
      if (b.id !== undefined) ep.id = b.id;
      if (b.dev !== undefined) ep.dev = b.dev;
      return ep;
    }),
  );

const derivedArb: fc.Arbitrary<EndpointConfig> = fc
  .record({
    dev: fc.constantFrom('eth0', 'usb0', 'wwan0'),
    family: fc.constantFrom(undefined, 'ipv4' as const, 'ipv6' as const, 'any' as const),
    id: fc.oneof({ weight: 6, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: IDS }),
  })
  .chain((b) =>
    configFlags(undefined).map((flags) => {
      const ep: EndpointConfig = { dev: b.dev, flags };
      if (b.family !== undefined) ep.family = b.family;
      if (b.id !== undefined) ep.id = b.id;
      return ep;
    }),
  );

/** A declared twin of a live endpoint: same identity, flags and id often kept, so keep/set-flags/replace all occur. */
function twinArb(live: LiveNamespace): fc.Arbitrary<EndpointConfig> {
  if (live.endpoints.length === 0) return explicitArb;
  return fc
    .record({
      l: fc.constantFrom(...live.endpoints),
      keepIdentity: fc.constantFrom(true, true, false),
      devFlip: fc.boolean(),
      keepDev: fc.constantFrom(true, true, true, false),
      id: fc.constantFrom('same', 'none', 'none', 'other'),
      other: IDS,
      backup: fc.boolean(),
      fullmesh: fc.boolean(),
      flags: configFlags(undefined),
    })
    .map(({ l, keepIdentity, devFlip, keepDev, id, other, backup, fullmesh, flags }) => {
      let f: EndpointConfig['flags'] = keepIdentity
        ? (l.flags.filter((x) => x === 'signal' || x === 'subflow' || x === 'laminar') as EndpointConfig['flags'])
        : flags;
      f = f!.filter((x) => x !== 'backup' && x !== 'fullmesh');
      if (backup) f.push('backup');
      if (fullmesh && f.includes('subflow') && !f.includes('signal')) f.push('fullmesh');
      if (l.port !== undefined) f = ['signal', ...f.filter((x) => x === 'backup' || x === 'laminar')];
      const ep: EndpointConfig = { address: l.address, flags: f };
      if (l.port !== undefined) ep.port = l.port;
      const dev = LINKS.find((k) => k.ifindex === l.ifindex)?.name;
      if (keepDev ? dev !== undefined : devFlip) ep.dev = keepDev ? dev! : 'eth1';
      if (id === 'same') ep.id = l.id;
      if (id === 'other') ep.id = other;
      return ep;
    });
}

const endpointsArb = (live: LiveNamespace) => fc
  .array(fc.oneof({ weight: 3, arbitrary: explicitArb }, { weight: 1, arbitrary: derivedArb }, { weight: 4, arbitrary: twinArb(live) }), { maxLength: 8 })
  .map((eps) => {
    // What merge guarantees: one entry per (address or dev, port), ids unique.
    const keys = new Set<string>();
    const ids = new Set<number>();
    return eps.filter((e) => {
      const k = e.address !== undefined ? endpointKey(e.address, e.port) : `dev:${e.dev}`;
      if (keys.has(k) || (e.id !== undefined && ids.has(e.id))) return false;
      keys.add(k);
      if (e.id !== undefined) ids.add(e.id);
      return endpointSchema.safeParse(e).success;
    });
  });

const rpNameArb = fc.constantFrom<RpFilterName>('off', 'strict', 'loose');
const desiredArb = (live: LiveNamespace): fc.Arbitrary<DesiredNamespace> => fc.record({
  netns: fc.constant('t'),
  mptcp: fc.record(
    {
      enabled: fc.boolean(),
      pathManager: fc.constantFrom('kernel' as const, 'userspace' as const),
      addAddrTimeout: fc.constantFrom(60, 120),
      scheduler: fc.constantFrom('default', 'bpf_rr'),
      closeTimeout: fc.constantFrom(60, 30),
    },
    { requiredKeys: [] },
  ),
  limits: fc.record({ subflows: fc.integer({ min: 0, max: 8 }), addAddrAccepted: fc.integer({ min: 0, max: 8 }) }, { requiredKeys: [] }),
  endpoints: fc.option(endpointsArb(live), { freq: 8, nil: undefined }),
  rpFilter: fc.dictionary(fc.constantFrom('all', 'default', 'eth0', 'usb0', 'wwan0'), rpNameArb, { maxKeys: 3 }),
  prune: fc.boolean(),
  conflicts: fc.constant('fail' as const),
});

const pairArb = liveArb.chain((l) => fc.tuple(desiredArb(l.live), fc.constant(l)));

function apply(model: KernelModel, ops: Operation[]): void {
  model.applyPlan(ops);
}

const NUM_RUNS = Number(process.env.PLAN_PROPERTY_RUNS ?? 1000);

describe('planNamespace against the kernel model', () => {
  it('applies cleanly, stays within 8, converges, is idempotent and minimal', () => {
    fc.assert(
      fc.property(pairArb, ([desired, { live, nextIdBump }]) => {
        const maxId = Math.max(1, ...live.endpoints.map((e) => e.id));
        const model = new KernelModel(live, Math.min(255, maxId + nextIdBump));
        const plan = planNamespace(desired, live);

        // 1. The kernel accepts every operation in order, never more than 8 endpoints.
        apply(model, plan.operations);
        expect(model.peak).toBeLessThanOrEqual(8);
        const after = model.state;

        // 2. Keys not declared are untouched.
        for (const k of Object.keys(live.mptcp) as (keyof MptcpConfig)[]) {
          if (desired.mptcp[k] === undefined) expect(after.mptcp[k]).toEqual(live.mptcp[k]);
        }
        if (desired.limits.subflows === undefined) expect(after.limits.subflows).toBe(live.limits.subflows);
        if (desired.limits.addAddrAccepted === undefined) expect(after.limits.addAddrAccepted).toBe(live.limits.addAddrAccepted);
        for (const k of Object.keys(live.rpFilter)) if (!(k in desired.rpFilter)) expect(after.rpFilter[k]).toBe(live.rpFilter[k]);
        if (desired.endpoints === undefined) expect(plan.operations.filter((o) => ['add', 'delete', 'set-flags'].includes(o.op))).toEqual([]);
        // Implicit endpoints at undeclared addresses, and with prune off every undeclared one, stay as they were.
        const res = desired.endpoints ? resolveEndpoints(desired.endpoints, live) : undefined;
        const declaredKeys = new Set(res?.endpoints.map((e) => e.key));
        for (const l of live.endpoints) {
          const key = endpointKey(l.address, l.port);
          if (declaredKeys.has(key) || res?.heldKeys.has(key)) continue;
          if (l.flags.includes('implicit') || !desired.prune || desired.endpoints === undefined) {
            expect(after.endpoints).toContainEqual(l);
          }
        }

        // 3. Minimal: no no-op set-flags; an endpoint that differs only in
        //    backup/fullmesh is never replaced; a satisfied one never touched.
        for (const op of plan.operations) {
          if (op.op === 'set-flags') expect(op.from).not.toEqual({ backup: op.backup, fullmesh: op.fullmesh });
        }
        const pinnedIds = new Set(res?.endpoints.filter((e) => e.id !== undefined).map((e) => e.id));
        for (const d of res?.endpoints ?? []) {
          const l = live.endpoints.find((e) => endpointKey(e.address, e.port) === d.key);
          if (!l || l.flags.includes('implicit')) continue;
          const ident = (fs: FlagName[]) => fs.filter((f) => f !== 'backup' && f !== 'fullmesh').sort().join();
          const sameIdentity = ident(l.flags) === ident(d.flags) && l.ifindex === d.ifindex && (d.id === undefined || d.id === l.id);
          const idWantedElsewhere = pinnedIds.has(l.id) && d.id !== l.id;
          if (sameIdentity && !idWantedElsewhere) {
            expect(plan.operations.filter((o) => o.op === 'delete' && o.id === l.id)).toEqual([]);
          }
        }
        // Implicit endpoints carry live subflows: never deleted, whatever is declared.
        const implicitIds = new Set(live.endpoints.filter((e) => e.flags.includes('implicit')).map((e) => e.id));
        expect(plan.operations.filter((o) => o.op === 'delete' && implicitIds.has(o.id))).toEqual([]);
        // Every ADD names its id except an implicit takeover, so ids never depend on the kernel's hidden counter.
        for (const op of plan.operations) {
          if (op.op !== 'add') continue;
          const takeover = live.endpoints.some((e) => e.flags.includes('implicit') && endpointKey(e.address, e.port) === endpointKey(op.endpoint.address, op.endpoint.port));
          expect(op.endpoint.id === undefined).toBe(takeover);
        }
        for (const op of plan.operations) {
          if (op.op === 'delete') expect(op.disruptive).toBe(true);
          if (op.op === 'set-flags' || op.op === 'set-limits' || op.op === 'set-sysctl' || op.op === 'set-rp-filter') {
            expect(op.disruptive).toBe(false);
          }
        }
        // At most one add per endpoint, and every delete of a declared endpoint
        // comes back as an add (a replace); nothing else is deleted and re-added.
        const adds = plan.operations.flatMap((o) => (o.op === 'add' ? [endpointKey(o.endpoint.address, o.endpoint.port)] : []));
        expect(new Set(adds).size).toBe(adds.length);

        if (plan.errors.length > 0) return;

        // 4. The result verifies, and a second plan is empty.
        const v = verifyNamespace(desired, after);
        expect(v.differences).toEqual([]);
        expect(v.converged).toBe(true);
        const again = planNamespace(desired, after);
        expect(again.operations).toEqual([]);
        expect(again.errors).toEqual([]);
      }),
      { numRuns: NUM_RUNS },
    );
  });

  it('verify catches each kind of leftover difference', () => {
    // verify is independent of the planner: an unapplied plan must not verify.
    fc.assert(
      fc.property(pairArb, ([desired, { live }]) => {
        const plan = planNamespace(desired, live);
        const v = verifyNamespace(desired, live);
        const changes = plan.operations.length > 0;
        if (changes) expect(v.converged).toBe(false);
        if (plan.errors.length === 0 && !changes) expect(v.converged).toBe(true);
      }),
      { numRuns: NUM_RUNS },
    );
  });
});
