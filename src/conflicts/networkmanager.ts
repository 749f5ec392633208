// NetworkManager's MPTCP settings (>= 1.40), as NetworkManager itself reads them:
// - per profile: `[connection] mptcp-flags=` in keyfiles (*.nmconnection);
// - global default: `connection.mptcp-flags=` in `[connection*]` sections of
//   NetworkManager.conf and conf.d, read in NM's order (/usr/lib/NetworkManager/conf.d,
//   then /run/NetworkManager/conf.d, then /etc/NetworkManager/NetworkManager.conf,
//   then /etc/NetworkManager/conf.d; a same-named file in /etc or /run shadows
//   /usr/lib, one in /etc shadows /run; `[.config] enable=false` skips a conf.d file).
// Semantics from NetworkManager's source and nm-settings(5):
// - flags 0 (unset) take the global default; no default -> built-in "enabled,subflow" (0x22);
// - "disabled" (0x1) wins over everything; any other flag implies "enabled";
// - enabled still does nothing while net.mptcp.enabled=0 unless "also-without-sysctl",
//   and only for an address family with a default route unless "also-without-default-route";
// - when enabled for IPv4 it loosens rp_filter strict (1) to loose (2);
// - the global default in NetworkManager.conf is parsed as a base-10 integer: "0x1" or
//   "disabled" there is ignored and the built-in default applies.
import { globMatch } from '../core/glob.js';
import { listUnder, readUnder } from './files.js';
import { parseIni, sectionGet, type IniFile } from './ini.js';

export const NM_MPTCP_FLAG_BITS = {
  disabled: 0x1,
  enabled: 0x2,
  'also-without-sysctl': 0x4,
  'also-without-default-route': 0x8,
  signal: 0x10,
  subflow: 0x20,
  backup: 0x40,
  fullmesh: 0x80,
} as const;
export type NmMptcpFlagName = keyof typeof NM_MPTCP_FLAG_BITS;

export const NM_MPTCP_DISABLED = 0x1;
export const NM_MPTCP_ENABLED = 0x2;
/** NetworkManager's fallback when neither profile nor NetworkManager.conf sets the flags. */
export const NM_MPTCP_BUILTIN_DEFAULT = 0x22;
const NM_MPTCP_ALL = 0xff;

export type FlagsParse = { ok: true; value: number } | { ok: false; error: string };

/** Profile syntax (nmcli/keyfile): a number (decimal or 0x hex) or a comma list of names. */
export function parseNmMptcpFlags(text: string): FlagsParse {
  const t = text.trim();
  if (/^\d+$/.test(t)) return { ok: true, value: Number(t) };
  if (/^0x[0-9a-f]+$/i.test(t)) return { ok: true, value: parseInt(t.slice(2), 16) };
  if (t === '' || t === 'default' || t === 'none') return { ok: true, value: 0 };
  let value = 0;
  for (const part of t.split(/[,\s|]+/).filter(Boolean)) {
    const bit = (NM_MPTCP_FLAG_BITS as Record<string, number>)[part];
    if (bit === undefined) return { ok: false, error: `unknown MPTCP flag "${part}"` };
    value |= bit;
  }
  return { ok: true, value };
}

/** NetworkManager.conf syntax: NM parses the connection default as a base-10 integer only. */
export function parseNmConfDefault(text: string): FlagsParse {
  const t = text.trim();
  if (/^\d+$/.test(t)) return { ok: true, value: Number(t) };
  return {
    ok: false,
    error: `NetworkManager reads connection.mptcp-flags in NetworkManager.conf as a decimal number; "${t}" is ignored and the built-in default applies`,
  };
}

/** nm_mptcp_flags_normalize(): disabled wins; otherwise enabled is implied; signal drops fullmesh. */
export function normalizeNmMptcpFlags(value: number): number {
  if (value & NM_MPTCP_DISABLED) return NM_MPTCP_DISABLED;
  let v = (value & NM_MPTCP_ALL) | NM_MPTCP_ENABLED;
  if ((v & 0x10) && (v & 0x80)) v &= ~0x80;
  return v;
}

export function nmMptcpFlagNames(value: number): NmMptcpFlagName[] {
  return (Object.entries(NM_MPTCP_FLAG_BITS) as [NmMptcpFlagName, number][])
    .filter(([, bit]) => (value & bit) !== 0)
    .map(([n]) => n);
}

/** "enabled,subflow (0x22)". */
export function describeNmMptcpFlags(value: number): string {
  const names = nmMptcpFlagNames(value);
  return `${names.length ? names.join(',') : 'default'} (0x${value.toString(16)})`;
}

export function nmFlagsEnabled(normalized: number): boolean {
  return (normalized & NM_MPTCP_DISABLED) === 0;
}

/** Where a value came from. */
export interface SourceRef {
  file: string;
  line: number;
}

export interface NmConnectionSection extends SourceRef {
  /** e.g. "connection" or "connection-wifi". */
  name: string;
  matchDevice?: string;
  stopMatch: boolean;
  mptcpFlags?: SourceRef & { raw: string; parse: FlagsParse };
}

export interface NmProfile extends SourceRef {
  id?: string;
  uuid?: string;
  interfaceName?: string;
  /** Explicit per-profile flags; absent (or 0) means the global default applies. */
  mptcpFlags?: SourceRef & { raw: string; parse: FlagsParse };
}

export interface NmConfig {
  /** Files read, in NetworkManager's order. */
  files: string[];
  /** `[connection*]` sections in lookup priority (highest first; plain [connection] last). */
  sections: NmConnectionSection[];
  profiles: NmProfile[];
  /** Files that exist but could not be used, with why. */
  problems: { file: string; reason: string }[];
}

export interface NmConfFileText {
  path: string;
  text: string;
  /** The main NetworkManager.conf, which `[.config] enable=false` cannot disable. */
  main?: boolean;
}

function configEnabled(ini: IniFile): boolean {
  for (const s of ini.sections) {
    if (s.name !== '.config') continue;
    const e = sectionGet(s, 'enable');
    if (e && /^(false|no|0|off)$/i.test(e.value)) return false;
  }
  return true;
}

/** Pure: the `[connection*]` sections of conf files given in NetworkManager's read order. */
export function parseNmConf(files: readonly NmConfFileText[]): Pick<NmConfig, 'files' | 'sections' | 'problems'> {
  const perFile: NmConnectionSection[][] = [];
  const plain: NmConnectionSection[][] = [];
  const used: string[] = [];
  const problems: NmConfig['problems'] = [];
  for (const f of files) {
    const ini = parseIni(f.text);
    if (!f.main && !configEnabled(ini)) {
      problems.push({ file: f.path, reason: 'skipped: [.config] enable=false' });
      continue;
    }
    used.push(f.path);
    const mine: NmConnectionSection[] = [];
    const minePlain: NmConnectionSection[] = [];
    for (const s of ini.sections) {
      if (!s.name.startsWith('connection')) continue;
      const md = sectionGet(s, 'match-device');
      const sm = sectionGet(s, 'stop-match');
      const mf = sectionGet(s, 'connection.mptcp-flags');
      const sec: NmConnectionSection = {
        name: s.name,
        file: f.path,
        line: s.line,
        stopMatch: sm !== undefined && /^(true|yes|1|on)$/i.test(sm.value),
        ...(md ? { matchDevice: md.value } : {}),
        ...(mf ? { mptcpFlags: { raw: mf.value, file: f.path, line: mf.line, parse: parseNmConfDefault(mf.value) } } : {}),
      };
      (s.name === 'connection' ? minePlain : mine).push(sec);
    }
    perFile.push(mine);
    plain.push(minePlain);
  }
  // Later files win; inside a file sections count top to bottom; plain [connection] is searched last.
  const sections = [...perFile.reverse().flat(), ...plain.reverse().flat()];
  return { files: used, sections, problems };
}

/** Pure: one keyfile profile. */
export function parseNmKeyfile(path: string, text: string): NmProfile | undefined {
  const ini = parseIni(text);
  const con = [...ini.sections].reverse().find((s) => s.name === 'connection');
  if (!con) return undefined;
  const get = (k: string) => sectionGet(con, k);
  const mf = get('mptcp-flags');
  const id = get('id')?.value;
  const uuid = get('uuid')?.value;
  const ifname = get('interface-name')?.value;
  return {
    file: path,
    line: con.line,
    ...(id !== undefined ? { id } : {}),
    ...(uuid !== undefined ? { uuid } : {}),
    ...(ifname ? { interfaceName: ifname } : {}),
    ...(mf ? { mptcpFlags: { raw: mf.value, file: path, line: mf.line, parse: parseNmMptcpFlags(mf.value) } } : {}),
  };
}

/**
 * Evaluates a NetworkManager device spec (`match-device=`) against an interface name.
 * Only interface names are known here: `mac:`, `type:`, `driver:` ... give 'unknown'.
 */
export function matchDeviceSpec(spec: string, iface: string | undefined): 'yes' | 'no' | 'unknown' {
  let positive: 'yes' | 'no' | 'unknown' = 'no';
  let hasPositive = false;
  for (const rawEntry of spec.split(/[,;]/).map((s) => s.trim()).filter(Boolean)) {
    const except = rawEntry.startsWith('except:');
    const entry = except ? rawEntry.slice('except:'.length) : rawEntry;
    let r: 'yes' | 'no' | 'unknown';
    if (entry === '*') r = 'yes';
    else if (entry.startsWith('interface-name:')) {
      if (iface === undefined) r = 'unknown';
      else {
        let pat = entry.slice('interface-name:'.length);
        if (pat.startsWith('=')) r = pat.slice(1) === iface ? 'yes' : 'no';
        else {
          if (pat.startsWith('~')) pat = pat.slice(1);
          r = globMatch(pat, iface) ? 'yes' : 'no';
        }
      }
    } else r = 'unknown';
    if (except) {
      if (r === 'yes') return 'no';
      if (r === 'unknown' && positive !== 'no') positive = 'unknown';
    } else {
      hasPositive = true;
      if (r === 'yes') positive = 'yes';
      else if (r === 'unknown' && positive === 'no') positive = 'unknown';
    }
  }
  if (!hasPositive) return positive === 'unknown' ? 'unknown' : 'yes';
  return positive;
}

export interface NmDefault {
  /** Normalized effective flags. */
  flags: number;
  /** The section setting that decided, when any (absent: built-in default). */
  from?: NmConnectionSection;
  /** Settings that may apply to some devices but could not be evaluated (match-device by type, MAC...). */
  uncertain: NmConnectionSection[];
  /** Why a configured value was ignored, when it was. */
  note?: string;
}

/** The global default for a device named `iface` (undefined: a device matched by no name-specific section). */
export function nmDefaultFor(sections: readonly NmConnectionSection[], iface?: string): NmDefault {
  const uncertain: NmConnectionSection[] = [];
  for (const s of sections) {
    if (!s.mptcpFlags && !s.stopMatch) continue;
    const m = s.matchDevice === undefined ? 'yes' : matchDeviceSpec(s.matchDevice, iface);
    if (m === 'no') continue;
    if (m === 'unknown') {
      if (s.mptcpFlags) uncertain.push(s);
      continue;
    }
    if (!s.mptcpFlags) break; // stop-match without a value: the built-in default applies
    const p = s.mptcpFlags.parse;
    if (!p.ok) return { flags: NM_MPTCP_BUILTIN_DEFAULT, from: s, uncertain, note: p.error };
    if (p.value === 0) return { flags: NM_MPTCP_BUILTIN_DEFAULT, from: s, uncertain, note: '0 means "use the built-in default"' };
    return { flags: normalizeNmMptcpFlags(p.value), from: s, uncertain };
  }
  return { flags: NM_MPTCP_BUILTIN_DEFAULT, uncertain };
}

/** Effective flags of one profile: its own, else the default for its interface. */
export function nmProfileFlags(profile: NmProfile, sections: readonly NmConnectionSection[]): { flags: number; explicit: boolean; def?: NmDefault } {
  const p = profile.mptcpFlags?.parse;
  if (p && p.ok && p.value !== 0) return { flags: normalizeNmMptcpFlags(p.value), explicit: true };
  const def = nmDefaultFor(sections, profile.interfaceName);
  return { flags: def.flags, explicit: false, def };
}

export interface NmRoots {
  etcRoot: string;
  runRoot: string;
  usrLibRoot: string;
  /** NetworkManager's own root (<procRoot>/PID/root) when the roots lie below it. */
  jail?: string;
}

/** Reads NetworkManager's conf files and keyfiles below the given roots, in NM's order. */
export async function readNmConfig(roots: NmRoots): Promise<NmConfig> {
  const { etcRoot, runRoot, usrLibRoot } = roots;
  const o = roots.jail !== undefined ? { jail: roots.jail } : {};
  const nm = ['NetworkManager', 'conf.d'];
  const etcNames = await listUnder(etcRoot, nm, '.conf', o);
  const runNames = (await listUnder(runRoot, nm, '.conf', o)).filter((n) => !etcNames.includes(n));
  const libNames = (await listUnder(usrLibRoot, nm, '.conf', o)).filter((n) => !etcNames.includes(n) && !runNames.includes(n));
  const order: { root: string; parts: string[]; main?: boolean }[] = [
    ...libNames.map((n) => ({ root: usrLibRoot, parts: [...nm, n] })),
    ...runNames.map((n) => ({ root: runRoot, parts: [...nm, n] })),
    { root: etcRoot, parts: ['NetworkManager', 'NetworkManager.conf'], main: true },
    ...etcNames.map((n) => ({ root: etcRoot, parts: [...nm, n] })),
  ];
  const texts: NmConfFileText[] = [];
  const problems: NmConfig['problems'] = [];
  for (const f of order) {
    const r = await readUnder(f.root, f.parts, o);
    if (r.ok) texts.push({ path: r.path, text: r.text, ...(f.main ? { main: true } : {}) });
    else if (r.reason !== 'missing') problems.push({ file: r.path, reason: r.error ? `${r.reason} (${r.error})` : r.reason });
  }
  const conf = parseNmConf(texts);
  const profiles: NmProfile[] = [];
  const sc = ['NetworkManager', 'system-connections'];
  for (const root of [runRoot, etcRoot, usrLibRoot]) {
    for (const name of await listUnder(root, sc, '.nmconnection', o)) {
      const r = await readUnder(root, [...sc, name], o);
      if (!r.ok) {
        problems.push({ file: r.path, reason: r.error ? `${r.reason} (${r.error})` : r.reason });
        continue;
      }
      const p = parseNmKeyfile(r.path, r.text);
      if (p) profiles.push(p);
    }
  }
  return { files: conf.files, sections: conf.sections, profiles, problems: [...problems, ...conf.problems] };
}
