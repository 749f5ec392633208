// mptcpd's configuration (/etc/mptcpd/mptcpd.conf, section [core]) and command
// line (which overrides the file). What matters here:
// - the addr_adv plugin adds in-kernel path-manager endpoints for addresses as
//   they appear (with `addr-flags`) and raises the limits;
// - the sspi plugin drives the userspace path manager instead;
// - without `load-plugins`, mptcpd loads every plugin in its plugin directory
//   (distributions ship addr_adv and sspi), so addr_adv must be assumed.
import { readUnder } from './files.js';
import { parseIni, type IniFile } from './ini.js';
import type { SourceRef } from './networkmanager.js';

export interface MptcpdSetting extends SourceRef {
  value: string;
}

export interface MptcpdConfig {
  file: string;
  pathManager?: MptcpdSetting;
  addrFlags?: MptcpdSetting;
  loadPlugins?: MptcpdSetting;
  notifyFlags?: MptcpdSetting;
}

const KEYS = {
  'path-manager': 'pathManager',
  'addr-flags': 'addrFlags',
  'load-plugins': 'loadPlugins',
  'notify-flags': 'notifyFlags',
} as const;

/** Pure: the [core] settings of mptcpd.conf, last one wins. */
export function parseMptcpdConf(path: string, text: string): MptcpdConfig {
  const ini: IniFile = parseIni(text);
  const cfg: MptcpdConfig = { file: path };
  for (const s of ini.sections) {
    if (s.name !== 'core') continue;
    for (const e of s.entries) {
      const k = (KEYS as Record<string, (typeof KEYS)[keyof typeof KEYS] | undefined>)[e.key];
      if (k) cfg[k] = { value: e.value, file: path, line: e.line };
    }
  }
  return cfg;
}

/** `--load-plugins=a,b`, `--load-plugins a,b`, `--path-manager=...`, `--addr-flags=...` from argv. */
export function parseMptcpdArgs(argv: readonly string[]): { loadPlugins?: string; pathManager?: string; addrFlags?: string } {
  const out: { loadPlugins?: string; pathManager?: string; addrFlags?: string } = {};
  const opts: Record<string, 'loadPlugins' | 'pathManager' | 'addrFlags'> = {
    '--load-plugins': 'loadPlugins',
    '--path-manager': 'pathManager',
    '--addr-flags': 'addrFlags',
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const eq = a.indexOf('=');
    const name = eq > 0 ? a.slice(0, eq) : a;
    const key = opts[name];
    if (!key) continue;
    const v = eq > 0 ? a.slice(eq + 1) : argv[++i];
    if (v !== undefined) out[key] = v;
  }
  return out;
}

function list(v: string): string[] {
  return v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

export interface MptcpdBehaviour {
  /** addr_adv is (or must be assumed) loaded: endpoints and limits are written. */
  managesEndpoints: boolean;
  managesLimits: boolean;
  /** sspi (or another userspace plugin) may be loaded: it expects net.mptcp.path_manager=userspace. */
  userspacePlugin: boolean;
  plugins: string[] | 'all in plugin-dir';
  /** The setting that decided, for evidence. */
  from?: SourceRef & { what: string };
  addrFlags?: string;
}

/** Pure: what a running mptcpd does, from its config (may be undefined: unreadable/absent) and argv. */
export function mptcpdBehaviour(cfg: MptcpdConfig | undefined, argv: readonly string[] = []): MptcpdBehaviour {
  const args = parseMptcpdArgs(argv);
  const addrFlags = args.addrFlags ?? cfg?.addrFlags?.value;
  const base = addrFlags !== undefined ? { addrFlags } : {};
  if (args.loadPlugins !== undefined || cfg?.loadPlugins) {
    const plugins = list(args.loadPlugins ?? cfg!.loadPlugins!.value);
    const addrAdv = plugins.includes('addr_adv');
    const from = args.loadPlugins !== undefined ? undefined : { file: cfg!.loadPlugins!.file, line: cfg!.loadPlugins!.line, what: `load-plugins=${cfg!.loadPlugins!.value}` };
    return {
      managesEndpoints: addrAdv,
      managesLimits: addrAdv,
      userspacePlugin: plugins.some((p) => p !== 'addr_adv'),
      plugins,
      ...base,
      ...(from ? { from } : {}),
    };
  }
  const pm = args.pathManager ?? cfg?.pathManager?.value;
  const from = cfg?.pathManager && args.pathManager === undefined
    ? { file: cfg.pathManager.file, line: cfg.pathManager.line, what: `path-manager=${cfg.pathManager.value} (no load-plugins: every plugin in plugin-dir is loaded)` }
    : undefined;
  return {
    managesEndpoints: true,
    managesLimits: true,
    userspacePlugin: pm !== 'addr_adv',
    plugins: 'all in plugin-dir',
    ...base,
    ...(from ? { from } : {}),
  };
}

/** Reads `<etcRoot>/mptcpd/mptcpd.conf`; undefined when absent or unreadable (reason given). */
export async function readMptcpdConfig(etcRoot: string): Promise<{ config?: MptcpdConfig; problem?: { file: string; reason: string } }> {
  const r = await readUnder(etcRoot, ['mptcpd', 'mptcpd.conf']);
  if (r.ok) return { config: parseMptcpdConf(r.path, r.text) };
  if (r.reason === 'missing') return {};
  return { problem: { file: r.path, reason: r.error ? `${r.reason} (${r.error})` : r.reason } };
}
