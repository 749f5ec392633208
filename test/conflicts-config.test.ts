// Configuration of other managers read from fake /etc, /run and /usr/lib trees.
import { cpSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  buildEvidence,
  describeNmMptcpFlags,
  matchDeviceSpec,
  mptcpdBehaviour,
  nmDefaultFor,
  nmProfileFlags,
  normalizeNmMptcpFlags,
  parseNmConf,
  parseNmConfDefault,
  parseNmMptcpFlags,
  readManagerConfigs,
  readNmConfig,
  readMptcpdConfig,
  mappedPlugins,
  parseMptcpdArgs,
  parseMptcpdConf,
  type ManagerProcess,
} from '../src/conflicts/index.js';

const FX = join(import.meta.dirname, 'fixtures', 'conflicts');
const roots = (base: string) => ({ etcRoot: join(base, 'etc'), runRoot: join(base, 'run'), usrLibRoot: join(base, 'usr', 'lib') });
const tmp: string[] = [];
afterAll(() => tmp.forEach((d) => rmSync(d, { recursive: true, force: true })));

describe('NetworkManager mptcp-flags values', () => {
  it('reads profile values as names, decimal and hex, like nmcli', () => {
    expect(parseNmMptcpFlags('disabled')).toEqual({ ok: true, value: 0x1 });
    expect(parseNmMptcpFlags('enabled,subflow')).toEqual({ ok: true, value: 0x22 });
    expect(parseNmMptcpFlags('signal, subflow')).toEqual({ ok: true, value: 0x30 });
    expect(parseNmMptcpFlags('0x1')).toEqual({ ok: true, value: 0x1 });
    expect(parseNmMptcpFlags('34')).toEqual({ ok: true, value: 0x22 });
    expect(parseNmMptcpFlags('sometimes')).toEqual({ ok: false, error: 'unknown MPTCP flag "sometimes"' });
  });

  it('takes only decimal numbers in NetworkManager.conf, as NetworkManager does', () => {
    expect(parseNmConfDefault('1')).toEqual({ ok: true, value: 1 });
    expect(parseNmConfDefault('0x1').ok).toBe(false);
    expect(parseNmConfDefault('disabled').ok).toBe(false);
  });

  it('normalizes like NetworkManager: disabled wins, enabled implied, signal drops fullmesh', () => {
    expect(normalizeNmMptcpFlags(0x1 | 0x20)).toBe(0x1);
    expect(normalizeNmMptcpFlags(0x20)).toBe(0x22);
    expect(normalizeNmMptcpFlags(0x10 | 0x80)).toBe(0x12);
    expect(describeNmMptcpFlags(0x22)).toBe('enabled,subflow (0x22)');
  });

  it('matches match-device specs by interface name and says unknown for the rest', () => {
    expect(matchDeviceSpec('interface-name:wlan*', 'wlan0')).toBe('yes');
    expect(matchDeviceSpec('interface-name:wlan*', 'eth0')).toBe('no');
    expect(matchDeviceSpec('interface-name:=eth0', 'eth0')).toBe('yes');
    expect(matchDeviceSpec('*,except:interface-name:eth0', 'eth0')).toBe('no');
    expect(matchDeviceSpec('type:wifi', 'wlan0')).toBe('unknown');
    expect(matchDeviceSpec('interface-name:wlan0', undefined)).toBe('unknown');
  });
});

describe('NetworkManager.conf and conf.d precedence', () => {
  it('reads /usr/lib, /run, NetworkManager.conf, /etc conf.d in that order, with shadowing and [.config] enable=false', async () => {
    const r = roots(join(FX, 'precedence'));
    const nm = await readNmConfig(r);
    expect(nm.files).toEqual([
      join(r.runRoot, 'NetworkManager/conf.d/50-run.conf'),
      join(r.etcRoot, 'NetworkManager/NetworkManager.conf'),
      join(r.etcRoot, 'NetworkManager/conf.d/00-vendor.conf'),
      join(r.etcRoot, 'NetworkManager/conf.d/60-wifi.conf'),
    ]);
    expect(nm.problems).toEqual([{ file: join(r.etcRoot, 'NetworkManager/conf.d/70-skipped.conf'), reason: 'skipped: [.config] enable=false' }]);

    // NetworkManager.conf (read after /run) wins: 50 = 0x32 = signal,subflow (+ enabled implied).
    const def = nmDefaultFor(nm.sections);
    expect(def.flags).toBe(0x32);
    expect(def.from).toMatchObject({ file: join(r.etcRoot, 'NetworkManager/NetworkManager.conf') });
    expect(def.from?.mptcpFlags?.line).toBe(6);
    // the [connection-wlan] section (later file, matching device) disables it for wlan0 only
    const wlan = nmDefaultFor(nm.sections, 'wlan0');
    expect(wlan.flags).toBe(0x1);
    expect(wlan.from?.mptcpFlags).toMatchObject({ file: join(r.etcRoot, 'NetworkManager/conf.d/60-wifi.conf'), line: 3 });
    expect(nmDefaultFor(nm.sections, 'eth0').flags).toBe(0x32);
  });

  it('ignores a hex or named global default (NetworkManager parses base 10) and says so', () => {
    const conf = parseNmConf([
      { path: '/etc/NetworkManager/NetworkManager.conf', text: '[connection]\nconnection.mptcp-flags=1\n', main: true },
      { path: '/etc/NetworkManager/conf.d/90-hex.conf', text: '# hex\n[connection]\nconnection.mptcp-flags=0x1\n' },
    ]);
    const def = nmDefaultFor(conf.sections);
    expect(def.flags).toBe(0x22); // built-in enabled,subflow: the later, unparsable value masks the earlier 1
    expect(def.from?.file).toBe('/etc/NetworkManager/conf.d/90-hex.conf');
    expect(def.note).toMatch(/decimal number.*"0x1" is ignored/);
  });

  it('falls back to the built-in enabled,subflow default when nothing sets it', async () => {
    const nm = await readNmConfig(roots(join(FX, 'builtin')));
    expect(nmDefaultFor(nm.sections)).toEqual({ flags: 0x22, uncertain: [] });
    const ev = buildEvidence({ processes: [], nm, includeInactiveConfig: true });
    expect(ev).toHaveLength(1);
    expect(ev[0]).toMatchObject({ manager: 'NetworkManager', kind: 'config', active: false, managesEndpoints: true, managesRpFilter: true });
    expect(ev[0]!.detail).toMatch(/built-in default enabled,subflow \(0x22\)/);
    expect(ev[0]!.detail).toMatch(/loosens rp_filter strict \(1\) to loose \(2\)/);
    expect(ev[0]!.fix).toMatch(/connection\.mptcp-flags=1/);
  });
});

describe('NetworkManager keyfiles', () => {
  it('reads per-profile mptcp-flags with file and line, and inherits the default without them', async () => {
    const nm = await readNmConfig(roots(join(FX, 'precedence')));
    const byId = Object.fromEntries(nm.profiles.map((p) => [p.id, p]));
    expect(Object.keys(byId).sort()).toEqual(['Wired eth0', 'lab', 'lte']);
    expect(byId['lte']).toMatchObject({ interfaceName: 'wwan0', mptcpFlags: { raw: 'subflow,backup', line: 6 } });
    expect(nmProfileFlags(byId['lte']!, nm.sections)).toMatchObject({ flags: 0x62, explicit: true });
    expect(nmProfileFlags(byId['lab']!, nm.sections)).toMatchObject({ flags: 0x1, explicit: true });
    expect(byId['Wired eth0']!.mptcpFlags).toBeUndefined();
    expect(nmProfileFlags(byId['Wired eth0']!, nm.sections)).toMatchObject({ flags: 0x32, explicit: false });
  });

  it('gives evidence for a running NetworkManager naming file, line and the nmcli fix', async () => {
    const base = join(FX, 'precedence');
    const configs = await readManagerConfigs(roots(base));
    const nmProc: ManagerProcess = { pid: 812, comm: 'NetworkManager', manager: 'NetworkManager', netns: { ino: 1 }, argv: [] };
    const ev = buildEvidence({ processes: [nmProc], nm: configs.nm, includeInactiveConfig: false });
    const proc = ev.find((e) => e.kind === 'process')!;
    expect(proc).toMatchObject({ manager: 'NetworkManager', pid: 812, active: true, managesEndpoints: true });
    const global = ev.find((e) => e.kind === 'config' && e.file?.endsWith('NetworkManager.conf'))!;
    expect(global).toMatchObject({ line: 6, managesEndpoints: true, pid: 812 });
    expect(global.detail).toMatch(/connection\.mptcp-flags=50 in \[connection\] -> enabled,signal,subflow \(0x32\)/);
    const lte = ev.find((e) => e.file?.endsWith('lte.nmconnection'))!;
    expect(lte).toMatchObject({ line: 6, managesEndpoints: true });
    expect(lte.fix).toBe('run `nmcli connection modify "lte" connection.mptcp-flags disabled` then `nmcli connection up "lte"`; or use `conflicts: warn`');
    const lab = ev.find((e) => e.file?.endsWith('lab.nmconnection'))!;
    expect(lab).toMatchObject({ managesEndpoints: false });
  });

  it('reports a NetworkManager whose every profile and default are disabled as managing nothing', () => {
    const conf = parseNmConf([{ path: '/etc/NetworkManager/NetworkManager.conf', text: '[connection]\nconnection.mptcp-flags=1\n', main: true }]);
    const nm = { ...conf, profiles: [] };
    const ev = buildEvidence({
      processes: [{ pid: 5, comm: 'NetworkManager', manager: 'NetworkManager', netns: { ino: 1 }, argv: [] }],
      nm,
      includeInactiveConfig: false,
    });
    expect(ev.every((e) => !e.managesEndpoints)).toBe(true);
    expect(ev.find((e) => e.kind === 'config')!.detail).toMatch(/MPTCP handling disabled/);
  });
});

describe('mptcpd.conf', () => {
  it('reads the distribution default: addr_adv writes endpoints and limits', async () => {
    const { config } = await readMptcpdConfig(join(FX, 'precedence', 'etc'));
    expect(config).toMatchObject({ pathManager: { value: 'addr_adv', line: 5 }, addrFlags: { value: 'subflow', line: 6 } });
    const b = mptcpdBehaviour(config);
    expect(b).toMatchObject({ managesEndpoints: true, managesLimits: true, plugins: 'all in plugin-dir', addrFlags: 'subflow' });
  });

  it('load-plugins=sspi only: no endpoints, a userspace plugin; the command line overrides the file', async () => {
    const { config } = await readMptcpdConfig(join(FX, 'mptcpd-sspi', 'etc'));
    const b = mptcpdBehaviour(config);
    expect(b).toMatchObject({ managesEndpoints: false, userspacePlugin: true, plugins: ['sspi'], from: { line: 3 } });
    expect(mptcpdBehaviour(config, ['--load-plugins', 'addr_adv']).managesEndpoints).toBe(true);
    expect(mptcpdBehaviour(config, ['--load-plugins=addr_adv,sspi']).managesEndpoints).toBe(true);
  });

  it('a running mptcpd without readable config is assumed to run addr_adv', () => {
    const ev = buildEvidence({
      processes: [{ pid: 77, comm: 'mptcpd', manager: 'mptcpd', netns: { ino: 1 }, argv: ['/usr/libexec/mptcpd'] }],
      mptcpd: { problem: { file: '/etc/mptcpd/mptcpd.conf', reason: 'unreadable (EACCES)' } },
      includeInactiveConfig: false,
    });
    expect(ev).toHaveLength(1);
    expect(ev[0]).toMatchObject({ manager: 'mptcpd', pid: 77, managesEndpoints: true, managesLimits: true });
    expect(ev[0]!.detail).toMatch(/not used: \/etc\/mptcpd\/mptcpd.conf \(unreadable \(EACCES\)\)/);
    expect(ev[0]!.fix).toMatch(/systemctl disable --now mptcpd/);
  });
});

describe('files that cannot be used', () => {
  it('skips unreadable entries and never reads through a link leaving the root', async () => {
    const base = mkdtempSync(join(tmpdir(), 'mr-conflicts-'));
    tmp.push(base);
    cpSync(join(FX, 'builtin'), base, { recursive: true });
    const outside = mkdtempSync(join(tmpdir(), 'mr-outside-'));
    tmp.push(outside);
    writeFileSync(join(outside, 'secret.conf'), '[connection]\nconnection.mptcp-flags=1\n');
    const confd = join(base, 'etc', 'NetworkManager', 'conf.d');
    mkdirSync(confd, { recursive: true });
    mkdirSync(join(confd, 'dir.conf')); // a directory named like a file
    symlinkSync('loop.conf', join(confd, 'loop.conf')); // ELOOP
    symlinkSync(join(outside, 'secret.conf'), join(confd, 'evil.conf')); // outside the root
    const sc = join(base, 'etc', 'NetworkManager', 'system-connections');
    symlinkSync(join(outside, 'secret.conf'), join(sc, 'evil.nmconnection'));

    const nm = await readNmConfig(roots(base));
    const reasons = Object.fromEntries(nm.problems.map((p) => [p.file.slice(base.length), p.reason]));
    expect(reasons).toEqual({
      '/etc/NetworkManager/conf.d/dir.conf': 'not-a-file',
      '/etc/NetworkManager/conf.d/evil.conf': 'outside-root',
      '/etc/NetworkManager/conf.d/loop.conf': 'unreadable (ELOOP)',
      '/etc/NetworkManager/system-connections/evil.nmconnection': 'outside-root',
    });
    // the outside file's "disabled" was not read: the built-in default still applies
    expect(nmDefaultFor(nm.sections).flags).toBe(0x22);
    expect(nm.profiles.map((p) => p.id)).toEqual(['eth0']);
  });
});

describe("a manager's own root (/proc/PID/root)", () => {
  it('resolves links as the manager sees them: an absolute target starts at its root, ".." stops there', async () => {
    // A fake process root: conf.d entries link to /usr/lib (absolute) and climb above the root.
    const jail = mkdtempSync(join(tmpdir(), 'mr-jail-'));
    tmp.push(jail);
    const confd = join(jail, 'etc', 'NetworkManager', 'conf.d');
    mkdirSync(confd, { recursive: true });
    mkdirSync(join(jail, 'usr', 'lib', 'nm'), { recursive: true });
    writeFileSync(join(jail, 'usr', 'lib', 'nm', 'off.conf'), '[connection]\nconnection.mptcp-flags=1\n');
    symlinkSync('/usr/lib/nm/off.conf', join(confd, '90-off.conf'));
    symlinkSync('../../../../../../../../usr/lib/nm/off.conf', join(confd, '91-climb.conf'));
    symlinkSync('92-loop.conf', join(confd, '92-loop.conf'));
    const r = {
      etcRoot: join(jail, 'etc'),
      runRoot: join(jail, 'run'),
      usrLibRoot: join(jail, 'usr', 'lib'),
    };
    const nm = await readNmConfig({ ...r, jail });
    expect(nm.files.map((f) => f.slice(jail.length))).toEqual(['/etc/NetworkManager/conf.d/90-off.conf', '/etc/NetworkManager/conf.d/91-climb.conf']);
    expect(nm.problems.map((p) => [p.file.slice(jail.length), p.reason])).toEqual([['/etc/NetworkManager/conf.d/92-loop.conf', 'unreadable (ELOOP)']]);
    expect(nmDefaultFor(nm.sections).flags).toBe(0x1);
    // Read as a plain --etc-root instead, the absolute link points into the tool's own
    // filesystem (no /usr/lib/nm there): the manager's "disabled" is not seen.
    const plain = await readNmConfig(r);
    expect(plain.files).toEqual([]);
    expect(nmDefaultFor(plain.sections).flags).toBe(0x22);
  });

  it('takes the loaded mptcpd plugins from the memory maps, from its plugin directory only', () => {
    const maps = [
      '7f1c2a000000-7f1c2a001000 r--p 00000000 08:01 1234  /usr/lib/x86_64-linux-gnu/mptcpd/addr_adv.so',
      '7f1c2a001000-7f1c2a002000 r-xp 00001000 08:01 1234  /usr/lib/x86_64-linux-gnu/mptcpd/addr_adv.so',
      '7f1c2b000000-7f1c2b001000 r--p 00000000 08:01 1235  /usr/lib/x86_64-linux-gnu/mptcpd/sspi.so (deleted)',
      '7f1c2c000000-7f1c2c001000 r--p 00000000 08:01 1236  /usr/lib/x86_64-linux-gnu/libmptcpd.so.3.0.0',
      '7f1c2d000000-7f1c2d001000 r--p 00000000 08:01 1237  /opt/pm/custom.so',
      '7ffd1c000000-7ffd1c021000 rw-p 00000000 00:00 0     [stack]',
    ].join('\n');
    expect(mappedPlugins(maps, undefined)).toEqual(['addr_adv', 'sspi']);
    expect(mappedPlugins(maps, '/opt/pm/')).toEqual(['custom']);
  });

  it('names the command-line settings; loaded plugins decide over the settings', () => {
    expect(parseMptcpdArgs(['--path-manager', 'sspi', '--addr-flags=subflow', '-d', '--plugin-dir=/opt/pm'])).toEqual({
      pathManager: 'sspi',
      addrFlags: 'subflow',
      pluginDir: '/opt/pm',
      given: ['--path-manager=sspi', '--addr-flags=subflow', '--plugin-dir=/opt/pm'],
    });
    // The file says sspi only, but the process has addr_adv mapped: it writes endpoints.
    const sspiOnly = parseMptcpdConf('/etc/mptcpd/mptcpd.conf', '[core]\nload-plugins=sspi\n');
    expect(mptcpdBehaviour(sspiOnly, [], ['addr_adv'])).toMatchObject({ managesEndpoints: true, plugins: ['addr_adv'], pluginsObserved: true });
    expect(mptcpdBehaviour(sspiOnly, [])).toMatchObject({ managesEndpoints: false, plugins: ['sspi'] });
  });
});
