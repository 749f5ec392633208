// The imperative half of doctor: reads each selected namespace (live state,
// default routes, MPTCP connections, other managers), resolves the config for it,
// and hands the facts to the pure rules. It only reads: no socket it opens can
// write, and it never calls a NamespaceKernel setter.
import type { Config } from '../core/schema.js';
import { missingNamespaces, resolveNamespace } from '../config/merge.js';
import { detectFromScan, readManagerConfigs, type ManagerConfigs } from '../conflicts/index.js';
import { scanManagerProcesses, type ProcScan } from '../conflicts/procscan.js';
import { KernelError } from '../kernel/api.js';
import { closeAllNamespaces, openNamespace } from '../kernel/namespace.js';
import { HOST_NETNS, netnsIdentity, netnsMatches } from '../kernel/netns.js';
import { readMptcpConnections, type MptcpConnection } from '../kernel/sockdiag.js';
import { finding, sortFindings, type Finding } from './findings.js';
import { readMptcpMib } from './mib.js';
import { probeCapabilities } from '../kernel/capabilities.js';
import type { KernelCapabilities } from '../core/model.js';
import { diagnoseNamespace, type NamespaceFacts } from './rules.js';
import { readRoutingFacts } from '../kernel/route-rules.js';

export interface DoctorInput {
  node: string;
  /** Namespaces to check, in order (already selected by --netns). */
  names: string[];
  /** Every namespace on the node, and the --netns glob: a declared namespace is missing only if absent from all. */
  allNames: string[];
  pattern?: string;
  config?: Config;
  procRoot: string;
  etcRoot: string;
}

export interface NamespaceReport {
  netns: string;
  findings: Finding[];
  /** What the running kernel supports, as probed in this namespace. */
  capabilities?: KernelCapabilities;
}

function describe(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

async function factsFor(name: string, input: DoctorInput, scan: ProcScan, configs: ManagerConfigs | undefined): Promise<NamespaceFacts> {
  const live = await openNamespace(name).readLive();
  let connections: MptcpConnection[] | undefined;
  let connectionsError: string | undefined;
  const { defaultRoutes, rules } = readRoutingFacts(name);
  try {
    connections = readMptcpConnections(name);
  } catch (e) {
    if (!(e instanceof KernelError)) throw e;
    connectionsError = e.message;
  }
  let mib: Record<string, number> | undefined;
  try {
    mib = readMptcpMib(name);
  } catch {
    mib = undefined; // a kernel without the MPTCP MIB: the rules that need it stay silent
  }
  const desired = input.config ? resolveNamespace(input.config, input.node, name) : undefined;
  const target = netnsIdentity(name);
  const managers = target
    ? detectFromScan(scan, configs, {
        target,
        isHost: name === HOST_NETNS,
        ...(live.mptcp.pathManager !== undefined ? { livePathManager: live.mptcp.pathManager } : {}),
        ...(desired?.mptcp.pathManager !== undefined ? { desiredPathManager: desired.mptcp.pathManager } : {}),
      })
    : [];
  return {
    netns: name,
    live,
    defaultRoutes,
    rules,
    ...(connections ? { connections } : {}),
    ...(connectionsError ? { connectionsError } : {}),
    managers,
    ...(desired ? { desired } : {}),
    ...(mib ? { mib } : {}),
    capabilities: probeCapabilities(name),
  };
}

/** Checks every namespace in input.names; a namespace that cannot be read is an error finding, never a crash. */
export async function runDoctor(input: DoctorInput): Promise<NamespaceReport[]> {
  const [scan, configs] = await Promise.all([
    scanManagerProcesses({ procRoot: input.procRoot }),
    readManagerConfigs({ etcRoot: input.etcRoot }).catch(() => undefined),
  ]);
  const reports: NamespaceReport[] = [];
  try {
    for (const name of input.names) {
      let findings: Finding[];
      let capabilities: KernelCapabilities | undefined;
      try {
        const facts = await factsFor(name, input, scan, configs);
        capabilities = facts.capabilities;
        findings = diagnoseNamespace(facts);
      } catch (e) {
        if (!(e instanceof KernelError)) throw e;
        findings = [
          finding('netns-unreadable', {
            netns: name,
            subject: 'namespace',
            message: `could not read this namespace: ${describe(e)}`,
            evidence: [`${e.op}: ${e.code}${e.extack ? ` (${e.extack})` : ''}`],
            fix: e.code === 'EPERM' || e.code === 'EACCES' ? 'run doctor as root (CAP_NET_ADMIN and CAP_SYS_ADMIN)' : 'check that the namespace still exists',
          }),
        ];
      }
      reports.push({ netns: name, findings: sortFindings(findings), ...(capabilities && { capabilities }) });
    }
  } finally {
    closeAllNamespaces();
  }
  if (input.config) {
    for (const name of missingNamespaces(input.config, input.node, input.allNames)) {
      if (input.pattern !== undefined && !netnsMatches(input.pattern, name)) continue;
      reports.push({
        netns: name,
        findings: [
          finding('netns-missing', {
            netns: name,
            subject: 'namespace',
            message: `the config declares namespace ${name}, which does not exist on this node`,
            evidence: [`no /run/netns/${name}`],
            fix: 'create the namespace, or correct the `netns` of the entry (it is picked up when it appears)',
          }),
        ],
      });
    }
  }
  return reports;
}
