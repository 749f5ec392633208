// The real pieces behind the daemon's loop: config loader, kernel layer, apply engine.
import { formatDiagnostics, loadConfig, missingNamespaces, resolveAll } from '../config/index.js';
import type { Diagnostic } from '../config/index.js';
import { reconcileNamespace } from '../apply/reconcile.js';
import { capabilitiesOfHandle } from '../kernel/capabilities.js';
import { closeNamespace, openNamespace, subscribeNamespace } from '../kernel/namespace.js';
import { listNamespaces, NETNS_DIR, netnsIdentity } from '../kernel/netns.js';
import type { DaemonDeps } from './daemon.js';

export function realDeps(overrides: Partial<DaemonDeps> = {}): DaemonDeps {
  return {
    loadConfig: (path, node) => loadConfig(path, { node }),
    formatDiagnostics: (d) => formatDiagnostics(d as Diagnostic[]),
    resolveAll: (c, node, names) => resolveAll(c, node, names),
    missingNamespaces: (c, node, names) => missingNamespaces(c, node, names),
    listNamespaces: () => listNamespaces(),
    netnsIdentity: (name) => netnsIdentity(name),
    openNamespace: (name, identity) => openNamespace(name, identity),
    closeNamespace: (name) => closeNamespace(name),
    // The handle's own change feed: the one subscription that triggers passes also drops its kept values.
    openEvents: (name, identity, handlers) => subscribeNamespace(name, identity, handlers),
    reconcile: (kernel, desired, o) => reconcileNamespace(kernel, desired, o),
    // A probe that cannot enter the namespace plans without capabilities (as before
    // they existed); the pass itself then reports why the namespace is unreachable.
    capabilities: (kernel) => {
      try {
        return capabilitiesOfHandle(kernel);
      } catch {
        return undefined;
      }
    },
    netnsDir: NETNS_DIR,
    ...overrides,
  };
}
