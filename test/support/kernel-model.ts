// A model of the in-kernel path manager's rules (net/mptcp/pm_kernel.c), used
// to apply a plan without a kernel: every check the kernel makes, in its order,
// with its errno. The property test drives it; if the planner emits something the
// kernel would refuse, this throws the errno the kernel would answer.
import { endpointKey } from '../../src/core/address.js';
import { sortFlags, type FlagName } from '../../src/core/flags.js';
import type { LiveEndpoint, LiveNamespace, Operation } from '../../src/core/model.js';
import { SYSCTL_NAMES, type MptcpKey } from '../../src/core/schema.js';

export const MAX_ADDR = 8;
export const MAX_ID = 255;

export class ModelError extends Error {
  constructor(
    readonly code: 'EINVAL' | 'ERANGE' | 'EBUSY' | 'EEXIST' | 'EADDRINUSE' | 'ENOENT' | 'ENODEV',
    message: string,
  ) {
    super(`${code}: ${message}`);
  }
}

export class KernelModel {
  readonly state: LiveNamespace;
  /** pernet->next_id: the highest id handed out so far (not visible over netlink). */
  nextId: number;
  /** Highest endpoint count seen at any time. */
  peak: number;

  constructor(live: LiveNamespace, nextId?: number) {
    this.state = structuredClone(live);
    this.state.endpoints.sort((a, b) => a.id - b.id);
    const maxId = Math.max(1, ...live.endpoints.map((e) => e.id));
    this.nextId = nextId ?? maxId;
    this.peak = this.state.endpoints.length;
  }

  private byId(id: number): LiveEndpoint | undefined {
    return this.state.endpoints.find((e) => e.id === id);
  }

  /** ADD_ADDR, checks in the kernel's order. */
  add(spec: { address: string; port?: number; id?: number; flags: FlagName[]; ifindex?: number }): number {
    const flags = spec.flags;
    const f = (n: FlagName) => flags.includes(n);
    const port = spec.port ?? 0;
    if (port !== 0 && (!f('signal') || f('subflow'))) throw new ModelError('EINVAL', 'flags must have signal and not subflow when using port');
    if (f('signal') && f('fullmesh')) throw new ModelError('EINVAL', "flags mustn't have both signal and fullmesh");
    if (f('implicit')) throw new ModelError('EINVAL', "can't create IMPLICIT endpoint");
    const key = endpointKey(spec.address, port === 0 ? undefined : port);
    if (port !== 0 && this.state.endpoints.some((e) => endpointKey(e.address, e.port) === key)) {
      throw new ModelError('EADDRINUSE', 'create listen socket error: -98');
    }
    const id = spec.id ?? 0;
    if (id < 0 || id > MAX_ID) throw new ModelError('EINVAL', 'bad id');
    // pm_kernel.c: the counter wraps before the cap check.
    if (this.nextId === MAX_ID) this.nextId = 1;
    if (this.state.endpoints.length >= MAX_ADDR) throw new ModelError('ERANGE', 'too many addresses or duplicate one: -34');
    if (id !== 0 && this.byId(id)) throw new ModelError('EBUSY', 'too many addresses or duplicate one: -16');
    const dup = this.state.endpoints.find((e) => endpointKey(e.address, e.port) === key);
    let newId = id;
    if (dup) {
      if (!dup.flags.includes('implicit')) throw new ModelError('EEXIST', 'too many addresses or duplicate one: -17');
      if (id !== 0) throw new ModelError('EINVAL', 'too many addresses or duplicate one: -22');
      newId = dup.id;
      this.state.endpoints.splice(this.state.endpoints.indexOf(dup), 1);
    }
    if (newId === 0) {
      newId = this.firstFree(this.nextId);
      if (newId === 0 && this.nextId !== 1) {
        this.nextId = 1;
        newId = this.firstFree(1);
      }
      if (newId === 0) throw new ModelError('EINVAL', 'no free id');
    }
    if (newId > this.nextId) this.nextId = newId;
    const ep: LiveEndpoint = {
      id: newId,
      family: key.includes(':') ? 6 : 4,
      address: spec.address,
      flags: sortFlags(flags),
      ...(port !== 0 && { port }),
      ...(spec.ifindex !== undefined && { ifindex: spec.ifindex }),
    };
    this.state.endpoints.push(ep);
    this.state.endpoints.sort((a, b) => a.id - b.id);
    this.peak = Math.max(this.peak, this.state.endpoints.length);
    return newId;
  }

  private firstFree(from: number): number {
    for (let i = Math.max(1, from); i <= MAX_ID; i++) if (!this.byId(i)) return i;
    return 0;
  }

  /** DEL_ADDR by id. */
  delete(id: number): void {
    if (id === 0) return; // the kernel answers 0 and leaves the list alone
    const e = this.byId(id);
    if (!e) throw new ModelError('EINVAL', 'address not found');
    this.state.endpoints.splice(this.state.endpoints.indexOf(e), 1);
  }

  /** FLUSH_ADDRS: every endpoint goes, the id counter restarts; limits stay. */
  flush(): void {
    this.state.endpoints.splice(0);
    this.nextId = 1;
  }

  /**
   * A plan's operations as the executor sends them: the deletes marked
   * `via: 'flush'` are one FLUSH_ADDRS, sent at the first of them. A FLUSH
   * that would take an endpoint the group does not delete is a planner bug.
   */
  applyPlan(ops: readonly Operation[]): void {
    const group = ops.filter((o): o is Extract<Operation, { op: 'delete' }> => o.op === 'delete' && o.via === 'flush');
    const ids = new Set(group.map((o) => o.id));
    let flushed = false;
    for (const op of ops) {
      if (op.op !== 'delete' || op.via !== 'flush') {
        this.apply(op);
        continue;
      }
      if (flushed) continue;
      const kept = this.state.endpoints.filter((e) => !ids.has(e.id));
      if (kept.length > 0) throw new Error(`FLUSH would also remove ${kept.map((e) => `id ${e.id}`).join(', ')}`);
      this.flush();
      flushed = true;
    }
  }

  /** SET_FLAGS by id: backup and fullmesh set absolutely, nothing else changes. */
  setFlags(id: number, want: { backup: boolean; fullmesh: boolean }): void {
    if (id === 0) throw new ModelError('EINVAL', 'missing address ID');
    const e = this.byId(id);
    if (!e) throw new ModelError('EINVAL', 'address not found');
    if (want.fullmesh && (e.flags.includes('signal') || e.flags.includes('implicit'))) {
      throw new ModelError('EINVAL', 'invalid addr flags');
    }
    const rest = e.flags.filter((f) => f !== 'backup' && f !== 'fullmesh');
    e.flags = sortFlags([...rest, ...(want.backup ? (['backup'] as const) : []), ...(want.fullmesh ? (['fullmesh'] as const) : [])]);
  }

  setLimits(l: { subflows?: number; addAddrAccepted?: number }): void {
    for (const v of [l.subflows, l.addAddrAccepted]) {
      if (v !== undefined && (v < 0 || v > 8)) throw new ModelError('EINVAL', 'limit greater than maximum (8)');
    }
    if (l.subflows !== undefined) this.state.limits.subflows = l.subflows;
    if (l.addAddrAccepted !== undefined) this.state.limits.addAddrAccepted = l.addAddrAccepted;
  }

  setSysctl(key: MptcpKey, value: string | number | boolean): void {
    if (!(key in this.state.mptcp)) throw new ModelError('ENOENT', `no net.mptcp.${SYSCTL_NAMES[key]}`);
    (this.state.mptcp as Record<string, unknown>)[key] = value;
  }

  setRpFilter(iface: string, value: 0 | 1 | 2): void {
    if (iface !== 'all' && iface !== 'default' && !this.state.links.some((l) => l.name === iface)) {
      throw new ModelError('ENODEV', `no interface ${iface}`);
    }
    this.state.rpFilter[iface] = value;
  }

  apply(op: Operation): void {
    switch (op.op) {
      case 'add':
        this.add(op.endpoint);
        return;
      case 'delete':
        this.delete(op.id);
        return;
      case 'set-flags':
        this.setFlags(op.id, { backup: op.backup, fullmesh: op.fullmesh });
        return;
      case 'set-limits':
        this.setLimits(op);
        return;
      case 'set-sysctl':
        this.setSysctl(op.key, op.value);
        return;
      case 'set-rp-filter':
        this.setRpFilter(op.iface, op.value);
        return;
    }
  }
}
