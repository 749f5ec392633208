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
  pluginDir?: MptcpdSetting;
}

const KEYS = {
  'path-manager': 'pathManager',
  'addr-flags': 'addrFlags',
  'load-plugins': 'loadPlugins',
  'notify-flags': 'notifyFlags',
  'plugin-dir': 'pluginDir',
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

export interface MptcpdArgs {
  loadPlugins?: string;
  pathManager?: string;
  addrFlags?: string;
  notifyFlags?: string;
  pluginDir?: string;
  /** The options above as written on the command line, in order (for evidence). */
  given: string[];
}

/** `--load-plugins=a,b`, `--load-plugins a,b`, `--path-manager=...` etc. from argv (argp's long options). */
export function parseMptcpdArgs(argv: readonly string[]): MptcpdArgs {
  const out: MptcpdArgs = { given: [] };
  const opts: Record<string, 'loadPlugins' | 'pathManager' | 'addrFlags' | 'notifyFlags' | 'pluginDir'> = {
    '--load-plugins': 'loadPlugins',
    '--path-manager': 'pathManager',
    '--addr-flags': 'addrFlags',
    '--notify-flags': 'notifyFlags',
    '--plugin-dir': 'pluginDir',
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const eq = a.indexOf('=');
    const name = eq > 0 ? a.slice(0, eq) : a;
    const key = opts[name];
    if (!key) continue;
    const v = eq > 0 ? a.slice(eq + 1) : argv[++i];
    if (v !== undefined) {
      out[key] = v;
      out.given.push(`${name}=${v}`);
    }
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
  /** The setting that decided, for evidence (a config file line). */
  from?: SourceRef & { what: string };
  /** The settings taken from the command line, which override the file (e.g. --path-manager=addr_adv). */
  argv: string[];
  addrFlags?: string;
  /** True when `plugins` lists what the process has actually loaded (its memory maps). */
  pluginsObserved?: boolean;
}

/**
 * Pure: what a running mptcpd does, from its config (may be undefined: unreadable/absent),
 * argv and, when known, the plugins it has loaded (names, from its memory maps),
 * which beat any inference from the settings.
 */
export function mptcpdBehaviour(cfg: MptcpdConfig | undefined, argv: readonly string[] = [], loaded?: readonly string[]): MptcpdBehaviour {
  const args = parseMptcpdArgs(argv);
  const addrFlags = args.addrFlags ?? cfg?.addrFlags?.value;
  const base = { argv: args.given, ...(addrFlags !== undefined ? { addrFlags } : {}) };
  if (loaded) {
    const plugins = [...loaded];
    const addrAdv = plugins.includes('addr_adv');
    const setting = args.loadPlugins !== undefined || args.pathManager !== undefined ? undefined : (cfg?.loadPlugins ?? cfg?.pathManager);
    const key = setting === cfg?.loadPlugins ? 'load-plugins' : 'path-manager';
    return {
      managesEndpoints: addrAdv,
      managesLimits: addrAdv,
      userspacePlugin: plugins.some((p) => p !== 'addr_adv'),
      plugins,
      pluginsObserved: true,
      ...base,
      ...(setting ? { from: { file: setting.file, line: setting.line, what: `${key}=${setting.value}` } } : {}),
    };
  }
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

/**
 * Reads `<etcRoot>/mptcpd/mptcpd.conf`; undefined when absent or unreadable (reason given).
 * `jail`: mptcpd's own root when etcRoot lies below it (see files.ts).
 */
export async function readMptcpdConfig(etcRoot: string, jail?: string): Promise<{ config?: MptcpdConfig; problem?: { file: string; reason: string } }> {
  const r = await readUnder(etcRoot, ['mptcpd', 'mptcpd.conf'], jail !== undefined ? { jail } : {});
  if (r.ok) return { config: parseMptcpdConf(r.path, r.text) };
  if (r.reason === 'missing') return {};
  return { problem: { file: r.path, reason: r.error ? `${r.reason} (${r.error})` : r.reason } };
}
