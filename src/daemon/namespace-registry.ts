// Which namespaces the daemon manages, and their handles. The managed set is
// what the config resolves to over "host" and the names in /run/netns; each
// managed namespace has an rtnetlink event socket, reopened when its name comes
// to point at another namespace (deleted and re-created).
import type { Config } from '../core/schema.js';
import type { DesiredNamespace } from '../core/model.js';
import type { EventSocket, EventSocketHandlers } from '../kernel/events.js';
import type { NetnsIdentity } from '../kernel/netns.js';
import type { Logger } from '../log.js';

export interface RegistryDeps {
  resolveAll(config: Config, node: string, netnsNames: string[]): DesiredNamespace[];
  missingNamespaces(config: Config, node: string, netnsNames: string[]): string[];
  listNamespaces(): string[];
  netnsIdentity(name: string): NetnsIdentity | undefined;
  closeNamespace(name: string): void;
  openEvents(name: string, identity: NetnsIdentity | undefined, handlers: EventSocketHandlers): EventSocket;
  netnsDir: string;
}

export interface Handles {
  identity: NetnsIdentity | undefined;
  events?: EventSocket;
}

export function sameIdentity(a: NetnsIdentity | undefined, b: NetnsIdentity | undefined): boolean {
  return a?.dev === b?.dev && a?.ino === b?.ino;
}

export interface RegistryOptions {
  node: string;
  deps: RegistryDeps;
  logger: Logger;
  /** The namespace needs a pass (`urgent`: cancel its backoff). */
  mark(netns: string, reason: string, urgent: boolean): void;
  /** The namespace left the managed set: forget whatever else is kept about it. */
  onDrop(netns: string): void;
  /** A new config: what was learnt about the namespace under the old one no longer holds. */
  onNewConfig(netns: string): void;
  /** Same name, another namespace (deleted and created again): nothing learnt about the old one applies. */
  onRecreated?(netns: string): void;
}

export class NamespaceRegistry {
  /** Managed namespaces in resolveAll's order (host first). */
  desired = new Map<string, DesiredNamespace>();
  /** Declared by name but not in /run/netns. */
  missing: string[] = [];
  private readonly handles = new Map<string, Handles>();
  // What the current config resolves each name to (null: no entry applies), kept
  // while the config object stays: a /run/netns change (a pod started elsewhere on
  // the node) resolves only the new names, and managed namespaces keep their
  // DesiredNamespace objects, by which the pass memo recognises a converged pass.
  private resolved: { config: Config; byName: Map<string, DesiredNamespace | null> } | undefined;

  constructor(private readonly o: RegistryOptions) {}

  /** desired per name, resolving only names not seen with this config. */
  private resolve(cfg: Config, names: string[]): Map<string, DesiredNamespace> {
    const known = this.resolved?.config === cfg ? this.resolved.byName : new Map<string, DesiredNamespace | null>();
    const order = [...new Set(['host', ...names])];
    const fresh = order.filter((n) => !known.has(n));
    const found = fresh.length > 0 ? new Map(this.o.deps.resolveAll(cfg, this.o.node, fresh).map((d) => [d.netns, d])) : undefined;
    const byName = new Map<string, DesiredNamespace | null>();
    const next = new Map<string, DesiredNamespace>();
    for (const n of order) {
      const d = known.has(n) ? known.get(n)! : (found!.get(n) ?? null);
      byName.set(n, d);
      if (d) next.set(n, d);
    }
    this.resolved = { config: cfg, byName };
    return next;
  }

  /**
   * Recomputes which namespaces are managed (config or /run/netns changed) and marks
   * what needs a pass. `touched`: the only names that may have been re-created
   * (undefined: any); the others are not stat'ed (a pass finds a re-creation anyway).
   */
  refresh(cfg: Config, reason: string, urgent: boolean, touched?: ReadonlySet<string>): void {
    const { deps, logger: log } = this.o;
    const names = deps.listNamespaces();
    const next = this.resolve(cfg, names);
    const nowMissing = deps.missingNamespaces(cfg, this.o.node, names);
    for (const m of nowMissing) if (!this.missing.includes(m)) log.warn({ netns: m }, `netns ${m} is declared but not in ${deps.netnsDir}; it will be configured when it appears`);
    this.missing = nowMissing;
    const prev = this.desired;
    this.desired = next;
    for (const ns of prev.keys()) if (!next.has(ns)) this.drop(ns, reason);
    for (const ns of next.keys()) {
      const h = this.handles.get(ns);
      const isNew = !prev.has(ns);
      const replaced = h !== undefined && (touched === undefined || touched.has(ns)) && !sameIdentity(h.identity, deps.netnsIdentity(ns));
      // A new config makes old repeated corrections meaningless for the fight detector.
      if (reason.startsWith('config:')) this.o.onNewConfig(ns);
      if (isNew || replaced || urgent) {
        if (isNew) log.info({ netns: ns, reason }, 'namespace managed');
        this.o.mark(ns, reason, true);
      }
    }
  }

  /** Drops a namespace that vanished or is no longer declared: handles closed, quietly. */
  drop(ns: string, why: string): void {
    const h = this.handles.get(ns);
    h?.events?.close();
    this.handles.delete(ns);
    if (h) this.o.deps.closeNamespace(ns);
    this.o.logger.debug({ netns: ns, why }, 'namespace dropped');
    this.o.onDrop(ns);
  }

  /**
   * The namespace's handles for a pass, opening (or re-opening, after a
   * re-creation) its event socket; undefined when the name is gone.
   */
  ensure(ns: string, handlers: () => EventSocketHandlers): Handles | undefined {
    const { deps } = this.o;
    const identity = deps.netnsIdentity(ns);
    if (!identity) return undefined;
    let h = this.handles.get(ns);
    if (h && !sameIdentity(h.identity, identity)) {
      // Same name, another namespace: nothing from the old one may be reused.
      h.events?.close();
      deps.closeNamespace(ns);
      h = undefined;
      this.o.onRecreated?.(ns);
    }
    if (!h) {
      h = { identity };
      this.handles.set(ns, h);
    }
    // Subscribed before the pass reads: a change made during the read is seen afterwards.
    if (!h.events) h.events = deps.openEvents(ns, identity, handlers());
    return h;
  }

  /** Closes the event socket after it failed; the next pass opens a new one. */
  dropEvents(ns: string): void {
    const h = this.handles.get(ns);
    h?.events?.close();
    if (h) delete h.events;
  }

  closeAll(): void {
    for (const [ns, h] of this.handles) {
      h.events?.close();
      this.o.deps.closeNamespace(ns);
    }
    this.handles.clear();
  }
}
