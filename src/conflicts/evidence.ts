// Pure: turns what was found (manager processes in one namespace, their
// configuration, the live path manager) into evidence a user can act on:
// who, where (pid, file:line), what they write, and how to stop it.
import type { MptcpdBehaviour, MptcpdConfig } from './mptcpd.js';
import { mptcpdBehaviour } from './mptcpd.js';
import type { NmConfig, NmProfile } from './networkmanager.js';
import { describeNmMptcpFlags, nmDefaultFor, nmFlagsEnabled, nmProfileFlags, NM_MPTCP_BUILTIN_DEFAULT } from './networkmanager.js';
import type { ManagerProcess } from './procscan.js';

export type EvidenceKind = 'process' | 'config' | 'path-manager' | 'fight';

/** Known manager names; any other string is a user-configured process name or 'unknown'. */
export type ManagerName = 'NetworkManager' | 'mptcpd' | 'unknown' | (string & {});

export interface ManagerEvidence {
  manager: ManagerName;
  kind: EvidenceKind;
  /**
   * True when a running process (or the live kernel state, or observed behaviour) in
   * this namespace backs it. Configuration without a running process is inactive:
   * reported, never blocking (it cannot write to the namespace until started).
   */
  active: boolean;
  pid?: number;
  file?: string;
  line?: number;
  detail: string;
  /** Adds or removes MPTCP endpoints. */
  managesEndpoints: boolean;
  /** Changes net.ipv4.conf.*.rp_filter. */
  managesRpFilter?: boolean;
  /** Changes the MPTCP limits. */
  managesLimits?: boolean;
  /** Settings the manager took from its command line (they override its file). */
  argv?: string[];
  /** mptcpd plugins: loaded (from the process's memory maps) or, failing that, inferred. */
  plugins?: string[];
  /** What the operator can do, always ending with the `conflicts:` alternative. */
  fix: string;
}

export const NM_GLOBAL_FIX =
  'disable NetworkManager\'s MPTCP handling: add a `[connection]` section with `connection.mptcp-flags=1` ' +
  '(1 = disabled; NetworkManager.conf takes a decimal number) to /etc/NetworkManager/conf.d/90-mptcp-reconciler.conf ' +
  'and restart NetworkManager, and run `nmcli connection modify <profile> connection.mptcp-flags disabled` ' +
  'for every profile that sets its own flags; or use `conflicts: warn`';

export function nmProfileFix(p: NmProfile): string {
  const name = p.id ?? p.uuid ?? '<profile>';
  return `run \`nmcli connection modify ${JSON.stringify(name)} connection.mptcp-flags disabled\` then \`nmcli connection up ${JSON.stringify(name)}\`; or use \`conflicts: warn\``;
}

export const MPTCPD_FIX =
  'stop mptcpd: `systemctl disable --now mptcpd`, or keep it for the userspace path manager only with ' +
  '`load-plugins=sspi` (without addr_adv) in /etc/mptcpd/mptcpd.conf; or use `conflicts: warn`';

export const PATH_MANAGER_FIX =
  'declare `mptcp: { pathManager: userspace }` if a userspace path manager is meant to run here (then endpoints ' +
  'and limits are its business), or stop whatever switched it (mptcpd with the sspi plugin, a script) and ' +
  'declare `pathManager: kernel`; or use `conflicts: warn`';

export const FIGHT_FIX =
  'find the other writer of this namespace (another network manager, a script, a second reconciler) and stop it ' +
  'from changing what this entry declares, or remove the contested key from the entry; or use `conflicts: warn`';

const NM_BEHAVIOUR =
  'adds an endpoint for each address of the interfaces it manages (IPv4 needs net.mptcp.enabled=1 unless ' +
  '"also-without-sysctl", and a default route of that family unless "also-without-default-route"), removes ' +
  'endpoints it did not add there when it reapplies, and loosens rp_filter strict (1) to loose (2) for IPv4';

export interface EvidenceInput {
  /** Manager processes whose network namespace is this one. */
  processes: readonly ManagerProcess[];
  /** NetworkManager configuration as read (host files); undefined: not read. */
  nm?: NmConfig;
  mptcpd?: { config?: MptcpdConfig; problem?: { file: string; reason: string } };
  /**
   * Report configuration of managers that do not run here as inactive evidence.
   * Meant for the host namespace, where a stopped systemd service may be started;
   * for other namespaces, host config files say nothing.
   */
  includeInactiveConfig: boolean;
  /** Live net.mptcp.path_manager (or pm_type mapped to kernel|userspace); undefined: unknown. */
  livePathManager?: string;
  /** mptcp.pathManager from the desired entry; undefined: not declared. */
  desiredPathManager?: 'kernel' | 'userspace';
}

function nmHasConfig(nm: NmConfig | undefined): nm is NmConfig {
  return nm !== undefined && (nm.files.length > 0 || nm.profiles.length > 0);
}

function nmConfigEvidence(nm: NmConfig, active: boolean, pid: number | undefined): ManagerEvidence[] {
  const out: ManagerEvidence[] = [];
  const def = nmDefaultFor(nm.sections);
  const defEnabled = nmFlagsEnabled(def.flags);
  const inheriting = nm.profiles.filter((p) => !nmProfileFlags(p, nm.sections).explicit);
  const who = inheriting.length
    ? `; it applies to ${inheriting.length} profile(s) without their own mptcp-flags (${inheriting.map((p) => p.id ?? p.file).join(', ')}) and to profiles NetworkManager generates`
    : '; it applies to every profile without its own mptcp-flags, including the ones NetworkManager generates';
  const uncertain = def.uncertain.length
    ? `; device-specific defaults not evaluated here: ${def.uncertain.map((s) => `${s.file}:${s.line} [${s.name}] match-device=${s.matchDevice}`).join(', ')}`
    : '';
  const pidPart = pid !== undefined ? { pid } : {};
  if (def.from?.mptcpFlags) {
    const f = def.from.mptcpFlags;
    out.push({
      manager: 'NetworkManager',
      kind: 'config',
      active,
      ...pidPart,
      file: f.file,
      line: f.line,
      detail:
        `global default connection.mptcp-flags=${f.raw} in [${def.from.name}]` +
        (def.note ? ` (${def.note})` : '') +
        ` -> ${describeNmMptcpFlags(def.flags)}` +
        (defEnabled ? ': MPTCP handling enabled' : ': MPTCP handling disabled') +
        who +
        uncertain,
      managesEndpoints: defEnabled,
      managesRpFilter: defEnabled,
      fix: NM_GLOBAL_FIX,
    });
  } else {
    out.push({
      manager: 'NetworkManager',
      kind: 'config',
      active,
      ...pidPart,
      detail:
        `no connection.mptcp-flags default in ${nm.files.length ? nm.files.join(', ') : 'NetworkManager.conf or conf.d'}: ` +
        `the built-in default ${describeNmMptcpFlags(NM_MPTCP_BUILTIN_DEFAULT)} applies: MPTCP handling enabled` +
        who +
        uncertain,
      managesEndpoints: true,
      managesRpFilter: true,
      fix: NM_GLOBAL_FIX,
    });
  }
  for (const p of nm.profiles) {
    const eff = nmProfileFlags(p, nm.sections);
    if (!eff.explicit && !p.mptcpFlags) continue;
    const mf = p.mptcpFlags!;
    const enabled = nmFlagsEnabled(eff.flags);
    const parseNote = mf.parse.ok ? '' : ` (${mf.parse.error}; NetworkManager would reject the profile or use the default)`;
    out.push({
      manager: 'NetworkManager',
      kind: 'config',
      active,
      ...pidPart,
      file: mf.file,
      line: mf.line,
      detail:
        `profile ${JSON.stringify(p.id ?? p.uuid ?? p.file)}${p.interfaceName ? ` (interface ${p.interfaceName})` : ''}: ` +
        `mptcp-flags=${mf.raw}${parseNote} -> ${describeNmMptcpFlags(eff.flags)}` +
        (enabled ? ': MPTCP handling enabled for this profile' : ': MPTCP handling disabled for this profile'),
      managesEndpoints: enabled,
      managesRpFilter: enabled,
      fix: nmProfileFix(p),
    });
  }
  return out;
}

function mptcpdDetail(b: MptcpdBehaviour): string {
  const plugins = Array.isArray(b.plugins) ? b.plugins.join(',') || '(none)' : b.plugins;
  const parts = [`plugins${b.pluginsObserved ? ' loaded' : ''}: ${plugins}`];
  if (b.managesEndpoints) parts.push(`addr_adv adds an endpoint for each new address${b.addrFlags ? ` with flags ${b.addrFlags}` : ''} and raises the limits`);
  if (b.userspacePlugin) parts.push('a userspace path-manager plugin (e.g. sspi) may drive connections when net.mptcp.path_manager=userspace');
  return parts.join('; ');
}

/** Where a running manager's configuration was read, when not from its own root. */
function ownNote(p: ManagerProcess): string {
  if (!p.own?.error) return '';
  return `; its own root ${p.own.root} could not be read (${p.own.error}): configuration taken from the --etc-root files instead`;
}

/** Evidence for one namespace. */
export function buildEvidence(input: EvidenceInput): ManagerEvidence[] {
  const out: ManagerEvidence[] = [];
  const nmProcs = input.processes.filter((p) => p.manager === 'NetworkManager');
  const mptcpdProcs = input.processes.filter((p) => p.manager === 'mptcpd');
  const others = input.processes.filter((p) => p.manager !== 'NetworkManager' && p.manager !== 'mptcpd');

  const nmProblems = (nm: NmConfig | undefined) =>
    nm?.problems.length ? `; not used: ${nm.problems.map((p) => `${p.file} (${p.reason})`).join(', ')}` : '';
  for (const p of nmProcs) {
    // Its own files (through /proc/PID/root) when readable: in its own mount namespace it may see others than ours.
    const nm = p.own && !p.own.error ? p.own.nm : input.nm;
    const conf = nmHasConfig(nm) ? nmConfigEvidence(nm, true, p.pid) : [];
    const manages = conf.length === 0 || conf.some((e) => e.managesEndpoints);
    out.push({
      manager: 'NetworkManager',
      kind: 'process',
      active: true,
      pid: p.pid,
      detail:
        `NetworkManager (pid ${p.pid}) runs in this namespace` +
        (manages
          ? `; with MPTCP handling enabled (its default unless connection.mptcp-flags says disabled) it ${NM_BEHAVIOUR}`
          : '; its configuration disables MPTCP handling for every profile found') +
        ownNote(p) +
        nmProblems(nm),
      managesEndpoints: manages,
      managesRpFilter: manages,
      fix: NM_GLOBAL_FIX,
    });
    out.push(...conf);
  }
  if (nmProcs.length === 0 && input.includeInactiveConfig && nmHasConfig(input.nm)) {
    for (const e of nmConfigEvidence(input.nm, false, undefined)) {
      out.push({ ...e, detail: `NetworkManager is not running in this namespace; if started, it ${NM_BEHAVIOUR} where enabled; ${e.detail}` });
    }
  }

  const mcfg = input.mptcpd?.config;
  for (const p of mptcpdProcs) {
    const m = p.own && !p.own.error ? p.own.mptcpd : input.mptcpd;
    const mProblem = m?.problem ? `; not used: ${m.problem.file} (${m.problem.reason})` : '';
    const b = mptcpdBehaviour(m?.config, p.argv.slice(1), p.own?.plugins);
    const extra = {
      ...(b.argv.length ? { argv: b.argv } : {}),
      ...(Array.isArray(b.plugins) ? { plugins: b.plugins } : {}),
    };
    const cmdline = b.argv.length ? `; command line: ${b.argv.join(' ')}` : '';
    out.push({
      manager: 'mptcpd',
      kind: 'process',
      active: true,
      pid: p.pid,
      detail: `mptcpd (pid ${p.pid}) runs in this namespace${cmdline}; ${mptcpdDetail(b)}${ownNote(p)}${mProblem}`,
      managesEndpoints: b.managesEndpoints,
      managesLimits: b.managesLimits,
      ...extra,
      fix: MPTCPD_FIX,
    });
    if (b.argv.length) {
      out.push({
        manager: 'mptcpd',
        kind: 'config',
        active: true,
        pid: p.pid,
        argv: b.argv,
        ...(extra.plugins ? { plugins: extra.plugins } : {}),
        detail:
          `command line of pid ${p.pid}: ${b.argv.join(' ')} (overrides ${m?.config?.file ?? 'mptcpd.conf'})` +
          (m?.config ? '' : '; no mptcpd.conf was found for it') +
          `: ${mptcpdDetail(b)}`,
        managesEndpoints: b.managesEndpoints,
        managesLimits: b.managesLimits,
        fix: MPTCPD_FIX,
      });
    }
    if (b.from) {
      out.push({
        manager: 'mptcpd',
        kind: 'config',
        active: true,
        pid: p.pid,
        file: b.from.file,
        line: b.from.line,
        ...extra,
        detail: `${b.from.what}: ${mptcpdDetail(b)}`,
        managesEndpoints: b.managesEndpoints,
        managesLimits: b.managesLimits,
        fix: MPTCPD_FIX,
      });
    }
  }
  if (mptcpdProcs.length === 0 && input.includeInactiveConfig && mcfg) {
    const b = mptcpdBehaviour(mcfg);
    const ref = b.from ?? mcfg.pathManager ?? mcfg.addrFlags ?? mcfg.notifyFlags;
    out.push({
      manager: 'mptcpd',
      kind: 'config',
      active: false,
      file: ref?.file ?? mcfg.file,
      ...(ref ? { line: ref.line } : {}),
      detail: `mptcpd is not running in this namespace; if started (${mcfg.file}): ${mptcpdDetail(b)}`,
      managesEndpoints: b.managesEndpoints,
      managesLimits: b.managesLimits,
      fix: MPTCPD_FIX,
    });
  }

  for (const p of others) {
    out.push({
      manager: p.manager,
      kind: 'process',
      active: true,
      pid: p.pid,
      detail: `${p.manager} (pid ${p.pid}, comm ${p.comm}) runs in this namespace and is configured as a manager of MPTCP endpoints`,
      managesEndpoints: true,
      fix: `stop ${p.manager} from managing MPTCP endpoints in this namespace; or use \`conflicts: warn\``,
    });
  }

  const pe = pathManagerEvidence(input.livePathManager, input.desiredPathManager, mptcpdProcs[0]);
  if (pe) out.push(pe);
  return out;
}

/**
 * `userspace` path manager active while the desired entry does not declare it: someone
 * else (typically mptcpd with a userspace plugin) owns path management here, and
 * in-kernel endpoints and limits have no effect on its connections.
 */
export function pathManagerEvidence(
  live: string | undefined,
  desired: 'kernel' | 'userspace' | undefined,
  mptcpd?: ManagerProcess,
): ManagerEvidence | undefined {
  if (live !== 'userspace' || desired === 'userspace') return undefined;
  return {
    manager: mptcpd ? 'mptcpd' : 'unknown',
    kind: 'path-manager',
    active: true,
    ...(mptcpd ? { pid: mptcpd.pid } : {}),
    detail:
      `net.mptcp.path_manager is userspace but this entry ${desired ? `declares pathManager: ${desired}` : 'does not declare pathManager'}` +
      (mptcpd ? `; mptcpd (pid ${mptcpd.pid}) runs here` : '; no known userspace path manager process was found') +
      ': the in-kernel endpoints and limits managed here do not drive its connections',
    managesEndpoints: false,
    fix: PATH_MANAGER_FIX,
  };
}
