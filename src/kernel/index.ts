// The kernel layer's entry points, in one import for apply, daemon, doctor and show.
export { KernelError, type Limits, type LiveSelection, type NamespaceKernel } from './api.js';
export { closeAllNamespaces, closeNamespace, openNamespace, pruneNamespaceCache } from './namespace.js';
export {
  HOST_NETNS,
  NETNS_DIR,
  type NetnsIdentity,
  listNamespaces,
  netnsIdentity,
  netnsMatches,
  netnsNameProblem,
  selectNamespaces,
  withNetns,
} from './netns.js';
export { type EndpointRequest } from './mptcp-codec.js';
export { type GenlFamily, resolveMptcpFamily } from './mptcp-pm.js';
export { NETLINK_GENERIC, NETLINK_ROUTE, NlSocket } from './nlsock.js';
export { SYSCTL_SINCE } from './procfs.js';
