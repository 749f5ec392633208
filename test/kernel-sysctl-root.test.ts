// --sysctl-root: the kernel fact the unprivileged DaemonSet rests on. A file under
// /proc/sys/net acts on the network namespace of the task that opens it, not on
// the namespace of the procfs mount, so a bind mount of the host's /proc/sys/net
// elsewhere (a hostPath in the pod) reaches every namespace after setns, as
// /proc/sys does. Checked against `ip netns exec NS sysctl`; writes go only to
// throwaway namespaces.
import { accessSync, constants, mkdirSync, mkdtempSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SYSCTL_NAMES, type MptcpKey } from '../src/core/schema.js';
import { main } from '../src/cli/main.js';
import { KernelError } from '../src/kernel/api.js';
import { closeAllNamespaces, closeNamespace, openNamespace } from '../src/kernel/namespace.js';
import { DEFAULT_SYSCTL_ROOT, getSysctlRoot, setSysctlRoot } from '../src/kernel/procfs.js';
import { ensureBuilt } from './helpers/build.js';
import { captureIO } from './helpers/io.js';
import { ipEndpoints, ipLimits, namespacesFor, nsSysctl, setNsSysctl, sh } from './helpers/netns.js';

const ns = namespacesFor('ksr', () => {
  closeAllNamespaces();
  setSysctlRoot(DEFAULT_SYSCTL_ROOT);
});

// The DaemonSet's layout: the host's /proc read-only at /host/proc, its
// /proc/sys/net read-write on top at /host/proc/sys/net, root /host/proc/sys.
const work = mkdtempSync(join(tmpdir(), 'mr-sysctl-root-'));
const hostProc = join(work, 'host/proc');
const root = join(hostProc, 'sys');
const roRoot = join(work, 'ro');
const mounted: string[] = [];

function bind(src: string, dst: string, readOnly: boolean): void {
  sh('mount', ['--bind', src, dst]);
  mounted.push(dst);
  if (readOnly) sh('mount', ['-o', 'remount,bind,ro', dst]);
}

beforeAll(() => {
  mkdirSync(hostProc, { recursive: true });
  mkdirSync(join(roRoot, 'net'), { recursive: true });
  bind('/proc', hostProc, true);
  bind('/proc/sys/net', join(root, 'net'), false);
  // What a container's own /proc/sys is: the same files, read-only.
  bind('/proc/sys/net', join(roRoot, 'net'), true);
});

afterAll(() => {
  // Open sysctl files keep the mount busy: close the handles first, and unmount
  // lazily if something still holds one.
  closeAllNamespaces();
  setSysctlRoot(DEFAULT_SYSCTL_ROOT);
  for (const m of mounted.reverse()) {
    try {
      sh('umount', [m]);
    } catch {
      sh('umount', ['-l', m]);
    }
  }
  rmSync(work, { recursive: true, force: true });
});

function hostSysctl(key: string): string {
  return sh('sysctl', ['-n', key]).trim();
}

/** Paths of this process's open files under `dir`. */
function openFilesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      const target = readlinkSync(`/proc/self/fd/${fd}`);
      if (target.startsWith(`${dir}/`)) out.push(target);
    } catch {
      /* closed meanwhile */
    }
  }
  return out;
}

describe('a bind mount of /proc/sys/net as the sysctl root', () => {
  it('in the DaemonSet layout only net/ is writable, the rest of /host/proc/sys stays read-only', () => {
    // access(W_OK) asks without writing (this is the host's UTS namespace).
    expect(() => accessSync(join(root, 'kernel/domainname'), constants.W_OK)).toThrow(/EROFS/);
    expect(() => accessSync(join(root, 'net/../kernel/domainname'), constants.W_OK)).toThrow(/EROFS/);
    expect(() => accessSync(join(root, 'net/mptcp/enabled'), constants.W_OK)).not.toThrow();
  });

  it('reads the values of the namespace the files are opened in, not of the host', async () => {
    const n = ns();
    // Values that differ from the host's, so reading the wrong namespace shows.
    const timeout = hostSysctl('net.mptcp.add_addr_timeout') === '47' ? '48' : '47';
    const stale = hostSysctl('net.mptcp.stale_loss_cnt') === '9' ? '8' : '9';
    setNsSysctl(n, 'net.mptcp.add_addr_timeout', timeout);
    setNsSysctl(n, 'net.mptcp.stale_loss_cnt', stale);
    setNsSysctl(n, 'net.ipv4.conf.lo.rp_filter', '2');

    setSysctlRoot(root);
    expect(getSysctlRoot()).toBe(root);
    const k = openNamespace(n);
    const got = (await k.readLive({ mptcp: true })).mptcp;
    expect(got.addAddrTimeout).toBe(Number(timeout));
    expect(got.staleLossCnt).toBe(Number(stale));
    for (const [key, name] of Object.entries(SYSCTL_NAMES) as [MptcpKey, string][]) {
      const v = got[key];
      if (v === undefined) continue;
      const raw = nsSysctl(n, `net.mptcp.${name}`);
      expect(typeof v === 'boolean' ? (v ? '1' : '0') : String(v), name).toBe(raw);
    }
    expect((await k.readLive({ rpFilter: true })).rpFilter).toEqual({
      all: Number(nsSysctl(n, 'net.ipv4.conf.all.rp_filter')),
      default: Number(nsSysctl(n, 'net.ipv4.conf.default.rp_filter')),
      lo: 2,
    });
    // The files really were opened through the bind mount, not /proc/sys; rp_filter
    // is read over the namespace's rtnetlink socket, so a read opens none of its files.
    expect(openFilesUnder(join(root, 'net'))).toContain(join(root, 'net/mptcp/add_addr_timeout'));
    expect(openFilesUnder(join(root, 'net')).filter((f) => f.includes('/ipv4/conf/'))).toEqual([]);
    closeNamespace(n);
  });

  it('writes in that namespace only: sysctl there shows the value, the host keeps its own', () => {
    const n = ns();
    const hostTimeout = hostSysctl('net.mptcp.add_addr_timeout');
    const hostRp = hostSysctl('net.ipv4.conf.lo.rp_filter');
    const hostJoin = hostSysctl('net.mptcp.allow_join_initial_addr_port');
    const value = hostTimeout === '53' ? 54 : 53;

    setSysctlRoot(root);
    const k = openNamespace(n);
    k.writeMptcpSysctl('addAddrTimeout', value);
    k.writeMptcpSysctl('allowJoinInitialAddrPort', hostJoin === '0');
    k.writeRpFilter('lo', hostRp === '1' ? 2 : 1);
    expect(openFilesUnder(join(root, 'net'))).toContain(join(root, 'net/ipv4/conf/lo/rp_filter'));
    expect(nsSysctl(n, 'net.mptcp.add_addr_timeout')).toBe(String(value));
    expect(nsSysctl(n, 'net.mptcp.allow_join_initial_addr_port')).toBe(hostJoin === '0' ? '1' : '0');
    expect(nsSysctl(n, 'net.ipv4.conf.lo.rp_filter')).toBe(hostRp === '1' ? '2' : '1');
    expect(hostSysctl('net.mptcp.add_addr_timeout')).toBe(hostTimeout);
    expect(hostSysctl('net.mptcp.allow_join_initial_addr_port')).toBe(hostJoin);
    expect(hostSysctl('net.ipv4.conf.lo.rp_filter')).toBe(hostRp);
    closeNamespace(n);
  });

  it('a read-only mount (what a container has at /proc/sys) reads but refuses writes with EROFS', async () => {
    const n = ns();
    const before = nsSysctl(n, 'net.mptcp.add_addr_timeout');
    setSysctlRoot(roRoot);
    const k = openNamespace(n);
    expect((await k.readLive({ mptcp: true })).mptcp.addAddrTimeout).toBe(Number(before));
    let err: unknown;
    try {
      k.writeMptcpSysctl('addAddrTimeout', Number(before) + 1);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(KernelError);
    expect((err as KernelError).code).toBe('EROFS');
    expect((err as KernelError).netns).toBe(n);
    expect(nsSysctl(n, 'net.mptcp.add_addr_timeout')).toBe(before);
    closeNamespace(n);
  });
});

describe('--sysctl-root on the command line', () => {
  it('apply writes through the given root and leaves the host alone', async () => {
    const n = ns();
    const hostStale = hostSysctl('net.mptcp.stale_loss_cnt');
    const value = hostStale === '11' ? 12 : 11;
    const cfg = join(work, 'apply.yaml');
    writeFileSync(cfg, `version: 1\nnamespaces:\n  - netns: ${n}\n    mptcp: { staleLossCnt: ${value} }\n`);
    const t = captureIO({ env: { NODE_NAME: 'n1' } });
    const code = await main(['apply', '-f', cfg, '--netns', n, '--sysctl-root', root], t.io);
    expect(t.err()).toBe('');
    expect(code).toBe(0);
    expect(nsSysctl(n, 'net.mptcp.stale_loss_cnt')).toBe(String(value));
    expect(hostSysctl('net.mptcp.stale_loss_cnt')).toBe(hostStale);
    closeNamespace(n);
  });

  it('apply through a read-only root reports the refused write and exits non-zero', async () => {
    const n = ns();
    const before = nsSysctl(n, 'net.mptcp.stale_loss_cnt');
    const cfg = join(work, 'apply-ro.yaml');
    writeFileSync(cfg, `version: 1\nnamespaces:\n  - netns: ${n}\n    mptcp: { staleLossCnt: ${Number(before) + 1} }\n`);
    const t = captureIO({ env: { NODE_NAME: 'n1' } });
    const code = await main(['apply', '-f', cfg, '--netns', n, '--sysctl-root', roRoot], t.io);
    expect(code).not.toBe(0);
    expect(t.out() + t.err()).toContain('EROFS');
    expect(nsSysctl(n, 'net.mptcp.stale_loss_cnt')).toBe(before);
    closeNamespace(n);
  });

  it('refuses a root that is relative, missing, without net/ or not procfs: exit 1, no stack trace', async () => {
    const plain = join(work, 'plain');
    mkdirSync(join(plain, 'net'), { recursive: true });
    const empty = join(work, 'empty');
    mkdirSync(empty, { recursive: true });
    const cases: Array<[string, RegExp]> = [
      ['proc/sys', /must be an absolute path/],
      [join(work, 'missing'), /cannot be read \(ENOENT\)/],
      [empty, /has no net\/ directory/],
      [plain, /is not procfs/],
    ];
    for (const [dir, why] of cases) {
      for (const cmd of [['show'], ['doctor'], ['plan', '-f', join(work, 'apply.yaml')]]) {
        const t = captureIO();
        expect(await main([...cmd, '--sysctl-root', dir], t.io), `${cmd[0]} ${dir}`).toBe(1);
        expect(t.err()).toMatch(/^error: --sysctl-root: sysctl root /);
        expect(t.err()).toMatch(why);
        expect(t.err()).not.toMatch(/\n\s+at /);
      }
    }
    // Nothing was written in the plain directory that claimed to be net/.
    expect(readdirSync(join(plain, 'net'))).toEqual([]);
  });

  it('every command that touches sysctls takes --sysctl-root, default /proc/sys', async () => {
    for (const cmd of ['show', 'plan', 'apply', 'watch', 'doctor']) {
      const t = captureIO();
      expect(await main([cmd, '--help'], t.io)).toBe(0);
      expect(t.out(), cmd).toMatch(/--sysctl-root <dir>[\s\S]*\(default: "\/proc\/sys"\)/);
    }
    const t = captureIO();
    expect(await main(['validate', '--help'], t.io)).toBe(0);
    expect(t.out()).not.toContain('--sysctl-root');
  });
});

describe('as the DaemonSet runs it: not privileged, only NET_ADMIN and SYS_ADMIN (built bin)', () => {
  // A private mount namespace whose own /proc/sys is read-only, as the runtime
  // makes it (readonlyPaths), then only the two capabilities and no_new_privs
  // (allowPrivilegeEscalation: false). Not simulated: the seccomp profile.
  const CAPS = ['--bounding-set=-all,+net_admin,+sys_admin', '--inh-caps=-all', '--no-new-privs'];
  function inPod(argv: string[]) {
    const script = 'mount --bind /proc/sys /proc/sys && mount -o remount,bind,ro /proc/sys && exec "$@"';
    const r = spawnSync('unshare', ['--mount', '--propagation', 'private', '--', 'sh', '-c', script, 'sh', 'setpriv', ...CAPS, ...argv], {
      encoding: 'utf8',
      cwd: '/',
      env: { PATH: process.env.PATH, NODE_NAME: 'n1' },
    });
    return { code: r.status, out: r.stdout, err: r.stderr };
  }
  let bin: string;
  beforeAll(() => {
    bin = ensureBuilt();
  }, 300_000);

  it('the simulated pod has exactly CAP_NET_ADMIN and CAP_SYS_ADMIN and a read-only /proc/sys', () => {
    const r = inPod(['sh', '-c', 'grep -E "^(CapEff|NoNewPrivs)" /proc/self/status; grep " /proc/sys " /proc/self/mounts']);
    expect(r.code, r.err).toBe(0);
    // Bits 12 (NET_ADMIN) and 21 (SYS_ADMIN).
    expect(r.out).toMatch(/^CapEff:\s+0000000000201000$/m);
    expect(r.out).toMatch(/^NoNewPrivs:\s+1$/m);
    expect(r.out).toMatch(/ \/proc\/sys proc ro,/);
  });

  it('apply with --sysctl-root converges another namespace (setns, netlink, sysctls); without it the sysctl write fails with EROFS', () => {
    const n = ns();
    const before = nsSysctl(n, 'net.mptcp.stale_loss_cnt');
    const value = before === '13' ? 14 : 13;
    const cfg = join(work, 'pod.yaml');
    writeFileSync(
      cfg,
      `version: 1\nnamespaces:\n  - netns: ${n}\n    limits: { subflows: 3 }\n    endpoints:\n      - { address: 192.0.2.61, flags: [signal] }\n    mptcp: { staleLossCnt: ${value} }\n`,
    );
    const apply = (extra: string[]) => inPod([process.execPath, bin, 'apply', '-f', cfg, '--netns', n, ...extra]);

    const refused = apply([]);
    expect(refused.code).toBe(1);
    expect(refused.out + refused.err).toMatch(/EROFS/);
    expect(refused.out + refused.err).not.toMatch(/\n\s+at /);
    expect(nsSysctl(n, 'net.mptcp.stale_loss_cnt')).toBe(before);

    const ok = apply(['--sysctl-root', root]);
    expect(ok.code, ok.out + ok.err).toBe(0);
    expect(nsSysctl(n, 'net.mptcp.stale_loss_cnt')).toBe(String(value));
    expect(ipLimits(n).subflows).toBe(3);
    expect(ipEndpoints(n)).toEqual([expect.objectContaining({ address: '192.0.2.61', signal: true })]);
  });
});
