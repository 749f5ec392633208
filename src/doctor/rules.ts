// Pure checks of one namespace against the pitfalls the path-manager document
// names (the kernel's MPTCP path-manager documentation): each rule reads facts gathered by the shell and
// returns findings; none does I/O, so each is unit-tested on plain objects.
import type { ManagerEvidence } from '../conflicts/evidence.js';
import { declaredScope, overlaps } from '../conflicts/policy.js';
import { canonicalAddress } from '../core/address.js';
import type { DesiredNamespace, KernelCapabilities, LiveEndpoint, LiveNamespace } from '../core/model.js';
import type { DefaultRoute } from '../kernel/routes.js';
import type { LiveRule } from '../core/source-routing.js';
import { networkOf } from '../core/source-routing.js';
import { RESERVED_TABLES } from '../core/schema-routing.js';
import type { MptcpConnection } from '../kernel/sockdiag.js';
import { SYSCTL_NAMES } from '../core/schema.js';
import { RP_FILTER_NAMES, rpFilterValue } from '../core/vocabulary.js';
import { ipCommand, orRun, safeInterfaceName, sysctlCommand } from './commands.js';
import { finding, sortFindings, type Finding } from './findings.js';

export interface NamespaceFacts {
  netns: string;
  live: LiveNamespace;
  defaultRoutes: DefaultRoute[];
  /** Policy rules (IPv4 and IPv6); absent: not read, the source-route rule stays silent. */
  rules?: LiveRule[];
  /** undefined: could not be read (the reason is in connectionsError). */
  connections?: MptcpConnection[];
  connectionsError?: string;
  /** Other managers' evidence for this namespace (src/conflicts). */
  managers: ManagerEvidence[];
  /** The resolved config for this namespace, with -f and when an entry matches. */
  desired?: DesiredNamespace;
  /** What the running kernel supports (probed once per namespace). */
  capabilities?: KernelCapabilities;
  /** The namespace's MPTcpExt counters (/proc/net/netstat), since it was created; absent when unreadable. */
  mib?: Record<string, number>;
}

/** At most this many connections are listed one by one per namespace. */
export const MAX_LISTED_CONNECTIONS = 50;

const rpText = (v: number | undefined) => (v === undefined ? 'unknown' : `${v} (${RP_FILTER_NAMES[v] ?? 'non-standard'})`);

function linkName(live: LiveNamespace, ifindex: number | undefined): string | undefined {
  if (ifindex === undefined) return undefined;
  return live.links.find((l) => l.ifindex === ifindex)?.name;
}

/** Interfaces that carry `address`, by canonical comparison. */
function holders(live: LiveNamespace, address: string): string[] {
  const want = canonicalAddress(address);
  const idx = live.addresses.filter((a) => canonicalAddress(a.address) === want).map((a) => a.ifindex);
  return [...new Set(idx)].map((i) => linkName(live, i) ?? `if${i}`);
}

function epText(ep: LiveEndpoint): string {
  const flags = ep.flags.length ? ep.flags.join(',') : 'no flags';
  return `endpoint ${ep.address}${ep.port ? ` port ${ep.port}` : ''} id ${ep.id} (${flags}${ep.ifindex !== undefined ? `, ifindex ${ep.ifindex}` : ''})`;
}

const has = (ep: { flags?: readonly string[] }, f: string) => (ep.flags ?? []).includes(f);
const explicitEndpoints = (live: LiveNamespace) => live.endpoints.filter((e) => !has(e, 'implicit'));
const mptcpOn = (live: LiveNamespace) => live.mptcp.enabled !== false;
const userspacePm = (live: LiveNamespace) => live.mptcp.pathManager === 'userspace';

/** Rule 1: effective rp_filter max(all, IFACE) strict on an interface MPTCP uses. */
export function checkRpFilter(f: NamespaceFacts): Finding[] {
  const { live } = f;
  if (!mptcpOn(live)) return [];
  const uses = new Map<string, string[]>();
  const add = (iface: string | undefined, why: string) => {
    if (!iface || iface === 'lo') return;
    uses.set(iface, [...(uses.get(iface) ?? []), why]);
  };
  // rp_filter is an IPv4 knob: only IPv4 endpoints and routes depend on it.
  for (const ep of live.endpoints) {
    if (ep.family !== 4) continue;
    const byDev = linkName(live, ep.ifindex);
    if (byDev) add(byDev, epText(ep));
    else for (const h of holders(live, ep.address)) add(h, `${epText(ep)} (address on ${h})`);
  }
  for (const r of f.defaultRoutes) {
    if (r.family !== 4) continue;
    for (const i of r.ifindexes) add(linkName(live, i), `the IPv4 default route${r.table !== 254 ? ` (table ${r.table})` : ''}${r.gateway ? ` via ${r.gateway}` : ''}`);
  }
  const out: Finding[] = [];
  const all = live.rpFilter.all;
  for (const [iface, why] of [...uses].sort(([a], [b]) => a.localeCompare(b))) {
    const own = live.rpFilter[iface];
    const effective = Math.max(all ?? 0, own ?? 0);
    if (effective !== 1) continue;
    out.push(
      finding('rp-filter-strict', {
        netns: f.netns,
        subject: iface,
        message: `strict reverse path filtering on ${iface} drops MPTCP subflows that arrive on another path than the kernel's route back`,
        evidence: [
          `net.ipv4.conf.all.rp_filter = ${rpText(all)}`,
          `net.ipv4.conf.${iface}.rp_filter = ${rpText(own)}`,
          `effective value max(all, ${iface}) = 1 (strict)`,
          ...why.map((w) => `${iface} carries ${w}`),
        ],
        fix: `${safeInterfaceName(iface) ? `declare \`rpFilter: { ${iface}: loose }\` in the config` : 'set rp_filter on this interface to 2 (loose)'}${orRun(sysctlCommand(f.netns, ['net', 'ipv4', 'conf', iface, 'rp_filter'], 2, iface))}`,
      }),
    );
  }
  return out;
}

/** Rule 2: endpoints without `dev`. */
export function checkEndpointDev(f: NamespaceFacts): Finding[] {
  return explicitEndpoints(f.live)
    .filter((ep) => ep.ifindex === undefined)
    .map((ep) => {
      const h = holders(f.live, ep.address);
      const dev = h[0] ?? 'IFACE';
      const flags = ep.flags.filter((x) => x !== 'implicit').join(' ');
      return finding('endpoint-without-dev', {
        netns: f.netns,
        subject: `endpoint ${ep.address}${ep.port ? `:${ep.port}` : ''}`,
        message: `${epText(ep)} has no dev: the routing will probably not be done properly and needs manual routing configuration`,
        evidence: [h.length ? `the address is on ${h.join(', ')}` : 'the address is on no interface here'],
        fix:
          `declare \`dev: ${dev}\` on this endpoint in the config` +
          orRun(
            ipCommand(f.netns, ['mptcp', 'endpoint', 'delete', 'id', ep.id]),
            h[0] === undefined
              ? undefined
              : ipCommand(f.netns, ['mptcp', 'endpoint', 'add', ep.address, ...(ep.port ? ['port', ep.port] : []), 'dev', dev, ...(flags ? [flags] : [])], {
                  ifaces: [dev],
                  addresses: [ep.address],
                }),
          ),
      });
    });
}

/**
 * The subflows limit a namespace needs: one per subflow endpoint (a fullmesh one
 * may open one per peer address: counted twice as a floor) plus one per ADD_ADDR
 * it accepts, since the limit caps the subflows of both kinds together.
 */
export function neededSubflows(subflowEndpoints: number, fullmesh: number, addAddrAccepted: number): number {
  return Math.min(8, subflowEndpoints + fullmesh + addAddrAccepted);
}

/** Rule 3: subflow endpoints and accepted ADD_ADDRs vs limits.subflows; ADD_ADDRs ignored. */
export function checkLimits(f: NamespaceFacts): Finding[] {
  const { live } = f;
  if (userspacePm(live)) return [];
  const out: Finding[] = [];
  const sub = explicitEndpoints(live).filter((e) => has(e, 'subflow'));
  const fullmesh = sub.filter((e) => has(e, 'fullmesh'));
  const lim = live.limits;
  const need = neededSubflows(sub.length, fullmesh.length, lim.addAddrAccepted);
  if (sub.length > 0 && need > lim.subflows) {
    out.push(
      finding('subflow-endpoints-over-limit', {
        netns: f.netns,
        subject: 'limits.subflows',
        message:
          `${sub.length} subflow endpoint(s)${lim.addAddrAccepted ? ` and ${lim.addAddrAccepted} accepted ADD_ADDR(s)` : ''} need ${need} additional subflow(s) ` +
          `but limits.subflows is ${lim.subflows}: the ones beyond the limit are never opened`,
        evidence: [
          `subflow endpoints: ${sub.map((e) => `${e.address} id ${e.id}${has(e, 'fullmesh') ? ' (fullmesh: one subflow per peer address)' : ''}`).join(', ')}`,
          `limits: subflows ${lim.subflows} add_addr_accepted ${lim.addAddrAccepted} (the subflows limit also caps the subflows opened to addresses peers announce)`,
        ],
        fix: `declare \`limits: { subflows: ${need} }\`${orRun(ipCommand(f.netns, ['mptcp', 'limits', 'set', 'subflows', need]))}`,
      }),
    );
  }
  const received = f.mib?.MPTcpExtAddAddr ?? 0;
  if (lim.addAddrAccepted === 0 && received > 0 && mptcpOn(live)) {
    out.push(
      finding('add-addr-ignored', {
        netns: f.netns,
        subject: 'limits.add_addr_accepted',
        message: `this namespace received ${received} ADD_ADDR(s) and acted on none: add_addr_accepted is 0, so the addresses peers announce are ignored`,
        evidence: [
          `MPTcpExtAddAddr ${received} (ADD_ADDRs received since the namespace was created)`,
          `limits: subflows ${lim.subflows} add_addr_accepted 0`,
        ],
        fix: `declare \`limits: { addAddrAccepted: 1 }\` or more (and subflows to match)${orRun(
          ipCommand(f.netns, ['mptcp', 'limits', 'set', 'add_addr_accepted', 1, 'subflows', Math.max(lim.subflows, neededSubflows(sub.length, fullmesh.length, 1))]),
        )}`,
      }),
    );
  } else if (sub.length > 0 && lim.addAddrAccepted === 0) {
    out.push(
      finding('add-addr-accepted-zero', {
        netns: f.netns,
        subject: 'limits.add_addr_accepted',
        message: 'this namespace opens subflows (a client) but accepts no ADD_ADDR: addresses the server announces are ignored',
        evidence: [`limits: subflows ${lim.subflows} add_addr_accepted 0`, `${sub.length} subflow endpoint(s)`],
        fix: `if servers announce addresses, declare \`limits: { addAddrAccepted: 1 }\` or more${orRun(ipCommand(f.netns, ['mptcp', 'limits', 'set', 'add_addr_accepted', 1]))}`,
      }),
    );
  }
  return out;
}

/** Rule 4: live endpoints a config file could never declare. */
export function checkInvalidFlags(f: NamespaceFacts): Finding[] {
  const out: Finding[] = [];
  for (const ep of f.live.endpoints) {
    const problems: string[] = [];
    if (has(ep, 'fullmesh') && has(ep, 'signal')) problems.push('fullmesh together with signal');
    if (ep.port !== undefined && (has(ep, 'subflow') || !has(ep, 'signal'))) problems.push(`port ${ep.port} without signal-only flags`);
    if (!problems.length) continue;
    out.push(
      finding('endpoint-invalid-flags', {
        netns: f.netns,
        subject: `endpoint ${ep.address}${ep.port ? `:${ep.port}` : ''}`,
        message: `${epText(ep)} has ${problems.join(' and ')}: the kernel refuses to create this now; it was made by hand or by an older kernel, and its behaviour is undefined`,
        evidence: [`flags: ${ep.flags.join(',') || 'none'}${ep.rawFlags ? ` rawflags 0x${ep.rawFlags.toString(16)}` : ''}${ep.port ? `, port ${ep.port}` : ''}`],
        fix: `delete it${orRun(ipCommand(f.netns, ['mptcp', 'endpoint', 'delete', 'id', ep.id]))}, and declare it again with valid flags (signal or subflow; fullmesh only with subflow; port only with signal alone)`,
      }),
    );
  }
  return out;
}

/** Rule 5: MPTCP disabled; userspace path manager mismatches. */
export function checkPathManager(f: NamespaceFacts): Finding[] {
  const { live } = f;
  const out: Finding[] = [];
  if (live.mptcp.enabled === false) {
    out.push(
      finding('mptcp-disabled', {
        netns: f.netns,
        subject: 'net.mptcp.enabled',
        message: 'MPTCP is disabled: applications asking for IPPROTO_MPTCP sockets get an error or plain TCP',
        evidence: ['net.mptcp.enabled = 0'],
        fix: `declare \`mptcp: { enabled: true }\`${orRun(sysctlCommand(f.netns, ['net', 'mptcp', 'enabled'], 1))}`,
      }),
    );
  }
  if (userspacePm(live)) {
    const eps = explicitEndpoints(live);
    if (eps.length > 0) {
      out.push(
        finding('userspace-pm-with-endpoints', {
          netns: f.netns,
          subject: 'net.mptcp.path_manager',
          message: `the userspace path manager is selected, so the ${eps.length} in-kernel endpoint(s) are not used`,
          evidence: ['net.mptcp.path_manager = userspace', ...eps.map(epText)],
          fix: `configure the userspace daemon (mptcpd) instead, or declare \`mptcp: { pathManager: kernel }\`${orRun(sysctlCommand(f.netns, ['net', 'mptcp', 'path_manager'], 'kernel'))}`,
        }),
      );
    }
    const daemon = f.managers.find((m) => m.manager === 'mptcpd' && m.kind === 'process' && m.active);
    if (!daemon) {
      out.push(
        finding('userspace-pm-without-daemon', {
          netns: f.netns,
          subject: 'net.mptcp.path_manager',
          message: 'the userspace path manager is selected but no userspace daemon (mptcpd) runs in this namespace: no subflows are created and no addresses announced',
          evidence: ['net.mptcp.path_manager = userspace', 'no mptcpd process found with this network namespace'],
          fix: `start mptcpd in this namespace, or declare \`mptcp: { pathManager: kernel }\`${orRun(sysctlCommand(f.netns, ['net', 'mptcp', 'path_manager'], 'kernel'))}`,
        }),
      );
    }
  }
  return out;
}

function managerEvidenceText(m: ManagerEvidence): string {
  const where = m.file ? ` (${m.file}${m.line ? `:${m.line}` : ''})` : '';
  return `${m.detail}${where}`;
}

/** Rule 6: NetworkManager and mptcpd; a manager next to a config that manages the namespace. */
export function checkManagers(f: NamespaceFacts): Finding[] {
  const out: Finding[] = [];
  const running = (name: string) => f.managers.filter((m) => m.manager === name && m.kind === 'process' && m.active);
  const nm = running('NetworkManager');
  const md = running('mptcpd');
  if (nm.length && md.length) {
    out.push(
      finding('managers-both-active', {
        netns: f.netns,
        subject: 'NetworkManager, mptcpd',
        message: 'NetworkManager and mptcpd both run in this namespace and both configure MPTCP endpoints: they undo each other',
        evidence: [...nm, ...md].map(managerEvidenceText),
        fix: `keep one: ${md[0]!.fix}`,
      }),
    );
  }
  if (f.desired) {
    const policy = f.desired.conflicts;
    const scope = declaredScope(f.desired);
    for (const m of [...nm, ...md]) {
      // The same test `apply` makes, so the severity says what `apply` does: refuse (exit 1), warn, or stay quiet.
      if (!overlaps(m, scope)) continue;
      out.push(
        finding('manager-next-to-config', {
          netns: f.netns,
          subject: m.manager,
          message: `${m.manager} runs here and changes what the config manages (${managedKinds(m)}): ${
            policy === 'fail' ? '`apply` refuses this namespace and exits 1, `watch` leaves it alone (conflicts: fail)' : policy === 'warn' ? '`apply` and `watch` change it anyway and warn (conflicts: warn)' : '`apply` and `watch` change it anyway (conflicts: ignore)'
          }`,
          evidence: [managerEvidenceText(m), `config: conflicts: ${policy}`],
          fix: m.fix,
          severity: policy === 'fail' ? 'error' : policy === 'warn' ? 'warning' : 'info',
        }),
      );
    }
  } else if (nm.length + md.length === 1) {
    // Without a config nothing can be refused yet, but one manager alone is worth knowing before writing one.
    const m = nm[0] ?? md[0]!;
    out.push(
      finding('manager-running', {
        netns: f.netns,
        subject: m.manager,
        message: `${m.manager} runs here and manages ${managedKinds(m) || 'MPTCP state'}: a config entry for this namespace that declares them is refused under \`conflicts: fail\` (the default) and applied with a warning under \`warn\``,
        evidence: [managerEvidenceText(m)],
        fix: m.fix,
      }),
    );
  }
  return out;
}

function managedKinds(m: ManagerEvidence): string {
  return [m.managesEndpoints ? 'endpoints' : '', m.managesRpFilter ? 'rp_filter' : '', m.managesLimits ? 'limits' : ''].filter(Boolean).join(', ');
}

/** Rule 7: endpoints whose address is on no interface, or whose dev is down or gone. */
export function checkEndpointPlacement(f: NamespaceFacts): Finding[] {
  const { live } = f;
  const out: Finding[] = [];
  for (const ep of live.endpoints) {
    const subject = `endpoint ${ep.address}${ep.port ? `:${ep.port}` : ''}`;
    if (holders(live, ep.address).length === 0) {
      out.push(
        finding('endpoint-address-not-local', {
          netns: f.netns,
          subject,
          message: `${epText(ep)}: its address is on no interface of this namespace, so no subflow can use it and announcing it sends peers to an address that is not here`,
          evidence: [`no interface has ${ep.address}`],
          fix: `add the address to its interface, or drop the endpoint from the config${orRun(ipCommand(f.netns, ['mptcp', 'endpoint', 'delete', 'id', ep.id]))}`,
        }),
      );
    }
    if (ep.ifindex !== undefined) {
      const link = live.links.find((l) => l.ifindex === ep.ifindex);
      if (!link) {
        out.push(
          finding('endpoint-dev-unusable', {
            netns: f.netns,
            subject,
            message: `${epText(ep)}: its dev (ifindex ${ep.ifindex}) no longer exists; the kernel keeps the endpoint after the device is deleted`,
            evidence: [`no link with ifindex ${ep.ifindex}`],
            fix: `re-create the endpoint on an existing interface, or let apply replace it${orRun(ipCommand(f.netns, ['mptcp', 'endpoint', 'delete', 'id', ep.id]))} and add it with the right dev`,
          }),
        );
      } else if (!link.up) {
        out.push(
          finding('endpoint-dev-unusable', {
            netns: f.netns,
            subject,
            message: `${epText(ep)}: its dev ${link.name} is down`,
            evidence: [`${link.name}: not UP`],
            fix: `bring ${link.name} up or remove the endpoint${orRun(ipCommand(f.netns, ['link', 'set', link.name, 'up'], { ifaces: [link.name] }))}`,
          }),
        );
      }
    }
  }
  return out;
}

/** The limit(s) a connection has reached, as `ss -Mai` counters read. */
export function limitsHit(i: NonNullable<MptcpConnection['info']>): string[] {
  const hit: string[] = [];
  if (i.subflows >= i.subflowsMax) hit.push(`subflows (${i.subflows}/${i.subflowsMax})`);
  if (i.addAddrAcceptedMax > 0 && i.addAddrAccepted >= i.addAddrAcceptedMax) hit.push(`add_addr_accepted (${i.addAddrAccepted}/${i.addAddrAcceptedMax})`);
  if (i.addAddrSignalMax > 0 && i.addAddrSignal >= i.addAddrSignalMax) hit.push(`add_addr_signal (${i.addAddrSignal}/${i.addAddrSignalMax})`);
  if (i.localAddrMax !== undefined && i.localAddrMax > 0 && (i.localAddrUsed ?? 0) >= i.localAddrMax) {
    hit.push(`local_addr (${i.localAddrUsed}/${i.localAddrMax})`);
  }
  return hit;
}

/**
 * Additional subflows the in-kernel path manager would open for this connection:
 * one per subflow endpoint plus one per accepted ADD_ADDR, capped by the subflows
 * limit. Fullmesh endpoints can open more; counting them once keeps this a floor.
 */
export function expectedSubflows(i: NonNullable<MptcpConnection['info']>): number {
  return Math.min(i.subflowsMax, (i.localAddrMax ?? 0) + i.addAddrAccepted);
}

/** Rule 8: per-connection counters; fewer established subflows than endpoints and limits allow. */
export function checkConnections(f: NamespaceFacts): Finding[] {
  if (!f.connections) return [];
  const rows: Finding[] = [];
  const userspace = userspacePm(f.live);
  for (const c of f.connections) {
    const subject = `connection ${fmtAddr(c.local)} -> ${fmtAddr(c.remote)}`;
    const i = c.info;
    if (!i) continue;
    // mptcp_info counts a join from the moment its SYN leaves: the TCP subflows
    // tell the ones established from the ones still in SYN-SENT.
    const inFlight = c.subflowStates?.synSent ?? 0;
    const established = Math.max(0, i.subflows - inFlight);
    const counters = [
      `state ${c.state}${c.inode ? ` inode ${c.inode}` : ''} token ${i.token.toString(16).padStart(8, '0')}`,
      `subflows ${i.subflows} (additional; ${i.subflowsTotal ?? i.subflows + 1} in total) subflows_max ${i.subflowsMax}`,
      ...(c.subflowStates
        ? [`TCP subflows: ${c.subflowStates.established} established, ${c.subflowStates.synSent} in SYN-SENT, ${c.subflowStates.other} in other states`]
        : []),
      `add_addr_signal ${i.addAddrSignal} add_addr_signal_max ${i.addAddrSignalMax}`,
      `add_addr_accepted ${i.addAddrAccepted} add_addr_accepted_max ${i.addAddrAcceptedMax}`,
      i.localAddrMax !== undefined ? `local_addr_used ${i.localAddrUsed} local_addr_max ${i.localAddrMax}` : 'local_addr_*: not reported by this kernel',
    ];
    const subflowText = `${established} additional subflow(s) established${inFlight ? `, ${inFlight} join(s) in flight (SYN-SENT)` : ''}`;
    // The userspace path manager keeps no limits of its own here: the counters read 0/0.
    const hit = userspace ? [] : limitsHit(i).map((h) => (h.startsWith('subflows') && inFlight ? `${h.slice(0, -1)}, ${inFlight} of them joins in flight)` : h));
    const hitText = userspace
      ? 'the userspace path manager decides the subflows; the in-kernel limits do not apply'
      : hit.length
        ? `limits reached: ${hit.join(', ')}`
        : 'no limit reached';
    if (i.fallback) {
      rows.push(
        finding('connection-fallback', {
          netns: f.netns,
          subject,
          message: 'this connection fell back to plain TCP: the peer or a middlebox dropped the MPTCP options',
          evidence: counters,
          fix: 'check that the peer has MPTCP enabled and that no middlebox strips TCP options',
        }),
      );
      continue;
    }
    const expected = userspace ? 0 : expectedSubflows(i);
    if (c.state === 'ESTAB' && established < expected) {
      rows.push(
        finding('connection-few-subflows', {
          netns: f.netns,
          subject,
          // Joins in flight may still succeed; none in flight means they failed.
          severity: inFlight > 0 ? 'warning' : 'error',
          message:
            `${subflowText} where the endpoints and limits allow ${expected} ` +
            `(min(subflows_max ${i.subflowsMax}, local_addr_max ${i.localAddrMax ?? 0} + add_addr_accepted ${i.addAddrAccepted})); ${hitText}`,
          evidence: counters,
          fix:
            (inFlight > 0 ? 'joins are sent but not answered: the peer or the path drops them or their SYN-ACK; ' : 'new subflow requests did not reach the peer or were refused: ') +
            "check the peer's limits, routing and firewall between the endpoint addresses and the peer, and rp_filter; then raise the limits if they are the cap",
        }),
      );
      continue;
    }
    rows.push(
      finding('connection', {
        netns: f.netns,
        subject,
        message: `${subflowText}, ${i.addAddrSignal} ADD_ADDR signalled, ${i.addAddrAccepted} accepted; ${hitText}`,
        evidence: counters,
      }),
    );
  }
  // The unusual ones first, so a busy server's list is cut where it matters least.
  const rank = (x: Finding) => (x.rule === 'connection' ? 1 : 0);
  rows.sort((a, b) => rank(a) - rank(b));
  if (rows.length <= MAX_LISTED_CONNECTIONS) return rows;
  const kept = rows.slice(0, MAX_LISTED_CONNECTIONS);
  kept.push(
    finding('connections-not-listed', {
      netns: f.netns,
      subject: 'connections',
      message: `${rows.length - MAX_LISTED_CONNECTIONS} more MPTCP connection(s) not listed`,
      evidence: [`${rows.length} connections in total`],
    }),
  );
  return kept;
}

function fmtAddr(a: { address: string; port: number }): string {
  return a.address.includes(':') ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
}

/** Interfaces an endpoint of the config is bound to: its dev, else where its address lives now. */
function configEndpointIfaces(f: NamespaceFacts): Map<string, string[]> {
  const m = new Map<string, string[]>();
  for (const ep of f.desired?.endpoints ?? []) {
    const label = ep.address ?? `dev ${ep.dev}`;
    if (ep.address !== undefined && (ep.family === 'ipv6' || ep.address.includes(':'))) continue;
    const ifaces = ep.dev ? [ep.dev] : holders(f.live, ep.address!);
    for (const i of ifaces) m.set(i, [...(m.get(i) ?? []), label]);
  }
  return m;
}

/** Rule 9: the resolved config on its own, and against live where that helps. */
export function checkConfig(f: NamespaceFacts): Finding[] {
  const d = f.desired;
  if (!d) return [];
  const out: Finding[] = [];
  const eps = d.endpoints ?? [];
  for (const ep of eps) {
    const label = ep.address ?? `dev ${ep.dev}`;
    if (!has(ep, 'signal') && !has(ep, 'subflow')) {
      out.push(
        finding('config-endpoint-no-role', {
          netns: f.netns,
          subject: `config endpoint ${label}`,
          message: `the config's endpoint ${label} has neither signal nor subflow: the kernel accepts it, but it does nothing`,
          evidence: [`flags: [${(ep.flags ?? []).join(', ')}]`],
          fix: 'add `signal` (announce it, a server) or `subflow` (open subflows from it, a client) to its flags',
        }),
      );
    }
    if (ep.dev && !f.live.links.some((l) => l.name === ep.dev)) {
      out.push(
        finding('config-dev-missing', {
          netns: f.netns,
          subject: `config endpoint ${label}`,
          message: `the config binds endpoint ${label} to ${ep.dev}, which does not exist in this namespace: apply leaves it pending`,
          evidence: [`links here: ${f.live.links.map((l) => l.name).join(', ') || 'none'}`],
          fix: `create ${ep.dev}, or correct the \`dev\` of this endpoint`,
        }),
      );
    }
  }
  const subflowEps = eps.filter((e) => has(e, 'subflow'));
  const limit = d.limits.subflows ?? f.live.limits.subflows;
  const accepted = d.limits.addAddrAccepted ?? f.live.limits.addAddrAccepted;
  const need = neededSubflows(subflowEps.length, subflowEps.filter((e) => has(e, 'fullmesh')).length, accepted);
  if (subflowEps.length > 0 && need > limit && d.mptcp.pathManager !== 'userspace') {
    out.push(
      finding('config-subflow-endpoints-over-limit', {
        netns: f.netns,
        subject: 'config limits.subflows',
        message: `the config declares ${subflowEps.length} subflow endpoint(s)${accepted ? ` and accepts ${accepted} ADD_ADDR(s)` : ''}, which need ${need} subflow(s), but limits.subflows is ${limit}${d.limits.subflows === undefined ? ' (not declared; the live value)' : ''}: the ones beyond the limit are never opened`,
        evidence: subflowEps.map((e) => `subflow endpoint ${e.address ?? `dev ${e.dev}`}${has(e, 'fullmesh') ? ' (fullmesh)' : ''}`),
        fix: `declare \`limits: { subflows: ${need} }\``,
      }),
    );
  }
  const num = rpFilterValue;
  for (const [iface, labels] of [...configEndpointIfaces(f)].sort(([a], [b]) => a.localeCompare(b))) {
    const declIface = num(d.rpFilter[iface]);
    const declAll = num(d.rpFilter.all);
    // loose on either side makes max(all, iface) loose whatever the other holds.
    if (declIface === 2 || declAll === 2) continue;
    const after = Math.max(declAll ?? f.live.rpFilter.all ?? 0, declIface ?? f.live.rpFilter[iface] ?? 0);
    const strict = after === 1;
    out.push(
      finding('config-rp-filter-not-loose', {
        netns: f.netns,
        subject: `config rpFilter.${iface}`,
        severity: strict ? 'warning' : 'info',
        message: strict
          ? `with the config applied, rp_filter on ${iface} (which carries MPTCP endpoints) is effectively strict, which breaks MPTCP`
          : `the config does not declare rp_filter loose for ${iface}, which carries MPTCP endpoints: it is ${rpText(after)} now only because of how it happens to be set`,
        evidence: [
          `endpoints on ${iface}: ${labels.join(', ')}`,
          `declared: rpFilter.${iface} ${d.rpFilter[iface] ?? 'not declared'}, rpFilter.all ${d.rpFilter.all ?? 'not declared'}`,
          `live: all ${rpText(f.live.rpFilter.all)}, ${iface} ${rpText(f.live.rpFilter[iface])}`,
        ],
        fix: `declare \`rpFilter: { ${iface}: loose }\``,
      }),
    );
  }
  // Declared address endpoints that are not live: apply has not run, or failed.
  const liveKeys = new Set(f.live.endpoints.map((e) => `${canonicalAddress(e.address)}|${e.port ?? ''}`));
  const missing = eps.filter((e) => e.address !== undefined && !liveKeys.has(`${canonicalAddress(e.address)}|${e.port ?? ''}`));
  if (missing.length) {
    out.push(
      finding('config-not-applied', {
        netns: f.netns,
        subject: 'config endpoints',
        message: `${missing.length} endpoint(s) of the config are not live`,
        evidence: missing.map((e) => `${e.address}${e.port ? ` port ${e.port}` : ''}`),
        fix: 'run `mptcp-reconciler plan -f ...` to see why, then `apply`',
      }),
    );
  }
  return out;
}

/** Rule 10: a config asking for what this kernel cannot hold (an endpoint flag, a sysctl). */
export function checkCapabilities(f: NamespaceFacts): Finding[] {
  const c = f.capabilities;
  const d = f.desired;
  if (!c || !d) return [];
  const out: Finding[] = [];
  if (c.endpointFlags) {
    for (const ep of d.endpoints ?? []) {
      const missing = (ep.flags ?? []).filter((x) => !c.endpointFlags!.includes(x as never));
      if (!missing.length) continue;
      const label = ep.address ?? `dev ${ep.dev}`;
      out.push(
        finding('kernel-lacks-feature', {
          netns: f.netns,
          subject: `config endpoint ${label}`,
          message: `the config gives endpoint ${label} the flag(s) ${missing.join(', ')}, which this kernel (${c.release}) does not have: plan refuses it`,
          evidence: [`endpoint flags of this kernel: ${c.endpointFlags.join(' ')}`],
          fix: `remove ${missing.join(', ')} from its flags, or run a kernel that has ${missing.length > 1 ? 'them' : 'it'}`,
        }),
      );
    }
  }
  for (const key of Object.keys(d.mptcp) as (keyof typeof SYSCTL_NAMES)[]) {
    const name = SYSCTL_NAMES[key];
    if (c.sysctls.length === 0 || c.sysctls.includes(name)) continue;
    out.push(
      finding('kernel-lacks-feature', {
        netns: f.netns,
        subject: `config mptcp.${key}`,
        message: `the config sets mptcp.${key}, but this kernel (${c.release}) has no net.mptcp.${name}: plan refuses it`,
        evidence: [`net.mptcp sysctls here: ${c.sysctls.join(' ')}`],
        fix: `remove mptcp.${key} from the config, or run a kernel that has net.mptcp.${name}`,
      }),
    );
  }
  return out;
}

/**
 * The default route a packet from `src` to a peer off every connected prefix
 * takes: the kernel walks the rules by priority, and the first table holding a
 * default route of the family decides. Rules with selectors beyond `from`
 * (fwmark, iif, ...) do not match a locally generated join and are skipped.
 */
export function routeFromSource(src: string, family: 4 | 6, rules: readonly LiveRule[], routes: readonly DefaultRoute[]): { rule: LiveRule; route: DefaultRoute } | undefined {
  const ordered = rules.filter((r) => r.family === family && !r.other).sort((a, b) => a.priority - b.priority);
  for (const rule of ordered) {
    if (rule.srcLen > 0 && networkOf(src, rule.srcLen) !== networkOf(rule.src, rule.srcLen)) continue;
    const route = routes.find((r) => r.family === family && r.table === rule.table);
    if (route) return { rule, route };
  }
  return undefined;
}

/** Rule 11: an endpoint whose source address would leave by another interface (or by none): its joins die at a filtering gateway. */
export function checkSourceRoute(f: NamespaceFacts): Finding[] {
  const { live, rules } = f;
  if (!rules || !mptcpOn(live)) return [];
  const out: Finding[] = [];
  const usedTables = new Set([...rules.map((r) => r.table), ...f.defaultRoutes.map((r) => r.table)]);
  let nextTable = 101;
  for (const ep of explicitEndpoints(live)) {
    // Without any default route of the family only connected peers are reachable: nothing to say.
    if (!f.defaultRoutes.some((r) => r.family === ep.family)) continue;
    const ifindex = ep.ifindex ?? live.addresses.find((a) => canonicalAddress(a.address) === canonicalAddress(ep.address))?.ifindex;
    const iface = linkName(live, ifindex);
    if (ifindex === undefined || iface === undefined || iface === 'lo') continue;
    // An interface that is down is another finding (endpoint-dev-unusable); its routes are gone anyway.
    if (!live.links.find((l) => l.ifindex === ifindex)?.up) continue;
    const hit = routeFromSource(ep.address, ep.family, rules, f.defaultRoutes);
    if (hit?.route.ifindexes.includes(ifindex)) continue;
    const via = hit ? hit.route.ifindexes.map((i) => linkName(live, i) ?? `if${i}`).join(', ') : undefined;
    while (usedTables.has(nextTable) || RESERVED_TABLES.has(nextTable)) nextTable++;
    usedTables.add(nextTable);
    const gw = ep.family === 4 ? 'gateway' : 'gateway6';
    out.push(
      finding('endpoint-no-route-out', {
        netns: f.netns,
        subject: `endpoint ${ep.address}`,
        message: via
          ? `joins from ${ep.address} (on ${iface}) leave by ${via}: a gateway that filters by source drops them, and the subflow never establishes`
          : `${ep.address} (on ${iface}) has no route out: its joins to a peer beyond ${iface}'s prefixes fail`,
        evidence: [
          `${epText(ep)} is on ${iface}`,
          hit
            ? `first matching rule: ${hit.rule.srcLen ? `from ${hit.rule.src}/${hit.rule.srcLen}` : 'from all'} lookup ${hit.rule.table} (pref ${hit.rule.priority}), whose default route goes out of ${via}`
            : 'no rule leads to a table with a default route for this source',
        ],
        fix: `in netns ${f.netns}, declare \`sourceRouting: { ${safeInterfaceName(iface) ? iface : 'IFACE'}: { table: ${nextTable}, ${gw}: GATEWAY } }\` (GATEWAY: the next hop on ${iface}); the tool then keeps a table for ${iface} and a rule from ${ep.address} to it`,
      }),
    );
  }
  return out;
}

export const RULE_CHECKS = [
  checkCapabilities,
  checkPathManager,
  checkRpFilter,
  checkInvalidFlags,
  checkEndpointDev,
  checkEndpointPlacement,
  checkSourceRoute,
  checkLimits,
  checkManagers,
  checkConfig,
  checkConnections,
];

/** Every rule over one namespace's facts, sorted severity first. */
export function diagnoseNamespace(f: NamespaceFacts): Finding[] {
  const out = RULE_CHECKS.flatMap((check) => check(f));
  if (f.connectionsError) {
    out.push(
      finding('netns-unreadable', {
        netns: f.netns,
        severity: 'warning',
        subject: 'connections',
        message: `MPTCP connections could not be read: ${f.connectionsError}`,
        evidence: [],
      }),
    );
  }
  return sortFindings(out);
}
