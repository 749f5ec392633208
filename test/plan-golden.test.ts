// Golden plans: every directory under test/fixtures/plan holds live.yaml (a
// LiveNamespace; omitted fields take a fresh namespace's values), desired.yaml (a
// config entry, as a user writes it) and plan.yaml (the expected plan, one line
// per operation). Each case also applies its plan to the kernel model and records
// whether the result verifies, so a golden file can't enshrine a plan the kernel
// would refuse.
//
// UPDATE_GOLDEN=1 npx vitest run test/plan-golden.test.ts rewrites plan.yaml from
// the current planner. Review every rewritten file against the kernel's rules before
// committing: the files are the specification, not a snapshot.
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { namespaceEntrySchema, type RpFilterName } from '../src/core/schema.js';
import { addressFamily } from '../src/core/address.js';
import type { DesiredNamespace, EndpointSpec, LiveNamespace, Operation } from '../src/core/model.js';
import { planNamespace } from '../src/core/plan.js';
import { verifyNamespace } from '../src/core/verify.js';
import { KernelModel } from './support/kernel-model.js';

const ROOT = join(import.meta.dirname, 'fixtures', 'plan');
const UPDATE = process.env.UPDATE_GOLDEN === '1';

function loadLive(text: string): LiveNamespace {
  const raw = (parse(text) ?? {}) as Partial<LiveNamespace> & { endpoints?: Record<string, unknown>[]; addresses?: Record<string, unknown>[] };
  return {
    netns: raw.netns ?? 'test',
    endpoints: (raw.endpoints ?? []).map((e) => ({
      ...(e as object),
      family: addressFamily(String(e.address)),
      flags: (e.flags as string[] | undefined) ?? [],
    })) as LiveNamespace['endpoints'],
    limits: { subflows: 2, addAddrAccepted: 0, ...raw.limits },
    mptcp: raw.mptcp ?? {},
    rpFilter: raw.rpFilter ?? {},
    links: (raw.links ?? []).map((l) => ({ ...l, up: l.up ?? true, lowerUp: l.lowerUp ?? true })),
    addresses: (raw.addresses ?? []).map((a) => ({
      family: addressFamily(String(a.address)),
      prefixlen: 24,
      scope: 'global',
      tentative: false,
      dadfailed: false,
      deprecated: false,
      temporary: false,
      ...(a as object),
    })) as LiveNamespace['addresses'],
  };
}

const RP_NAMES: RpFilterName[] = ['off', 'strict', 'loose'];

function loadDesired(text: string): DesiredNamespace {
  const entry = namespaceEntrySchema.parse(parse(text));
  return {
    netns: entry.netns,
    mptcp: entry.mptcp ?? {},
    limits: entry.limits ?? {},
    endpoints: entry.endpoints,
    rpFilter: Object.fromEntries(
      Object.entries(entry.rpFilter ?? {}).map(([k, v]) => [k, typeof v === 'number' ? RP_NAMES[v]! : v]),
    ),
    prune: entry.prune ?? true,
    conflicts: entry.conflicts ?? 'fail',
  };
}

function spec(e: EndpointSpec): string {
  return [
    e.address,
    e.port !== undefined ? `port ${e.port}` : '',
    e.id !== undefined ? `id ${e.id}` : '',
    `[${e.flags.join(' ')}]`,
    e.dev !== undefined ? `dev ${e.dev}` : '',
    e.ifindex !== undefined ? `ifindex ${e.ifindex}` : '',
  ]
    .filter(Boolean)
    .join(' ');
}

/** One line per operation: what, then [disruptive], then # reason. */
export function renderOp(op: Operation): string {
  let s: string;
  switch (op.op) {
    case 'set-sysctl':
      s = `set-sysctl ${op.sysctl}: ${String(op.from)} -> ${String(op.value)}`;
      break;
    case 'set-limits':
      s = `set-limits ${(['subflows', 'addAddrAccepted'] as const)
        .filter((k) => op[k] !== undefined)
        .map((k) => `${k} ${op.from[k]} -> ${op[k]}`)
        .join(', ')}`;
      break;
    case 'delete':
      s = `delete id ${op.id}: ${spec(op.endpoint)}${op.via ? ` via ${op.via}` : ''}`;
      break;
    case 'set-flags':
      s = `set-flags id ${op.id}: backup ${op.from.backup} -> ${op.backup}, fullmesh ${op.from.fullmesh} -> ${op.fullmesh} (${spec(op.endpoint)})`;
      break;
    case 'add':
      s = `add ${spec(op.endpoint)}`;
      break;
    case 'set-rp-filter':
      s = `set-rp-filter ${op.iface}: ${op.from ?? '(unset)'} -> ${op.value}`;
      break;
  }
  return `${s}${op.disruptive ? ' [disruptive]' : ''}${op.reason ? ` # ${op.reason}` : ''}`;
}

function render(desired: DesiredNamespace, live: LiveNamespace): Record<string, unknown> {
  const plan = planNamespace(desired, live);
  const model = new KernelModel(live);
  let applied: string;
  try {
    model.applyPlan(plan.operations);
    const v = verifyNamespace(desired, model.state);
    applied = v.converged ? 'converged' : `not converged: ${v.differences.join('; ')}`;
  } catch (e) {
    applied = `kernel model refused: ${(e as Error).message}`;
  }
  return {
    operations: plan.operations.map(renderOp),
    pending: plan.pending.map((p) => `${p.what}: ${p.reason}`),
    errors: plan.errors,
    afterApply: applied,
  };
}

const cases = readdirSync(ROOT, { withFileTypes: true })
  .filter((d) => d.isDirectory())
  .map((d) => d.name)
  .sort();

describe('golden plans', () => {
  it('has the cases', () => {
    expect(cases.length).toBeGreaterThanOrEqual(20);
  });
  for (const name of cases) {
    it(name, () => {
      const dir = join(ROOT, name);
      const live = loadLive(readFileSync(join(dir, 'live.yaml'), 'utf8'));
      const desired = loadDesired(readFileSync(join(dir, 'desired.yaml'), 'utf8'));
      const got = render(desired, live);
      const file = join(dir, 'plan.yaml');
      if (UPDATE || !existsSync(file)) {
        writeFileSync(file, stringify(got, { lineWidth: 0 }));
        if (!UPDATE) throw new Error(`${file} was missing; written from the current planner: review it`);
      }
      expect(got).toEqual(parse(readFileSync(file, 'utf8')));
      // Replanning the applied state is empty: the plan is complete.
      if (got.afterApply === 'converged') {
        const model = new KernelModel(live);
        model.applyPlan(planNamespace(desired, live).operations);
        expect(planNamespace(desired, model.state).operations).toEqual([]);
      }
    });
  }
});
