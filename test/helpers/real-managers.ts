// The real mptcpd and NetworkManager (Debian packages), started only inside a
// test's own network namespace, never the host's. NetworkManager additionally
// gets a private system bus and a private mount namespace (tmpfs /run, its own
// /etc/NetworkManager and /var/lib/NetworkManager, /sys read-only so it does not
// wait for a udev that is not there) and a configuration that manages only the
// test's devices. Every process started here is stopped by its exact pid.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, openSync, closeSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll } from 'vitest';
import type { LiveManagerSource } from '../../src/conflicts/index.js';
import { daemonTestScope } from './daemon.js';
import { requireRoot, sh } from './netns.js';
import { waitFor } from './wait.js';

export const MPTCPD_BIN = '/usr/libexec/mptcpd';
export const NM_BIN = '/usr/sbin/NetworkManager';
export const DBUS_BIN = '/usr/bin/dbus-daemon';

/** Fails loudly (never skips) when the packages are missing: .ci/run installs them. */
export function requireRealManagers(): void {
  const missing = [MPTCPD_BIN, NM_BIN, DBUS_BIN, '/usr/bin/nmcli'].filter((p) => !existsSync(p));
  if (missing.length) {
    throw new Error(`the real-manager tests need ${missing.join(', ')}: apt-get install -y mptcpd mptcpd-plugins network-manager dbus (.ci/run does)`);
  }
}

interface Started {
  child: ChildProcess;
  pid: number;
  what: string;
}

const running = new Set<Started>();
// Each started manager's full cleanup (processes, then its temp dir); idempotent.
const cleanups = new Set<() => Promise<void>>();

function once(fn: () => Promise<void>): () => Promise<void> {
  let p: Promise<void> | undefined;
  const run = () => (p ??= fn().finally(() => cleanups.delete(run)));
  cleanups.add(run);
  return run;
}

function assertTestNamespace(netns: string): void {
  // A named namespace other than ours: a manager started here can only write there.
  if (!/^mr[a-zA-Z0-9]+-[0-9a-f]+$/.test(netns)) throw new Error(`refusing to start a manager outside a test namespace: ${JSON.stringify(netns)}`);
  const target = statSync(`/run/netns/${netns}`);
  const own = statSync('/proc/self/ns/net');
  if (target.ino === own.ino && target.dev === own.dev) throw new Error(`${netns} is the namespace the tests run in`);
}

function launch(what: string, cmd: string, args: string[], logFile: string, env: NodeJS.ProcessEnv = process.env): Started {
  const fd = openSync(logFile, 'a');
  try {
    const child = spawn(cmd, args, { stdio: ['ignore', fd, fd], env });
    if (child.pid === undefined) throw new Error(`could not start ${what}`);
    const s: Started = { child, pid: child.pid, what };
    running.add(s);
    child.once('exit', () => running.delete(s));
    return s;
  } finally {
    closeSync(fd);
  }
}

/** SIGTERM, then SIGKILL after `graceMs`, to this exact child; resolves when it is gone. */
async function stop(s: Started, graceMs = 3000): Promise<void> {
  if (s.child.exitCode !== null || s.child.signalCode !== null) {
    running.delete(s);
    return;
  }
  const gone = new Promise<void>((r) => s.child.once('exit', () => r()));
  s.child.kill('SIGTERM');
  const t = setTimeout(() => s.child.kill('SIGKILL'), graceMs);
  await gone;
  clearTimeout(t);
  running.delete(s);
}

/** Stops every manager this helper started and removes its files (for afterEach/afterAll). */
export async function stopAllManagers(): Promise<void> {
  await Promise.all([...cleanups].map((c) => c()));
  await Promise.all([...running].map((s) => stop(s)));
}

export { waitFor };

/** `ip netns exec` enters the namespace and then execs the program: wait until the pid is it. */
async function waitForExec(s: Started, comm: string, logFile: string): Promise<void> {
  await waitFor(`${s.what} (pid ${s.pid}) to exec; its output: ${logFile}`, () => {
    if (s.child.exitCode !== null) throw new Error(`${s.what} exited with ${s.child.exitCode}: ${readFileSync(logFile, 'utf8')}`);
    return readFileSync(`/proc/${s.pid}/comm`, 'utf8').trim() === comm;
  });
}

export interface RealManager {
  pid: number;
  /** The command line as the process has it. */
  argv: string[];
  /** Its stdout and stderr so far. */
  log(): string;
  stop(): Promise<void>;
}

/**
 * mptcpd in `netns`, in the foreground, with `args` (none: it reads its own
 * /etc/mptcpd/mptcpd.conf, that of the machine). Resolves once the pid is mptcpd.
 */
export async function startMptcpd(netns: string, args: string[]): Promise<RealManager> {
  assertTestNamespace(netns);
  const dir = mkdtempSync(join(tmpdir(), 'mr-mptcpd-'));
  const logFile = join(dir, 'mptcpd.log');
  const s = launch('mptcpd', 'ip', ['netns', 'exec', netns, MPTCPD_BIN, ...args], logFile);
  try {
    await waitForExec(s, 'mptcpd', logFile);
  } catch (e) {
    await stop(s);
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  return {
    pid: s.pid,
    argv: [MPTCPD_BIN, ...args],
    log: () => readFileSync(logFile, 'utf8'),
    stop: once(async () => {
      await stop(s);
      rmSync(dir, { recursive: true, force: true });
    }),
  };
}

export interface RealNetworkManager extends RealManager {
  /** The directory bind-mounted over NetworkManager's /etc/NetworkManager. */
  etcDir: string;
  /** `nmcli ARGS` on the private bus. */
  nmcli(...args: string[]): string;
}

export interface NetworkManagerOptions {
  /** NetworkManager manages only devices whose name starts with this. */
  devicePrefix: string;
  /** Keyfile profiles: file name (without .nmconnection) -> contents. */
  profiles?: Record<string, string>;
  /** Appended to NetworkManager.conf (e.g. a [connection] default). */
  confExtra?: string;
}

/** A static IPv4 profile for one device, with a gateway (NetworkManager adds endpoints only with a default route). */
export function staticProfile(dev: string, cidr: string, gateway: string, connectionExtra = ''): string {
  return (
    `[connection]\nid=${dev}\ntype=ethernet\ninterface-name=${dev}\n${connectionExtra}` +
    `[ipv4]\nmethod=manual\naddress1=${cidr},${gateway}\n[ipv6]\nmethod=disabled\n`
  );
}

const BUS_CONF = (socket: string) => `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=${socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
`;

/** NetworkManager in `netns` with its own bus, mounts and configuration (see the file comment). */
export async function startNetworkManager(netns: string, o: NetworkManagerOptions): Promise<RealNetworkManager> {
  assertTestNamespace(netns);
  if (!/^[a-z0-9]+$/.test(o.devicePrefix)) throw new Error(`device prefix must be [a-z0-9]+: ${o.devicePrefix}`);
  const dir = mkdtempSync(join(tmpdir(), 'mr-nm-'));
  const etcDir = join(dir, 'etc');
  const libDir = join(dir, 'varlib');
  const resolv = join(dir, 'resolv.conf');
  const socket = join(dir, 'bus.sock');
  mkdirSync(join(etcDir, 'system-connections'), { recursive: true });
  mkdirSync(join(etcDir, 'conf.d'));
  mkdirSync(libDir);
  writeFileSync(resolv, '');
  writeFileSync(join(dir, 'bus.conf'), BUS_CONF(socket));
  writeFileSync(
    join(etcDir, 'NetworkManager.conf'),
    '[main]\nplugins=keyfile\ndns=none\nrc-manager=unmanaged\nhostname-mode=none\nno-auto-default=*\nauth-polkit=false\n' +
      `[keyfile]\nunmanaged-devices=except:interface-name:${o.devicePrefix}*\n` +
      (o.confExtra ?? ''),
  );
  for (const [name, text] of Object.entries(o.profiles ?? {})) {
    writeFileSync(join(etcDir, 'system-connections', `${name}.nmconnection`), text, { mode: 0o600 });
  }
  const started: Started[] = [];
  const cleanup = once(async () => {
    for (const s of started.reverse()) await stop(s);
    rmSync(dir, { recursive: true, force: true });
  });
  try {
    const busLog = join(dir, 'dbus.log');
    const bus = launch('dbus-daemon', DBUS_BIN, [`--config-file=${join(dir, 'bus.conf')}`, '--nofork', '--nopidfile'], busLog);
    started.push(bus);
    await waitFor(`the private bus at ${socket}`, () => {
      if (bus.child.exitCode !== null) throw new Error(`dbus-daemon exited: ${readFileSync(busLog, 'utf8')}`);
      return existsSync(socket);
    });
    const env = { ...process.env, DBUS_SYSTEM_BUS_ADDRESS: `unix:path=${socket}` };
    // Paths below are from mkdtemp (no quotes or spaces); the script is fixed text.
    const script =
      `mount -t tmpfs tmpfs /run && mount --bind ${libDir} /var/lib/NetworkManager && ` +
      `mount --bind ${etcDir} /etc/NetworkManager && mount --bind ${resolv} /etc/resolv.conf && ` +
      `mount -o remount,ro /sys && exec ${NM_BIN} --no-daemon`;
    const logFile = join(dir, 'NetworkManager.log');
    const nm = launch('NetworkManager', 'ip', ['netns', 'exec', netns, 'unshare', '-m', '--propagation', 'private', 'sh', '-c', script], logFile, env);
    started.push(nm);
    await waitForExec(nm, 'NetworkManager', logFile);
    const nmcli = (...args: string[]) => sh('env', [`DBUS_SYSTEM_BUS_ADDRESS=unix:path=${socket}`, 'nmcli', ...args]);
    await waitFor('NetworkManager on its bus', () => nmcli('-t', '-f', 'RUNNING', 'general').trim() === 'running');
    return {
      pid: nm.pid,
      argv: [NM_BIN, '--no-daemon'],
      etcDir,
      nmcli,
      log: () => readFileSync(logFile, 'utf8'),
      stop: cleanup,
    };
  } catch (e) {
    await cleanup();
    throw e;
  }
}

/**
 * A daemon test scope for files that run real managers next to the daemon:
 * managers stop before the daemons after each test (they write to the
 * namespace), and an empty /etc stands in for the machine's so that only the
 * running processes count as evidence.
 */
export function managerTestScope(prefix: string): { scope: ReturnType<typeof daemonTestScope>; emptyEtc: string; sources: LiveManagerSource[] } {
  const scope = daemonTestScope(prefix);
  const emptyEtc = mkdtempSync(join(tmpdir(), `${prefix}-etc-`));
  const sources: LiveManagerSource[] = [];
  beforeAll(() => {
    requireRoot();
    requireRealManagers();
  });
  afterEach(async () => {
    await stopAllManagers();
    await scope.stopDaemons();
    for (const s of sources.splice(0)) s.close();
  });
  afterAll(async () => {
    try {
      await stopAllManagers();
    } finally {
      scope.cleanup();
      rmSync(emptyEtc, { recursive: true, force: true });
    }
  });
  return { scope, emptyEtc, sources };
}
