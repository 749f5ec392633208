// NamespaceKernel: the netlink sockets and /proc/sys files of one namespace,
// created inside it once and reused for every pass. openNamespace() caches one per
// name and rebuilds it when the name now points at another namespace.
import type { MptcpConfig, MptcpKey } from '../core/schema.js';
import type { EndpointSpec, LiveAddress, LiveEndpoint, LiveLink, LiveNamespace } from '../core/model.js';
import { KernelError, type Limits, type LiveFingerprint, type LiveSelection, type NamespaceKernel } from './api.js';
import { FingerprintBuilder } from './fingerprint.js';
import { type EventSocket, type EventSocketHandlers, openEventSocket } from './events.js';
import { MaxAge } from '../core/max-age.js';
import type { EndpointRequest } from './mptcp-codec.js';
import {
  type GenlFamily,
  queueAddEndpoint,
  queueDeleteEndpoint,
  queueDumpEndpoints,
  queueGetLimits,
  queueSetFlags,
  queueSetLimits,
  resolveMptcpFamily,
  run,
  runWrites,
  writer,
} from './mptcp-pm.js';
import { HOST_NETNS, type NetnsIdentity, netnsIdentity, withNetns } from './netns.js';
import { type NlRequest, NlSocket, throwIfFailed } from './nlsock.js';
import { MPTCP_KEYS, SysctlFiles } from './procfs.js';
import { queueDumpAddresses, queueDumpLinks, queueDumpRpFilter } from './rtnl.js';
import type { KernelWrite, KernelWriteResult } from './api.js';
import { NETCONFA_IFINDEX_ALL, NETCONFA_IFINDEX_DEFAULT, NETLINK_GENERIC, NETLINK_ROUTE, RTNLGRP, RTNLGRP_ROUTING } from './uapi.js';
import { dumpRoutes, dumpRules, runRoutingOps } from './route-rules.js';
import { RTPROT_RECONCILER, type LiveRoute, type LiveRule, type RoutingOp } from '../core/source-routing.js';
import type { RtnlEvent } from './events.js';


class KernelNamespace implements NamespaceKernel {
  private genlSock: NlSocket | undefined;
  private rtnlSock: NlSocket | undefined;
  // Links change rarely, and the link dump was the costliest read of a converged
  // pass (each link message carries every per-protocol setting). The list is kept
  // and dumped again only after a link notification (or a lost one) on this
  // subscribed socket, which is drained before each use: a change that races with
  // the dump is queued, so it is never missed, at worst dumped twice. readLive
  // keeps addresses and rp_filter values the same way: the kernel announces every
  // change of them too (RTM_NEWADDR/DELADDR, also when an address turns deprecated
  // or ends DAD; RTM_NEWNETCONF when an rp_filter value changes), while endpoints,
  // limits and net.mptcp.* change silently and are read every time.
  private linkWatch: NlSocket | undefined;
  // The daemon's change feed (subscribe): one rtnetlink subscription per
  // namespace that both marks the namespace for a pass and drops what is kept
  // here. While it is open the watch socket above is closed: a notification
  // not yet delivered when a pass reads is delivered after it, and then drops
  // the kept values and asks for the next pass.
  private feed: EventSocket | undefined;
  private feedSaw = false;
  private linkCache: LiveLink[] | undefined;
  private addrCache: LiveAddress[] | undefined;
  // rp_filter of every interface by ifindex (and all/default), as the netconf dump gave it.
  private rpCache: Map<number, number> | undefined;
  // Source routing. Routes and rules are kept like links, but only while the
  // feed has joined the route and rule groups (it does at the first routing
  // read); `routingTables` filters route notifications down to the tables read
  // and the tool's own routes. `owned`: whether this namespace may hold routes
  // or rules the tool created ('none' once a read found none and nothing was
  // written since), so a namespace without `sourceRouting` costs nothing after
  // its first pass.
  private routingCache: { key: string; routes: LiveRoute[]; rules: LiveRule[] } | undefined;
  private routingTables = new Set<number>();
  private routingJoined = false;
  private owned: 'unknown' | 'none' | 'some' = 'unknown';
  // Bumped when a re-dump finds other links or addresses than the last one: a read's
  // fingerprint holds them in place of the link and address bytes. One counter each:
  // with a shared one, the address re-dump after the links' moved the links' number
  // too, and the next read (both kept) missed the memo. A re-dump that finds the same
  // (the kept values expired, or a notification changed nothing we read) keeps the
  // number, so the memo still answers: otherwise every namespace was planned and
  // verified in full once per KEEP_WATCHED_MS, all at once.
  private linkGen = 0;
  private addrGen = 0;
  private lastLinks: readonly LiveLink[] = [];
  private lastAddrs: readonly LiveAddress[] = [];
  private fam: GenlFamily | undefined;
  private readonly sysctl: SysctlFiles;
  closed = false;

  constructor(
    readonly netns: string,
    readonly identity: NetnsIdentity,
  ) {
    this.sysctl = new SysctlFiles(netns, (fn) => this.enter(fn));
  }

  /** Runs fn inside this namespace, refusing if the name now means another one. */
  private enter<T>(fn: () => T): T {
    if (this.closed) throw new Error(`namespace handle ${this.netns} is closed`);
    return withNetns(this.netns, fn, this.netns === HOST_NETNS ? undefined : this.identity);
  }

  private genl(): { sock: NlSocket; fam: GenlFamily } {
    if (!this.genlSock) this.genlSock = this.enter(() => new NlSocket(NETLINK_GENERIC, this.netns));
    this.fam ??= resolveMptcpFamily(this.genlSock);
    return { sock: this.genlSock, fam: this.fam };
  }

  private rtnl(): NlSocket {
    if (!this.rtnlSock) this.rtnlSock = this.enter(() => new NlSocket(NETLINK_ROUTE, this.netns));
    return this.rtnlSock;
  }

  async dumpEndpoints(): Promise<LiveEndpoint[]> {
    const { sock, fam } = this.genl();
    const out: LiveEndpoint[] = [];
    run(sock, writer.reset(), [queueDumpEndpoints(writer, fam, out)]);
    return out;
  }

  /** ADD_ADDR; `rawFlags` (beyond EndpointSpec) sends bits the flag table does not name. */
  async addEndpoint(ep: EndpointSpec | EndpointRequest): Promise<void> {
    const { sock, fam } = this.genl();
    run(sock, writer.reset(), [queueAddEndpoint(writer, fam, ep)]);
  }

  async deleteEndpoint(id: number): Promise<void> {
    const { sock, fam } = this.genl();
    run(sock, writer.reset(), [queueDeleteEndpoint(writer, fam, id, this.netns)]);
  }

  async setEndpointFlags(id: number, flags: { backup: boolean; fullmesh: boolean }): Promise<void> {
    const { sock, fam } = this.genl();
    run(sock, writer.reset(), [queueSetFlags(writer, fam, id, flags, this.netns)]);
  }


  async setLimits(limits: Partial<Limits>): Promise<void> {
    if (limits.subflows === undefined && limits.addAddrAccepted === undefined) return;
    const { sock, fam } = this.genl();
    run(sock, writer.reset(), [queueSetLimits(writer, fam, limits)]);
  }

  async runBatch(writes: readonly KernelWrite[]): Promise<KernelWriteResult[]> {
    if (writes.length === 0) return [];
    const { sock, fam } = this.genl();
    return runWrites(sock, writer, fam, writes);
  }


  /** Opens the change feed; `handlers` see every notification after the kept values are dropped. */
  subscribe(handlers: EventSocketHandlers): EventSocket {
    this.feed?.close();
    const saw = () => {
      this.feedSaw = true;
    };
    const sock = openEventSocket(this.netns, (fn) => this.enter(fn), {
      onEvents: (all) => {
        const events = all.filter((e) => this.concerns(e));
        if (events.length === 0) return;
        saw();
        handlers.onEvents(events);
      },
      onOverflow: () => {
        saw();
        handlers.onOverflow();
      },
      onError: (err) => {
        saw();
        handlers.onError?.(err);
      },
    });
    this.feed = sock;
    this.routingJoined = false;
    this.linkWatch?.close();
    this.linkWatch = undefined;
    // Nothing kept from before the subscription can be vouched for.
    this.dropWatched();
    return {
      netns: this.netns,
      close: () => {
        sock.close();
        if (this.feed !== sock) return;
        this.feed = undefined;
        this.dropWatched();
      },
    };
  }

  /** Route notifications matter only for the tables source routing reads and for the tool's own routes. */
  private concerns(e: RtnlEvent): boolean {
    if (e.kind !== 'newroute' && e.kind !== 'delroute') return true;
    return e.protocol === RTPROT_RECONCILER || (e.table !== undefined && this.routingTables.has(e.table));
  }

  /** Drops what the kept lists and values say when a notification (or a lost one) came since the last drain. */
  private drainWatch(): void {
    if (this.feed) {
      if (this.feedSaw || !KEEP_WATCHED.fresh(this.watchedSince)) this.dropWatched();
      this.feedSaw = false;
      return;
    }
    if (!this.linkWatch) {
      // A handle read once (a one-shot `plan`) would keep nothing worth a
      // subscribed socket, and joining groups is a kernel walk over every
      // listener of the protocol: the first read dumps everything, and the
      // watch is opened at the second (which then dumps again).
      if (this.unwatchedReads++ === 0) {
        this.dropWatched();
        return;
      }
      try {
        this.linkWatch = this.enter(() => new NlSocket(NETLINK_ROUTE, this.netns));
      } catch {
        // The name is gone or means another namespace now (a pass's identity check
        // reports that): this read dumps over the sockets the handle already has.
        this.dropWatched();
        return;
      }
      for (const g of Object.values(RTNLGRP)) this.linkWatch.joinGroup(g);
      this.dropWatched();
    }
    // rp_filter set over RTM_SETLINK (IFLA_INET_CONF) sends no notification
    // (docs/kernel-notes.md#rp_filter): what is kept is also dropped after a while, so such drift is
    // still seen, at the cost of one full read per namespace per KEEP_WATCHED_MS.
    if (this.linkWatch.drainNotifications() || !KEEP_WATCHED.fresh(this.watchedSince)) this.dropWatched();
  }

  private watchedSince = 0;
  private unwatchedReads = 0;

  private dropWatched(): void {
    this.watchedSince = KEEP_WATCHED.stamp();
    this.linkCache = undefined;
    this.addrCache = undefined;
    this.rpCache = undefined;
    this.routingCache = undefined;
  }

  async runRouting(ops: readonly RoutingOp[]): Promise<KernelWriteResult[]> {
    if (ops.length === 0) return [];
    const results = runRoutingOps(this.rtnl(), ops);
    // Our own writes: the notification would tell too, but the verify read comes first.
    this.routingCache = undefined;
    if (ops.some((o) => o.op.startsWith('add'))) this.owned = 'some';
    return results;
  }

  private routingInto(live: LiveNamespace, select: NonNullable<LiveSelection['routing']>, fp: FingerprintBuilder | undefined): void {
    const r = this.readRouting(select);
    if (r) {
      live.routes = r.routes;
      live.rules = r.rules;
    }
    // Decoded already (a few messages); their text stands for their bytes.
    fp?.u32(6).str(r ? JSON.stringify(r) : '');
  }

  /**
   * Rules, and routes of `tables` plus the tool's own; for 'owned', only while
   * the tool may have something here. Synchronous: called inside the namespace.
   */
  private readRouting(select: NonNullable<LiveSelection['routing']>): { routes: LiveRoute[]; rules: LiveRule[] } | undefined {
    if (select === 'owned' && this.owned === 'none') return undefined;
    const tables = select === 'owned' ? [] : [...select.tables].sort((a, b) => a - b);
    const key = select === 'owned' ? 'owned' : tables.join(',');
    if (this.feed && !this.routingJoined && select !== 'owned') {
      this.feed.join?.(Object.values(RTNLGRP_ROUTING));
      this.routingJoined = true;
      this.routingCache = undefined;
    }
    this.routingTables = new Set(tables);
    if (this.routingJoined && this.routingCache?.key === key) return { routes: this.routingCache.routes.map((r) => ({ ...r })), rules: this.routingCache.rules.map((r) => ({ ...r })) };
    const rules = dumpRules(this.rtnl());
    const ownRule = rules.some((r) => r.protocol === RTPROT_RECONCILER);
    // Without a declared table, an own route without an own rule is not looked for: the rule dump alone is a few messages.
    const routes = select !== 'owned' || ownRule || this.owned === 'some' ? dumpRoutes(this.rtnl(), new Set(tables)) : [];
    const mine = ownRule || routes.some((r) => r.protocol === RTPROT_RECONCILER);
    this.owned = mine ? 'some' : 'none';
    if (select === 'owned' && !mine) return undefined;
    if (this.routingJoined) this.routingCache = { key, routes: routes.map((r) => ({ ...r })), rules: rules.map((r) => ({ ...r })) };
    return { routes, rules };
  }






  writeMptcpSysctl(key: MptcpKey, value: string | number | boolean): void {
    this.sysctl.writeMptcp(key, value);
  }


  writeRpFilter(iface: string, value: 0 | 1 | 2): void {
    // The netconf notification would tell as well; our own write need not wait for it.
    this.rpCache = undefined;
    this.sysctl.writeRpFilter(iface, value);
  }

  async readLive(select: LiveSelection = {}): Promise<LiveNamespace> {
    // The first read opens the sockets and /proc/sys files; doing it inside one
    // namespace entry (the inner entries are then no-ops) instead of one per socket
    // and file group saves four setns round trips per namespace, a fifth of a
    // one-shot CLI pass. The body is synchronous, as withNetns requires.
    if (this.entered) return this.readLiveSync(select)!;
    const live = this.enter(() => this.readLiveSync(select)!);
    this.entered = true;
    return live;
  }

  private entered = false;
  private fp: FingerprintBuilder | undefined;

  async readLiveIfChanged(select: LiveSelection, since?: LiveFingerprint): Promise<{ live: LiveNamespace | undefined; fingerprint: LiveFingerprint }> {
    const fp = (this.fp ??= new FingerprintBuilder()).reset();
    let live: LiveNamespace | undefined;
    if (this.entered) live = this.readLiveSync(select, fp, since);
    else {
      live = this.enter(() => this.readLiveSync(select, fp, since));
      this.entered = true;
    }
    return { live, fingerprint: live ? fp.snapshot() : since! };
  }

  /** With `fp`: fingerprints the read, and returns undefined (nothing decoded) when it equals `since`. */
  private readLiveSync(select: LiveSelection, fp?: FingerprintBuilder, since?: LiveFingerprint): LiveNamespace | undefined {
    // Routing is never part of "everything": a caller asks for it by name.
    const all = Object.keys(select).every((k) => k === 'routing');
    const want = (v: unknown) => (all ? true : v !== undefined && v !== false);
    const live: LiveNamespace = {
      netns: this.netns,
      endpoints: [],
      limits: { subflows: 0, addAddrAccepted: 0 },
      mptcp: {},
      rpFilter: {},
      links: [],
      addresses: [],
    };
    const rpAll = all || select.rpFilter === true;
    const rpList = rpAll ? undefined : Array.isArray(select.rpFilter) ? select.rpFilter : undefined;
    // The netconf dump names interfaces by ifindex: the links give their names.
    const needLinks = want(select.links) || rpAll || rpList !== undefined;
    const wantAddrs = want(select.addresses);
    // Kept routes and rules hang on the feed too; without a feed they are never kept (no watch socket for them).
    if (needLinks || wantAddrs || (select.routing && this.feed)) this.drainWatch();
    let rpTable = rpAll || rpList ? this.rpCache : undefined;
    const rpDump = (rpAll || rpList !== undefined) && rpTable === undefined ? new Map<number, number>() : undefined;

    // Send every request first, then collect: the genl batch (limits, then the
    // endpoint dump; one socket runs one dump at a time) and the link dump.
    let genlReqs: NlRequest[] = [];
    let genlSock: NlSocket | undefined;
    if (want(select.limits) || want(select.endpoints)) {
      const { sock, fam } = this.genl();
      genlSock = sock;
      writer.reset();
      if (want(select.limits)) genlReqs.push(queueGetLimits(writer, fam, live.limits));
      if (want(select.endpoints)) genlReqs.push(queueDumpEndpoints(writer, fam, live.endpoints));
      if (fp) for (const r of genlReqs) fp.defer(r);
      sock.send(writer, genlReqs[0]!.op);
    }
    let linkReq: NlRequest | undefined;
    let rpReq: NlRequest | undefined;
    // Copied out of the cache only when the caller gets a live state (or rp_filter needs the names now).
    const linksCached = needLinks && this.linkCache !== undefined;
    if (linksCached && (!fp || rpAll)) live.links = this.linkCache!.map((l) => ({ ...l }));
    // One dump at a time per socket: the netconf dump takes the link dump's place
    // beside the genl batch when the links are kept, else it follows them.
    if (needLinks && !linksCached) {
      linkReq = queueDumpLinks(writer.reset(), live.links);
      this.rtnl().send(writer, linkReq.op);
    } else if (rpDump) {
      rpReq = queueDumpRpFilter(writer.reset(), rpDump);
      this.rtnl().send(writer, rpReq.op);
    }
    if (genlSock) {
      fp?.u32(1);
      genlSock.collect(genlReqs);
      throwIfFailed(genlReqs);
      genlReqs = [];
    }
    if (linkReq) {
      this.rtnl().collect([linkReq]);
      throwIfFailed([linkReq]);
      this.linkCache = live.links.map((l) => ({ ...l }));
      if (!sameRecords(this.lastLinks, this.linkCache)) this.linkGen++;
      this.lastLinks = this.linkCache;
    }
    if (needLinks) fp?.u32(2).u32(this.linkGen);
    if (rpDump) rpTable = this.finishRpDump(rpDump, rpReq);
    const addrsCached = wantAddrs && this.addrCache !== undefined;
    if (addrsCached && !fp) live.addresses = this.addrCache!.map((a) => ({ ...a }));
    else if (wantAddrs && !addrsCached) {
      run(this.rtnl(), writer.reset(), [queueDumpAddresses(writer, live.addresses)]);
      this.addrCache = live.addresses.map((a) => ({ ...a }));
      if (!sameRecords(this.lastAddrs, this.addrCache)) this.addrGen++;
      this.lastAddrs = this.addrCache;
    }
    if (wantAddrs) fp?.u32(3).u32(this.addrGen);
    if (want(select.mptcp)) {
      live.mptcp = this.sysctl.readMptcp(Array.isArray(select.mptcp) ? select.mptcp : MPTCP_KEYS);
      if (fp) {
        fp.u32(4);
        // for..in: no entry arrays for what every resync writes.
        const m = live.mptcp as Record<string, unknown>;
        for (const k in m) fp.str(k).str(String(m[k]));
      }
    }
    const rpNames = rpAll ? live.links.map((l) => l.name) : rpList;
    if (rpNames) live.rpFilter = rpFilterByName(rpTable!, this.linkCache!, rpNames);
    if (fp && rpNames) {
      fp.u32(5);
      for (const k in live.rpFilter) fp.str(k).u32(live.rpFilter[k]!);
    }
    if (select.routing) this.routingInto(live, select.routing, fp);
    if (fp) {
      if (fp.equals(since)) return undefined;
      fp.decodeAll();
      if (linksCached && !rpAll) live.links = this.linkCache!.map((l) => ({ ...l }));
      if (addrsCached) live.addresses = this.addrCache!.map((a) => ({ ...a }));
    }
    if (!needLinks || (!all && !want(select.links))) live.links = [];
    return live;
  }

  /** Collects the netconf dump sent beside the genl batch, or runs it now that the link dump is done. */
  private finishRpDump(into: Map<number, number>, sent: NlRequest | undefined): Map<number, number> {
    if (sent) {
      this.rtnl().collect([sent]);
      throwIfFailed([sent]);
    } else run(this.rtnl(), writer.reset(), [queueDumpRpFilter(writer, into)]);
    this.rpCache = into;
    return into;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.genlSock?.close();
    this.rtnlSock?.close();
    this.linkWatch?.close();
    this.linkWatch = undefined;
    this.feed?.close();
    this.feed = undefined;
    this.dropWatched();
    this.sysctl.close();
    this.genlSock = undefined;
    this.rtnlSock = undefined;
  }
}

/** Raw rp_filter of `names` plus all and default; interfaces without a link or a value are left out. */
function rpFilterByName(table: ReadonlyMap<number, number>, links: readonly LiveLink[], names: readonly string[]): Record<string, number> {
  const out: Record<string, number> = {};
  const put = (name: string, v: number | undefined) => {
    if (v !== undefined) out[name] = v;
  };
  put('all', table.get(NETCONFA_IFINDEX_ALL));
  put('default', table.get(NETCONFA_IFINDEX_DEFAULT));
  // A namespace has a handful of interfaces: a scan beats building a map per read.
  for (const name of names) {
    if (name === 'all' || name === 'default') continue;
    const link = links.find((l) => l.name === name);
    if (link !== undefined) put(name, table.get(link.ifindex));
  }
  return out;
}

/** Two dumps of flat records (links, addresses) that say the same, in the same order. */
function sameRecords<T extends object>(a: readonly T[], b: readonly T[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i] as Record<string, unknown>;
    const y = b[i] as Record<string, unknown>;
    const keys = Object.keys(x);
    if (keys.length !== Object.keys(y).length) return false;
    for (const k of keys) if (x[k] !== y[k]) return false;
  }
  return true;
}

/** How long links, addresses and rp_filter values read once are trusted without a notification. */
export const KEEP_WATCHED_MS = 60_000;
const KEEP_WATCHED = new MaxAge(KEEP_WATCHED_MS);

const cache = new Map<string, KernelNamespace>();

/**
 * The handle of namespace `name`, cached. Each call checks that the name still
 * points at the same namespace (st_dev/st_ino of /run/netns/NAME): a namespace
 * deleted and re-created gets fresh sockets, a deleted one is dropped and
 * reported with ENOENT. `known`: that identity, when the caller has just taken it.
 */
export function openNamespace(name: string, known?: NetnsIdentity): NamespaceKernel {
  const id = known ?? netnsIdentity(name);
  const cached = cache.get(name);
  if (cached && (!id || cached.identity.dev !== id.dev || cached.identity.ino !== id.ino)) {
    cached.close();
    cache.delete(name);
  }
  if (!id) {
    throw new KernelError({ op: 'open netns', netns: name, errno: 2, code: 'ENOENT', extack: 'no such namespace in /run/netns', retryable: false });
  }
  let ns = cache.get(name);
  if (!ns) {
    ns = new KernelNamespace(name, id);
    cache.set(name, ns);
  }
  return ns;
}

/**
 * The change feed of namespace `name` (its cached handle): rtnetlink
 * notifications of links, addresses and rp_filter, which also drop the handle's
 * kept values. Closed with the handle.
 */
export function subscribeNamespace(name: string, known: NetnsIdentity | undefined, handlers: EventSocketHandlers): EventSocket {
  return (openNamespace(name, known) as KernelNamespace).subscribe(handlers);
}

/** Closes and forgets the cached handle of `name` (e.g. when its namespace is gone). */
export function closeNamespace(name: string): void {
  cache.get(name)?.close();
  cache.delete(name);
}

/** Drops cached handles whose namespace no longer exists or was replaced; returns their names. */
export function pruneNamespaceCache(): string[] {
  const dropped: string[] = [];
  for (const [name, ns] of cache) {
    const id = netnsIdentity(name);
    if (!id || id.dev !== ns.identity.dev || id.ino !== ns.identity.ino) {
      ns.close();
      cache.delete(name);
      dropped.push(name);
    }
  }
  return dropped;
}

export function closeAllNamespaces(): void {
  for (const ns of cache.values()) ns.close();
  cache.clear();
}
