// Shared shapes of the pure core: what one namespace should be (desired), what it
// is (live), and the operations that turn one into the other. The shell (kernel/,
// apply/, daemon/) fills and consumes these; nothing here does I/O.
import type {
  ConflictPolicy,
  EndpointConfig,
  LimitsConfig,
  MptcpConfig,
  RpFilterName,
} from './schema.js';
import type { FlagName } from './flags.js';
import type { LinkDownPolicy } from './schema-routing.js';
import type { SourceRouteConfig } from './schema-routing.js';
import type { LiveRoute, LiveRule, RoutingOp, RoutingPlan } from './source-routing.js';

/** Effective desired state of one concrete namespace on one node, after merging. */
export interface DesiredNamespace {
  netns: string;
  /** Only declared keys; an absent key is never touched. */
  mptcp: MptcpConfig;
  limits: LimitsConfig;
  /** undefined: no entry declared `endpoints`, so endpoints are not managed at all. */
  endpoints: EndpointConfig[] | undefined;
  /** Interface name (or `all` / `default`) -> value; only these are touched. */
  rpFilter: Record<string, RpFilterName>;
  prune: boolean;
  conflicts: ConflictPolicy;
  /**
   * Interface -> its table (merged `sourceRouting`); undefined when no entry
   * declares the key. Then only routes and rules the tool created earlier are
   * looked for, and removed.
   */
  sourceRouting?: Record<string, SourceRouteConfig>;
  /** `linkDown` and `linkDownHold` after merging; absent: the defaults (withdraw after 3s). */
  linkDown?: { policy: LinkDownPolicy; holdMs: number };
}

/**
 * What `watch`'s link lifecycle (core/link-lifecycle.ts) holds back in one pass:
 * the planner deletes the endpoints of these interfaces and adds them back,
 * with their old ids, once the interface is no longer listed.
 */
export interface LinkHold {
  /** Withdrawn interface -> since when and why, e.g. "link c2 without carrier for 3s". */
  withdrawn: ReadonlyMap<string, { reason: string; since?: string }>;
  /** endpointKey -> the id the endpoint had before it was withdrawn. */
  ids: ReadonlyMap<string, number>;
}

/** A declared endpoint whose interface has no carrier (or is down): held back by watch, or noted by apply. */
export interface LinkDownEndpoint {
  /** endpointLabel: `203.0.113.2` or `203.0.113.2 port 10000`. */
  endpoint: string;
  iface: string;
  /** withdrawn: held back for now (watch); no-carrier: declared anyway (apply cannot tell for how long). */
  state: 'withdrawn' | 'no-carrier';
  reason: string;
  /** ISO time the interface lost carrier (watch only). */
  since?: string;
  /** The id it had and will get back. */
  id?: number;
}

export type Family = 4 | 6;

export interface LiveEndpoint {
  id: number;
  family: Family;
  /** Canonical text form (node:net / inet_ntop style). */
  address: string;
  /** Absent when the kernel reports port 0. */
  port?: number;
  flags: FlagName[];
  /** Bits the flag table does not know, kept visible (ip mptcp's rawflags). */
  rawFlags?: number;
  /** Absent when the kernel reports no IF_IDX. */
  ifindex?: number;
}

export interface LiveLink {
  ifindex: number;
  name: string;
  /** IFF_UP set. */
  up: boolean;
  /** IFF_LOWER_UP / carrier. */
  lowerUp: boolean;
}

export type AddressScope = 'global' | 'site' | 'link' | 'host' | 'nowhere';

export interface LiveAddress {
  ifindex: number;
  family: Family;
  address: string;
  prefixlen: number;
  scope: AddressScope | number;
  tentative: boolean;
  dadfailed: boolean;
  deprecated: boolean;
  temporary: boolean;
}

/** Everything the reconciler reads from one namespace in one pass. */
export interface LiveNamespace {
  netns: string;
  endpoints: LiveEndpoint[];
  limits: { subflows: number; addAddrAccepted: number };
  /** The net.mptcp.* sysctls this kernel has (absent keys: the kernel lacks them). */
  mptcp: MptcpConfig;
  /** Raw rp_filter per interface name plus `all` and `default` (0..2, other values kept). */
  rpFilter: Record<string, number>;
  links: LiveLink[];
  addresses: LiveAddress[];
  /**
   * Read only for source routing (LiveSelection.routing): routes of the declared
   * tables plus every route with the tool's protocol, and every rule. Undefined:
   * not read (then no routing is planned).
   */
  routes?: LiveRoute[];
  rules?: LiveRule[];
}

/** An endpoint as sent to ADD_ADDR, or as identified for DEL/SET_FLAGS. */
export interface EndpointSpec {
  address: string;
  port?: number;
  id?: number;
  flags: FlagName[];
  /** Interface name, for humans and for resolving ifindex at apply time. */
  dev?: string;
  ifindex?: number;
}

interface OpBase {
  /** True when live subflows or listeners may be closed (delete, either half of a replace). */
  disruptive: boolean;
  /** Made by the link lifecycle, not by drift: neither drift nor a fight. */
  linkDown?: 'withdraw' | 'restore';
  /** Why: e.g. "not declared (prune)", "replace: port 10000 -> 10001". */
  reason?: string;
}

export type Operation =
  | (OpBase & { op: 'add'; endpoint: EndpointSpec })
  | (OpBase & {
      op: 'delete';
      id: number;
      endpoint: EndpointSpec;
      /**
       * 'flush': the plan deletes every live endpoint, so these deletes go to the
       * kernel as one FLUSH_ADDRS (one write, the id counter back to 1, and no
       * RM_ADDR for subflow endpoints in use) instead of one DEL_ADDR each.
       */
      via?: 'flush';
    })
  | (OpBase & {
      op: 'set-flags';
      id: number;
      endpoint: EndpointSpec;
      backup: boolean;
      fullmesh: boolean;
      from: { backup: boolean; fullmesh: boolean };
    })
  | (OpBase & {
      op: 'set-limits';
      subflows?: number;
      addAddrAccepted?: number;
      from: { subflows: number; addAddrAccepted: number };
    })
  | (OpBase & {
      op: 'set-sysctl';
      key: keyof MptcpConfig;
      /** Full name, e.g. net.mptcp.path_manager. */
      sysctl: string;
      value: string | number | boolean;
      from?: string | number | boolean;
    })
  | (OpBase & { op: 'set-rp-filter'; iface: string; value: 0 | 1 | 2; from?: number });

/** Something declared that cannot be acted on yet (e.g. its `dev` does not exist). */
export interface Pending {
  what: string;
  reason: string;
}

export interface NamespacePlan {
  netns: string;
  operations: Operation[];
  pending: Pending[];
  /** Problems found while planning that make convergence impossible (e.g. more than 8 endpoints). */
  errors: string[];
  /** Declared endpoints on interfaces without carrier (see LinkDownEndpoint); absent when none. */
  linkDown?: LinkDownEndpoint[];
  /** Route and rule writes (source routing); absent when routing was not read. */
  routing?: RoutingPlan;
}

/** A routing write with its outcome, in the order it runs (before, then after the endpoint writes). */
export type RoutingOpResult = RoutingOp & { when: 'before' | 'after'; result?: 'ok' | 'failed' | 'skipped'; error?: string };

/** Outcome of plan/apply for one namespace: the shape of `-o json`. */
export interface NamespaceResult {
  netns: string;
  operations: (Operation & { result?: 'ok' | 'failed' | 'skipped'; error?: string })[];
  converged: boolean;
  pending: Pending[];
  errors: { message: string; op?: string; errno?: string; retryable?: boolean }[];
  /** First difference found by verify, nmstate style: `endpoints[192.0.2.1].flags: want [...], have [...]`. */
  firstDifference?: string;
  /** Declared endpoints on interfaces without carrier: held back (watch) or noted (apply). */
  linkDown?: LinkDownEndpoint[];
}

/**
 * What the running kernel can hold, probed once per namespace (src/kernel/capabilities.ts).
 * The planner refuses a declaration that needs more, instead of a pass that never converges.
 */
export interface KernelCapabilities {
  /** uname release, e.g. 6.18.44. */
  release: string;
  /** Endpoint flags this kernel stores; undefined when the release could not be read (nothing refused). */
  endpointFlags?: FlagName[];
  /** net.mptcp.* sysctl names present in the namespace (e.g. path_manager). */
  sysctls: string[];
  /** net.mptcp.available_path_managers / available_schedulers, when the kernel has them. */
  pathManagers?: string[];
  schedulers?: string[];
}

/** What planning asks of the capabilities: the release and its endpoint flags. */
export type PlanCapabilities = Pick<KernelCapabilities, 'release' | 'endpointFlags'>;
