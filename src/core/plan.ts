// The planner: desired + live state of one namespace -> the shortest ordered list
// of operations that the kernel accepts one after the other: ids, the 8-endpoint cap, implicit endpoints and
// the order of the checks are the kernel's own (net/mptcp/pm_kernel.c).
// Pure: no I/O. The shell applies the operations in the order given.
import { SYSCTL_NAMES, type MptcpConfig, type MptcpKey, type RpFilterName } from './schema.js';
import { MAX_ENDPOINTS, RP_FILTER_VALUES, SYSCTL_ORDER } from './vocabulary.js';
import { canonicalAddress, endpointKey } from './address.js';
import { endpointLabel, resolveEndpoints, type ResolvedEndpoint } from './derive.js';
import { sortFlags, type FlagName } from './flags.js';
import { formatDuration } from './duration.js';
import { linkTrouble, splitByLink } from './link-lifecycle.js';
import { DEFAULT_LINK_DOWN_HOLD_MS } from './schema-routing.js';
import { planRouting } from './source-routing.js';
import type {
  DesiredNamespace,
  EndpointSpec,
  LinkDownEndpoint,
  LinkHold,
  PlanCapabilities,
  LiveEndpoint,
  LiveNamespace,
  NamespacePlan,
  Operation,
  Pending,
} from './model.js';


/** Flags only delete+add can change; backup and fullmesh change in place. */
const IDENTITY_FLAGS: readonly FlagName[] = ['signal', 'subflow', 'laminar'];

export function formatFlags(flags: readonly FlagName[]): string {
  return `[${sortFlags(flags).join(' ')}]`;
}

function has(flags: readonly FlagName[], f: FlagName): boolean {
  return flags.includes(f);
}

/** Ifindex -> name for messages; a vanished link shows as ip(8) prints it. */
function devName(live: LiveNamespace, ifindex: number | undefined): string | undefined {
  if (ifindex === undefined) return undefined;
  return live.links.find((l) => l.ifindex === ifindex)?.name ?? `if${ifindex}`;
}

function liveSpec(live: LiveNamespace, l: LiveEndpoint): EndpointSpec {
  const dev = devName(live, l.ifindex);
  return {
    address: l.address,
    ...(l.port !== undefined && { port: l.port }),
    id: l.id,
    flags: sortFlags(l.flags),
    ...(dev !== undefined && { dev }),
    ...(l.ifindex !== undefined && { ifindex: l.ifindex }),
  };
}

function withoutId(spec: EndpointSpec): EndpointSpec {
  const { id: _id, ...rest } = spec;
  return rest;
}

function desiredSpec(d: ResolvedEndpoint): EndpointSpec {
  return {
    address: d.address,
    ...(d.port !== undefined && { port: d.port }),
    ...(d.id !== undefined && { id: d.id }),
    flags: d.flags,
    ...(d.dev !== undefined && { dev: d.dev }),
    ...(d.ifindex !== undefined && { ifindex: d.ifindex }),
  };
}

/**
 * How one declared endpoint gets (or stays) in place:
 * - new: plain ADD; - keep: already right (maybe a SET_FLAGS);
 * - replace: DEL the live one, then ADD (an identity difference);
 * - implicit-add: ADD without an id over a kernel-created implicit endpoint, which
 *   the kernel turns into the declared one in place, keeping its id and the
 *   subflows that use it. Implicit endpoints are never deleted: a declared id
 *   other than the implicit one's is refused (the kernel answers EINVAL to it too,
 *   and getting it by DEL+ADD would close live subflows).
 */
interface Action {
  d: ResolvedEndpoint;
  kind: 'new' | 'keep' | 'replace' | 'implicit-add';
  live?: LiveEndpoint;
  reason?: string;
  /** Dropped (plan error): leaves the live side as it is. */
  blocked?: boolean;
  /** A new endpoint that stands in for a pruned one (a port change). */
  replacesPruned?: boolean;
  /** The id its ADD carries (every ADD but an implicit takeover names its id). */
  id?: number;
  /** Back after a link-down withdrawal: the id it had. */
  restored?: number;
}

/** The highest endpoint id (ids are a u8; 0 means "none"). */
const MAX_ID = 255;

/**
 * The kernel's id allocator for an ADD without an id (pm_kernel.c): the first
 * free id at or after the highest one handed out so far, wrapping to the lowest
 * free one after 255. `state.next` is that counter; `used` the ids taken.
 */
export function allocateId(state: { next: number }, used: ReadonlySet<number>): number | undefined {
  if (state.next === MAX_ID) state.next = 1;
  const scan = (from: number) => {
    for (let i = Math.max(1, from); i <= MAX_ID; i++) if (!used.has(i)) return i;
    return undefined;
  };
  let id = scan(state.next);
  if (id === undefined && state.next !== 1) {
    state.next = 1;
    id = scan(1);
  }
  if (id !== undefined && id > state.next) state.next = id;
  return id;
}

/** What an ADD with an explicit id does to the allocator's counter. */
function notePinned(state: { next: number }, id: number): void {
  if (state.next === MAX_ID) state.next = 1;
  if (id > state.next) state.next = id;
}

/**
 * Gives every ADD its id, so that the same config gives the same ids on every
 * node whatever the kernel's hidden counter holds: the ids `ip mptcp endpoint
 * add` lines in file order give on a fresh namespace (pinned ids as written, the
 * others from the kernel's allocator). Endpoints that stay keep their ids; an
 * unpinned replace keeps its old id. Where file order would land on an id that
 * stays taken (a pinned id declared later, a kept endpoint), the next free id is
 * taken instead and the reason says so.
 */
function assignIds(actions: Action[], live: LiveNamespace, pruned: readonly LiveEndpoint[], remembered?: ReadonlyMap<string, number>): void {
  const deleted = new Set<LiveEndpoint>(pruned);
  for (const a of actions) if (!a.blocked && a.kind === 'replace') deleted.add(a.live!);
  const taken = new Set<number>();
  const holder = new Map<number, string>();
  for (const l of live.endpoints) {
    if (deleted.has(l)) continue;
    taken.add(l.id);
    holder.set(l.id, `live endpoint ${endpointLabel(l.address, l.port)} keeps`);
  }
  for (const a of actions) {
    if (a.blocked || a.d.id === undefined || a.kind === 'keep' || a.kind === 'implicit-add') continue;
    taken.add(a.d.id);
    holder.set(a.d.id, `endpoints[${endpointLabel(a.d.address, a.d.port)}] pins`);
  }
  // Unpinned replaces keep their old id when nothing pins it.
  for (const a of actions) {
    if (a.blocked || a.kind !== 'replace' || a.d.id !== undefined || taken.has(a.live!.id)) continue;
    a.id = a.live!.id;
    taken.add(a.id);
  }
  // An endpoint back from a link-down withdrawal gets its old id when nothing took it meanwhile.
  for (const a of actions) {
    const id = a.kind === 'new' ? remembered?.get(a.d.key) : undefined;
    if (a.blocked || id === undefined) continue;
    a.restored = id;
    if (a.d.id !== undefined || taken.has(id)) continue;
    a.id = id;
    taken.add(id);
  }
  const fresh = { next: 1 }; // the counter of a fresh namespace running the file
  const freshUsed = new Set<number>();
  const real = { next: 1 };
  for (const a of [...actions].sort((x, y) => x.d.index - y.d.index)) {
    if (a.blocked) continue;
    const stays = a.kind === 'keep' || a.kind === 'implicit-add' ? a.live!.id : a.d.id ?? a.id;
    if (stays !== undefined) {
      if (a.kind === 'new' || a.kind === 'replace') a.id = stays;
      notePinned(fresh, stays);
      freshUsed.add(stays);
      notePinned(real, stays);
      continue;
    }
    const want = allocateId(fresh, freshUsed);
    const id = allocateId(real, taken);
    if (want === undefined || id === undefined) continue; // more than 255 ids: the cap stops this long before
    freshUsed.add(want);
    taken.add(id);
    a.id = id;
    if (id !== want) {
      const why = `id ${id}: file order gives id ${want}, which ${holder.get(want) ?? 'another endpoint takes'}`;
      a.reason = a.reason ? `${a.reason}; ${why}` : why;
    }
  }
}

function sysctlOps(desired: DesiredNamespace, live: LiveNamespace, ops: Operation[], errors: string[]): void {
  for (const key of SYSCTL_ORDER) {
    const want = desired.mptcp[key];
    if (want === undefined) continue;
    const sysctl = `net.mptcp.${SYSCTL_NAMES[key]}`;
    if (!(key in live.mptcp) || live.mptcp[key] === undefined) {
      errors.push(`mptcp.${key}: this kernel has no ${sysctl}; remove the key or upgrade the kernel`);
      continue;
    }
    const have = live.mptcp[key] as MptcpConfig[typeof key];
    if (have === want) continue;
    ops.push({ op: 'set-sysctl', key, sysctl, value: want, from: have, disruptive: false });
  }
}

function limitsOps(desired: DesiredNamespace, live: LiveNamespace, ops: Operation[]): void {
  const op: Extract<Operation, { op: 'set-limits' }> = {
    op: 'set-limits',
    from: { ...live.limits },
    disruptive: false,
  };
  let any = false;
  if (desired.limits.subflows !== undefined && desired.limits.subflows !== live.limits.subflows) {
    op.subflows = desired.limits.subflows;
    any = true;
  }
  if (desired.limits.addAddrAccepted !== undefined && desired.limits.addAddrAccepted !== live.limits.addAddrAccepted) {
    op.addAddrAccepted = desired.limits.addAddrAccepted;
    any = true;
  }
  if (any) ops.push(op);
}

function rpFilterOps(desired: DesiredNamespace, live: LiveNamespace, ops: Operation[], pending: Pending[]): void {
  for (const [iface, name] of Object.entries(desired.rpFilter)) {
    const value = RP_FILTER_VALUES[name];
    const exists =
      iface === 'all' || iface === 'default' || live.links.some((l) => l.name === iface) || iface in live.rpFilter;
    if (!exists) {
      pending.push({ what: `rpFilter.${iface}`, reason: `interface ${iface} does not exist (yet)` });
      continue;
    }
    const from = live.rpFilter[iface];
    if (from === value) continue;
    ops.push({ op: 'set-rp-filter', iface, value, ...(from !== undefined && { from }), disruptive: false });
  }
}

function restoreReason(a: Action): string {
  const id = a.id ?? a.d.id;
  if (id === a.restored) return `link usable again: back with id ${id}`;
  return `link usable again: back with id ${id} (${a.d.id !== undefined ? 'pinned' : `its id ${a.restored} is taken`})`;
}

/**
 * Takes the endpoints `watch` holds back (their interface is withdrawn) out of
 * the declared set, and names them, or, without a hold, those on an interface
 * without carrier now. Returns endpointKey -> why, for the live twins to delete.
 */
function holdBack(
  desired: DesiredNamespace,
  live: LiveNamespace,
  res: { endpoints: ResolvedEndpoint[]; heldKeys: Set<string> },
  hold: LinkHold | undefined,
  liveByKey: ReadonlyMap<string, LiveEndpoint>,
  out: LinkDownEndpoint[] | undefined,
): Map<string, string> {
  const split = splitByLink(res.endpoints, live, desired.linkDown?.policy ?? 'withdraw', hold);
  res.endpoints = split.active;
  const withdrawn = new Map<string, string>();
  for (const { e, iface } of split.held) {
    const w = hold!.withdrawn.get(iface)!;
    withdrawn.set(e.key, w.reason);
    const id = liveByKey.get(e.key)?.id ?? hold!.ids.get(e.key);
    const reason = w.since ? `${linkTrouble(live.links, iface)} since ${w.since}` : w.reason;
    out?.push({ endpoint: endpointLabel(e.address, e.port), iface, state: 'withdrawn', reason, ...(w.since && { since: w.since }), ...(id !== undefined && { id }) });
  }
  // An interface that vanished (a modem unplugged, a ppp link torn down) leaves the
  // endpoints declared on it unresolved, their live twins otherwise kept for its return.
  for (const ep of desired.endpoints ?? []) {
    const w = ep.dev !== undefined && ep.address !== undefined ? hold?.withdrawn.get(ep.dev) : undefined;
    const key = ep.address === undefined ? '' : endpointKey(canonicalAddress(ep.address), ep.port);
    const twin = liveByKey.get(key);
    if (!w || !res.heldKeys.has(key) || !twin || has(twin.flags, 'implicit')) continue;
    res.heldKeys.delete(key);
    withdrawn.set(key, w.reason);
    out?.push({ endpoint: endpointLabel(twin.address, twin.port), iface: ep.dev!, state: 'withdrawn', reason: w.since ? `link ${ep.dev} is gone since ${w.since}` : w.reason, ...(w.since && { since: w.since }), id: twin.id });
  }
  const after = formatDuration(desired.linkDown?.holdMs ?? DEFAULT_LINK_DOWN_HOLD_MS);
  for (const { e, iface } of split.noCarrier) {
    const reason = `${linkTrouble(live.links, iface)} now; kept anyway (a one-shot run cannot tell for how long; watch withdraws it after ${after})`;
    out?.push({ endpoint: endpointLabel(e.address, e.port), iface, state: 'no-carrier', reason });
  }
  return withdrawn;
}

function endpointOps(
  desired: DesiredNamespace,
  live: LiveNamespace,
  ops: Operation[],
  pending: Pending[],
  errors: string[],
  caps?: PlanCapabilities,
  hold?: LinkHold,
  linkDown?: LinkDownEndpoint[],
): void {
  if (desired.endpoints === undefined) return;
  const res = resolveEndpoints(desired.endpoints, live);
  pending.push(...res.pending);
  errors.push(...res.errors);
  if (caps?.endpointFlags) {
    // A flag the kernel lacks is stored as a raw bit or silently dropped: the
    // endpoint would never verify. Refuse it; its live twin is left alone.
    const known = new Set(caps.endpointFlags);
    res.endpoints = res.endpoints.filter((d) => {
      const missing = d.flags.filter((f) => !known.has(f));
      if (missing.length === 0) return true;
      errors.push(
        `endpoints[${endpointLabel(d.address, d.port)}]: this kernel (${caps.release}) has no endpoint flag ${missing.join(', ')}; remove it or run a kernel that has it`,
      );
      res.heldKeys.add(d.key);
      return false;
    });
  }

  const liveByKey = new Map(live.endpoints.map((l) => [endpointKey(l.address, l.port), l]));
  const withdrawn = holdBack(desired, live, res, hold, liveByKey, linkDown);
  const liveById = new Map(live.endpoints.map((l) => [l.id, l]));
  const label = (e: { address: string; port?: number }) => `endpoints[${endpointLabel(e.address, e.port)}]`;

  // 1. Match every declared endpoint to the live one with the same identity.
  const actions: Action[] = [];
  const matched = new Map<LiveEndpoint, Action>();
  for (const d of res.endpoints) {
    const l = liveByKey.get(d.key);
    let a: Action;
    if (!l) a = { d, kind: 'new', ...(d.derived && { reason: `address of dev ${d.dev}` }) };
    else if (has(l.flags, 'implicit')) {
      if (d.id === undefined || d.id === l.id) {
        a = { d, kind: 'implicit-add', live: l, reason: `takes over implicit endpoint id ${l.id} (keeps its id and subflows)` };
      } else {
        a = { d, kind: 'keep', live: l, blocked: true };
        errors.push(
          `${label(d)}: the kernel holds ${endpointLabel(l.address, l.port)} as implicit endpoint id ${l.id} (made for a live connection) ` +
            `and refuses to give it another id; implicit endpoints are never deleted, so drop \`id: ${d.id}\` or pin \`id: ${l.id}\``,
        );
      }
    } else {
      const diffs: string[] = [];
      const liveIdentity = l.flags.filter((f) => IDENTITY_FLAGS.includes(f));
      const wantIdentity = d.flags.filter((f) => IDENTITY_FLAGS.includes(f));
      if (formatFlags(liveIdentity) !== formatFlags(wantIdentity)) {
        diffs.push(`flags ${formatFlags(l.flags)} -> ${formatFlags(d.flags)}`);
      }
      if (l.ifindex !== d.ifindex) diffs.push(`dev ${devName(live, l.ifindex) ?? 'none'} -> ${d.dev ?? 'none'}`);
      if (d.id !== undefined && d.id !== l.id) diffs.push(`id ${l.id} -> ${d.id}`);
      a = diffs.length > 0 ? { d, kind: 'replace', live: l, reason: `replace: ${diffs.join(', ')}` } : { d, kind: 'keep', live: l };
    }
    actions.push(a);
    if (a.live) matched.set(a.live, a);
  }

  // 2. Live endpoints nobody declared: pruned, or kept (implicit, foreign with
  //    prune off, or the twin of a declared endpoint whose dev is still missing).
  const prunes: { l: LiveEndpoint; reason: string; linkDown?: boolean }[] = [];
  const keptWhy = new Map<LiveEndpoint, string>();
  for (const l of live.endpoints) {
    if (matched.has(l)) continue;
    const key = endpointKey(l.address, l.port);
    if (has(l.flags, 'implicit')) keptWhy.set(l, 'implicit endpoints are never removed');
    else if (withdrawn.has(key)) prunes.push({ l, reason: withdrawn.get(key)!, linkDown: true });
    else if (res.heldKeys.has(key)) keptWhy.set(l, 'its declared dev does not exist yet');
    else if (!desired.prune) keptWhy.set(l, 'not declared and prune is off');
    else prunes.push({ l, reason: 'not declared (prune)' });
  }

  // 3. Pinned ids. The holder of a wanted id must be gone before the ADD: it is
  //    when it is deleted anyway; a holder kept for a declared endpoint without a
  //    pinned id is moved (replaced, the kernel then picks another id); a holder
  //    kept for any other reason makes the pinned endpoint impossible: error.
  //    Blocking one replace keeps its live endpoint, which may in turn hold an id
  //    another endpoint pins, so this runs until nothing changes.
  const pruned = new Set(prunes.map((p) => p.l));
  const holderFate = (h: LiveEndpoint): 'gone' | 'movable' | 'kept' => {
    if (pruned.has(h)) return 'gone';
    const ha = matched.get(h);
    if (ha && !ha.blocked && ha.kind === 'replace') return 'gone';
    // An implicit endpoint never moves: deleting it would close live subflows.
    if (ha && !ha.blocked && ha.kind === 'keep' && ha.d.id === undefined) return 'movable';
    return 'kept';
  };
  for (let changed = true; changed; ) {
    changed = false;
    for (const a of actions) {
      if (a.blocked || a.d.id === undefined || a.kind === 'keep') continue;
      const h = liveById.get(a.d.id);
      if (!h || h === a.live || holderFate(h) !== 'kept') continue;
      a.blocked = true;
      changed = true;
      errors.push(
        `${label(a.d)}: id ${a.d.id} is held by live endpoint ${endpointLabel(h.address, h.port)} ${formatFlags(h.flags)}, which is kept (${keptWhy.get(h) ?? 'declared'}); pick another id`,
      );
    }
  }

  // 4. The cap. Every change but a new endpoint is count-neutral, so if the end
  //    state holds more than 8, the new endpoints declared last are left out (and
  //    reported) while everything else still converges: adding a prefix of the
  //    declared list is more useful than refusing the whole namespace.
  const liveCount = live.endpoints.length;
  let finalCount = liveCount - prunes.length + actions.filter((a) => !a.blocked && a.kind === 'new').length;
  if (finalCount > MAX_ENDPOINTS) {
    const dropped: string[] = [];
    for (let i = actions.length - 1; i >= 0 && finalCount > MAX_ENDPOINTS; i--) {
      const a = actions[i]!;
      if (a.kind !== 'new' || a.blocked) continue;
      a.blocked = true;
      finalCount--;
      dropped.push(endpointLabel(a.d.address, a.d.port));
    }
    errors.push(
      `the namespace would hold ${finalCount + dropped.length} endpoints, the kernel holds at most ${MAX_ENDPOINTS}: not added: ${dropped.reverse().join(', ')}`,
    );
  }
  for (const a of actions) {
    // Only pinned adds that still happen move the endpoint holding their id.
    if (a.blocked || a.d.id === undefined || a.kind === 'keep') continue;
    const h = liveById.get(a.d.id);
    if (!h || h === a.live || holderFate(h) !== 'movable') continue;
    const ha = matched.get(h)!;
    ha.kind = 'replace';
    ha.reason = `replace: id ${a.d.id} is pinned by ${label(a.d)}`;
  }

  // 5. Taking over an implicit endpoint is an ADD, and the kernel checks the cap
  //    before it looks for the implicit twin (ERANGE): with 8 endpoints left after
  //    the deletes it cannot happen, and deleting the implicit one is not an option.
  const afterDeletes = () => liveCount - prunes.length - actions.filter((a) => !a.blocked && a.kind === 'replace').length;
  if (afterDeletes() >= MAX_ENDPOINTS) {
    for (const a of actions.filter((x) => !x.blocked && x.kind === 'implicit-add')) {
      a.blocked = true;
      errors.push(
        `${label(a.d)}: taking over implicit endpoint id ${a.live!.id} needs a free slot, but the namespace keeps ${MAX_ENDPOINTS} endpoints ` +
          `(the kernel answers ERANGE) and implicit endpoints are never deleted; declare one endpoint fewer`,
      );
    }
  }

  assignIds(actions, live, prunes.map((p) => p.l), hold?.ids);

  // A port change looks like a new identity; name it as the replace it is when
  // one pruned and one new endpoint share the address unambiguously.
  const newActions = actions.filter((a) => !a.blocked && a.kind === 'new');
  for (const a of newActions) {
    const olds = prunes.filter((p) => p.l.address === a.d.address && !p.linkDown);
    const news = newActions.filter((n) => n.d.address === a.d.address);
    if (olds.length !== 1 || news.length !== 1) continue;
    const reason = `replace: port ${olds[0]!.l.port ?? 'none'} -> ${a.d.port ?? 'none'}`;
    olds[0]!.reason = reason;
    a.reason = reason;
    a.replacesPruned = true;
  }

  // 6. Emit: deletes, set-flags, then adds (implicit takeovers first, pinned ids
  //    before automatic ones so the kernel's allocator can't take a pinned id).
  const deletes: Operation[] = [];
  for (const p of prunes) {
    deletes.push({ op: 'delete', id: p.l.id, endpoint: liveSpec(live, p.l), disruptive: true, reason: p.reason, ...(p.linkDown && { linkDown: 'withdraw' as const }) });
  }
  for (const a of actions) {
    if (a.blocked || a.kind !== 'replace') continue;
    const l = a.live!;
    deletes.push({ op: 'delete', id: l.id, endpoint: liveSpec(live, l), disruptive: true, reason: a.reason! });
  }
  deletes.sort((x, y) => (x as { id: number }).id - (y as { id: number }).id);
  // Every live endpoint goes (nothing implicit, nothing kept by prune off or a
  // missing dev): one FLUSH_ADDRS does it. Every ADD that follows names its id,
  // so the counter FLUSH resets changes no id.
  if (deletes.length > 0 && deletes.length === live.endpoints.length) {
    for (const d of deletes) (d as Extract<Operation, { op: 'delete' }>).via = 'flush';
  }

  const setFlags: Operation[] = [];
  for (const a of actions) {
    if (a.blocked || a.kind !== 'keep') continue;
    const l = a.live!;
    const from = { backup: has(l.flags, 'backup'), fullmesh: has(l.flags, 'fullmesh') };
    const to = { backup: has(a.d.flags, 'backup'), fullmesh: has(a.d.flags, 'fullmesh') };
    if (from.backup === to.backup && from.fullmesh === to.fullmesh) continue;
    setFlags.push({
      op: 'set-flags',
      id: l.id,
      endpoint: liveSpec(live, l),
      ...to,
      from,
      disruptive: false,
      reason: `flags ${formatFlags(l.flags)} -> ${formatFlags(a.d.flags)}`,
    });
  }

  // Implicit takeovers first (they keep their ids), then file order: every other
  // ADD names its id, so the order can't change which id anything gets.
  const addRank = (a: Action) => (a.kind === 'implicit-add' ? 0 : 1);
  const adds = actions
    .filter((a) => !a.blocked && a.kind !== 'keep')
    .sort((x, y) => addRank(x) - addRank(y) || x.d.index - y.d.index)
    .map((a): Operation => ({
      op: 'add',
      // A takeover is sent without an id: the kernel keeps the implicit one's id
      // and answers EINVAL to any id given, even that same one.
      endpoint: a.kind === 'implicit-add' ? withoutId(desiredSpec(a.d)) : { ...desiredSpec(a.d), ...(a.id !== undefined && { id: a.id }) },
      disruptive: a.kind === 'replace' || a.replacesPruned === true,
      ...(a.restored !== undefined ? { reason: restoreReason(a), linkDown: 'restore' as const } : a.reason !== undefined && { reason: a.reason }),
    }));

  ops.push(...deletes, ...setFlags, ...adds);
}

/**
 * Plan one namespace. Order: sysctls (enabled, pathManager first), limits,
 * endpoint deletes, set-flags, adds, rp_filter. Applying the operations in order
 * never holds more than 8 endpoints and never hits an id in use. With the
 * kernel's capabilities, a declaration it cannot hold is an error, not a plan.
 */
export function planNamespace(desired: DesiredNamespace, live: LiveNamespace, caps?: PlanCapabilities, hold?: LinkHold): NamespacePlan {
  const operations: Operation[] = [];
  const pending: Pending[] = [];
  const errors: string[] = [];
  const linkDown: LinkDownEndpoint[] = [];
  sysctlOps(desired, live, operations, errors);
  limitsOps(desired, live, operations);
  endpointOps(desired, live, operations, pending, errors, caps, hold, linkDown);
  rpFilterOps(desired, live, operations, pending);
  const routing = planRouting(desired, live);
  if (routing) {
    pending.push(...routing.pending);
    errors.push(...routing.errors);
  }
  return { netns: desired.netns, operations, pending, errors, ...(linkDown.length > 0 && { linkDown }), ...(routing && { routing }) };
}
