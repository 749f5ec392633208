// Faults on the real kernel while the reconciler works: a namespace or an
// interface deleted in the middle of a pass (exactly between two operations, via
// the apply engine's beforeOperation seam), an event flood overflowing the
// daemon's rtnetlink socket, the config file removed or made unreadable while
// watching, a stop request between the halves of a replace. For each: no crash,
// the namespace ends converged or reported with the reason, and a second,
// undeclared namespace stays byte-identical per iproute2. (Races between plan
// and apply are in test/apply-reconcile.test.ts; see docs/security.md.)
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, renameSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { reconcileAll } from '../src/apply/reconcile.js';
import type { DesiredNamespace, Operation } from '../src/core/model.js';
import { realDeps } from '../src/daemon/deps.js';
import { startDaemon, type Daemon, type DaemonDeps } from '../src/daemon/daemon.js';
import { createLogger } from '../src/log.js';
import { closeNamespace, openNamespace } from '../src/kernel/namespace.js';
import { netnsIdentity } from '../src/kernel/netns.js';
import { daemonTestScope, eventually, tempDir } from './helpers/daemon.js';
import { nsState } from './helpers/hardening.js';
import { ip, ipEndpoints, ipLimits, requireRoot, veth } from './helpers/netns.js';
import { ensureBuilt } from './helpers/build.js';

requireRoot();
const scope = daemonTestScope('hf');
const { configFile, start } = scope;
let bystander: string;
let bystanderBefore: string;

const ns = (prefix = 'hf'): string => scope.netns(prefix);
/** The real daemon deps with a hook before each operation of every pass. */
function depsWithHook(hook: (netns: string, op: Operation, i: number) => void | Promise<void>): DaemonDeps {
  const real = realDeps();
  return realDeps({
    reconcile: (k, d, o) => real.reconcile(k, d, { ...o, beforeOperation: (op: Operation, i: number) => hook(d.netns, op, i) } as typeof o),
  });
}
function desired(netns: string, over: Partial<DesiredNamespace>): DesiredNamespace {
  return { netns, mptcp: {}, limits: {}, endpoints: undefined, rpFilter: {}, prune: true, conflicts: 'fail', ...over };
}
const addresses = (n: string) => ipEndpoints(n).map((e) => e.address).sort();

beforeAll(() => {
  bystander = ns('hfb');
  ip('-n', bystander, 'mptcp', 'endpoint', 'add', '203.0.113.250', 'signal');
  bystanderBefore = nsState(bystander);
});
afterEach(async () => {
  await scope.stopDaemons();
  // Nothing any fault did may reach a namespace no config named.
  expect(nsState(bystander)).toBe(bystanderBefore);
});
afterAll(() => {
  for (const n of scope.namespaces()) closeNamespace(n);
  scope.cleanup();
});

describe('a namespace deleted in the middle of a pass', () => {
  it('apply: the pass ends with a report saying the namespace went away, not "converged"', async () => {
    const a = ns();
    const r = await reconcileAll(
      [desired(a, { limits: { subflows: 4 }, endpoints: [{ address: '192.0.2.1', flags: ['signal'] }, { address: '198.51.100.1', flags: ['subflow'] }] })],
      {
        mode: 'enforce',
        existing: [a],
        openNamespace: (n) => openNamespace(n),
        identityOf: (n) => netnsIdentity(n),
        beforeOperation: (_op, i) => {
          if (i === 1) ip('netns', 'del', a);
        },
      },
    );
    expect(r).toHaveLength(1);
    expect(r[0]!.converged).toBe(false);
    expect(r[0]!.errors.map((e) => e.message)).toEqual([expect.stringMatching(new RegExp(`netns ${a}: deleted during this pass`))]);
    expect(ip('netns', 'list')).not.toContain(a);
  });

  it('watch: the daemon keeps running, drops the namespace, and configures it when it is re-created', async () => {
    const a = ns();
    let deleted = false;
    const file = configFile(`version: 1
namespaces:
  - netns: ${a}
    limits: { subflows: 4 }
    endpoints:
      - { address: 192.0.2.1, flags: [signal] }
      - { address: 198.51.100.1, flags: [subflow] }
`);
    const deps = depsWithHook((netns, _op, i) => {
      if (netns === a && i === 1 && !deleted) {
        deleted = true;
        ip('netns', 'del', a);
      }
    });
    const d = await start(file, { deps, resyncMs: 200 });
    expect(deleted).toBe(true);
    await eventually('namespace dropped', () => !(a in d.daemon.status().namespaces));
    expect((await fetch(`${d.url}/healthz`)).status).toBe(200);
    ip('netns', 'add', a);
    await eventually('re-created namespace converged', () => d.daemon.status().namespaces[a]?.converged === true);
    expect(addresses(a)).toEqual(['192.0.2.1', '198.51.100.1']);
    expect(ipLimits(a).subflows).toBe(4);
  });
});

describe('an interface deleted in the middle of a pass', () => {
  it('apply: the pass reports the interface as missing, the rest is applied, nothing else is touched', async () => {
    const a = ns();
    veth(a, 'v0', undefined, 'v0p');
    ip('-n', a, 'link', 'set', 'v0', 'up');
    ip('-n', a, 'link', 'set', 'v0p', 'up'); // carrier: watch withdraws endpoints of a link without it
    ip('-n', a, 'addr', 'add', '198.51.100.20/24', 'dev', 'v0');
    const want = desired(a, {
      limits: { subflows: 3 },
      endpoints: [
        { dev: 'v0', family: 'ipv4', flags: ['subflow'] },
        { address: '192.0.2.20', flags: ['signal'] },
      ],
      rpFilter: { v0: 'loose' },
    });
    const all = { mode: 'enforce' as const, existing: [a], openNamespace: (n: string) => openNamespace(n), identityOf: (n: string) => netnsIdentity(n) };
    const [r] = await reconcileAll([want], {
      ...all,
      beforeOperation: (_op, i) => {
        if (i === 0) ip('-n', a, 'link', 'del', 'v0');
      },
    });
    // Reported with the reason; the independent operations still ran.
    expect(r!.converged).toBe(false);
    expect(r!.errors).toContainEqual(expect.objectContaining({ errno: 'ENODEV', message: expect.stringContaining('v0') }));
    expect(ipLimits(a).subflows).toBe(3);
    expect(addresses(a)).toContain('192.0.2.20');
    // The next pass (watch reacts to the link event with one) cleans up what was planned for the gone interface.
    const [again] = await reconcileAll([want], all);
    expect(again!.errors).toEqual([]);
    expect(again!.pending.map((p) => p.what).join()).toMatch(/v0/);
    expect(addresses(a)).toEqual(['192.0.2.20']);
  });
});

describe('a flood of address events while watching', () => {
  it('overflows the event socket, re-reads the namespace, converges, and still reacts afterwards', async () => {
    const a = ns();
    veth(a, 'v0', undefined, 'v0p');
    ip('-n', a, 'link', 'set', 'v0', 'up');
    ip('-n', a, 'link', 'set', 'v0p', 'up'); // carrier: watch withdraws endpoints of a link without it
    const file = configFile(`version: 1
namespaces:
  - netns: ${a}
    endpoints:
      - { dev: v0, family: ipv4, flags: [subflow] }
`);
    // Only events and overflows drive passes here: no resync within the test.
    const d = await start(file, { resyncMs: 3_600_000 });
    expect(ipEndpoints(a)).toEqual([]);
    // Synchronous on purpose: the daemon's event loop cannot drain its socket while
    // ip runs, so ~8000 notifications meet a 1 MiB queue.
    const lines: string[] = [];
    for (let round = 0; round < 20; round++) {
      for (let i = 1; i <= 200; i++) lines.push(`addr add 198.51.100.${i}/32 dev v0`);
      for (let i = 1; i <= 200; i++) lines.push(`addr del 198.51.100.${i}/32 dev v0`);
    }
    lines.push('addr add 198.51.100.7/24 dev v0', 'addr add 203.0.113.9/24 dev v0');
    execFileSync('ip', ['-n', a, '-batch', '-'], { input: `${lines.join('\n')}\n` });
    await eventually('overflow seen', () => d.lines().some((l) => /notifications lost/.test(String(l.msg))));
    await eventually('converged on the final addresses', () => addresses(a).join() === '198.51.100.7,203.0.113.9' && d.daemon.status().namespaces[a]?.converged, 10_000);
    // Still listening: a later single change is seen at once.
    ip('-n', a, 'addr', 'add', '192.0.2.77/24', 'dev', 'v0');
    await eventually('reacts after the flood', () => addresses(a).join() === '192.0.2.77,198.51.100.7,203.0.113.9');
    expect((await fetch(`${d.url}/healthz`)).status).toBe(200);
  });
});

describe('the config file removed or unreadable while watching', () => {
  it.each([
    ['removed', (f: string) => unlinkSync(f)],
    ['replaced by a directory', (f: string) => {
      unlinkSync(f);
      mkdirSync(f);
    }],
    ['replaced by a dangling symlink', (f: string) => {
      unlinkSync(f);
      symlinkSync(join(f, '..', 'nowhere.yaml'), f);
    }],
  ])('%s: keeps enforcing the last good config, reports it, recovers when the file is back', async (_what, breakIt) => {
    const a = ns();
    const good = `version: 1
namespaces:
  - netns: ${a}
    limits: { subflows: 4 }
    endpoints:
      - { address: 192.0.2.30, flags: [signal] }
`;
    const file = configFile(good);
    const d = await start(file, { resyncMs: 200 });
    expect(ipLimits(a).subflows).toBe(4);

    breakIt(file);
    await eventually('reported invalid', () => d.daemon.status().config.valid === false);
    expect(d.daemon.status().config.error).toMatch(/mptcp\.yaml/);
    expect(d.lines().some((l) => l.msg === 'invalid config ignored; the last good config stays enforced')).toBe(true);
    // Drift made by hand is still repaired from the last good config.
    ip('-n', a, 'mptcp', 'limits', 'set', 'subflows', '7');
    ip('-n', a, 'mptcp', 'endpoint', 'flush');
    await eventually('last good config enforced', () => ipLimits(a).subflows === 4 && addresses(a).join() === '192.0.2.30');
    expect((await fetch(`${d.url}/healthz`)).status).toBe(200);

    rmSync(file, { recursive: true, force: true });
    writeFileSync(`${file}.new`, good.replace('subflows: 4', 'subflows: 5'));
    renameSync(`${file}.new`, file);
    await eventually('valid again and applied', () => d.daemon.status().config.valid && ipLimits(a).subflows === 5);
  });
});

describe('a stop request (what SIGTERM does) between the halves of a replace', () => {
  it('finishes the replace, starts nothing after it, and leaves the rest as it was', async () => {
    const a = ns();
    ip('-n', a, 'mptcp', 'endpoint', 'add', '192.0.2.40', 'subflow');
    const file = configFile(`version: 1
namespaces:
  - netns: ${a}
    endpoints:
      - { address: 192.0.2.40, flags: [signal] }
      - { address: 198.51.100.40, flags: [subflow] }
`);
    const ops: string[] = [];
    const deps = depsWithHook((_netns, op) => {
      ops.push(`${op.op} ${'endpoint' in op ? op.endpoint.address : ''}`);
      if (op.op === 'delete') void daemon.stop();
    });
    const daemon: Daemon = startDaemon({ file, node: 'test-node', mode: 'enforce', resyncMs: 60_000, logger: createLogger({ level: 'fatal', destination: { write: () => {} } }), deps, debounceMs: 20 });
    await daemon.done;
    // Both halves of the replace ran; the independent add planned after it did not start.
    expect(ops).toEqual(['delete 192.0.2.40', 'add 192.0.2.40']);
    expect(ipEndpoints(a)).toEqual([expect.objectContaining({ address: '192.0.2.40', signal: true })]);
    expect(ipEndpoints(a)[0]!.subflow).toBeUndefined();
  });
});

describe('an unprivileged run (built bin as user nobody)', () => {
  const root = join(import.meta.dirname, '..');
  const bin = join(root, 'dist/src/cli/bin.js');
  beforeAll(() => void ensureBuilt(), 120_000);

  const nobody = ['setpriv', '--reuid', '65534', '--regid', '65534', '--clear-groups', process.execPath, bin];
  function readable(text: string): string {
    const t = tempDir('hard-priv');
    scope.onCleanup(t.cleanup);
    chmodSync(t.dir, 0o755);
    const f = join(t.dir, 'c.yaml');
    writeFileSync(f, text, { mode: 0o644 });
    return f;
  }
  function run(argv: string[], inNetns?: string) {
    const cmd = inNetns ? ['ip', 'netns', 'exec', inNetns, ...argv] : argv;
    const r = spawnSync(cmd[0]!, cmd.slice(1), { encoding: 'utf8', cwd: '/', env: { PATH: process.env.PATH, NODE_NAME: 'n1' } });
    return { code: r.status, all: `${r.stdout}${r.stderr}` };
  }

  it('apply into another namespace: exit 1 naming CAP_SYS_ADMIN, no stack trace, nothing changed', () => {
    const a = ns();
    const before = nsState(a);
    const f = readable(`version: 1\nnamespaces:\n  - netns: ${a}\n    limits: { subflows: 5 }\n    endpoints:\n      - { address: 192.0.2.50, flags: [signal] }\n`);
    const r = run([...nobody, 'apply', '-f', f]);
    expect(r.code).toBe(1);
    expect(r.all).toMatch(/EPERM.*CAP_SYS_ADMIN/);
    expect(r.all).not.toMatch(/\n\s+at /);
    expect(nsState(a)).toBe(before);
  });

  it('apply in its own namespace: every write refused naming CAP_NET_ADMIN, exit 1, nothing changed; reads work', () => {
    // `host` is the namespace the process runs in: here the test's own, never the real host.
    const a = ns();
    const before = nsState(a);
    const f = readable(`version: 1
namespaces:
  - netns: host
    mptcp: { enabled: false }
    limits: { subflows: 5 }
    endpoints:
      - { address: 192.0.2.51, flags: [signal] }
    rpFilter: { lo: loose }
`);
    const r = run([...nobody, 'apply', '-f', f], a);
    expect(r.code).toBe(1);
    expect(r.all).not.toMatch(/\n\s+at /);
    const refusals = r.all.split('\n').filter((l) => /FAILED: /.test(l));
    expect(refusals).toHaveLength(4);
    for (const l of refusals) expect(l).toMatch(/(EPERM|EACCES) \(.*needs CAP_NET_ADMIN/);
    expect(nsState(a)).toBe(before);

    const show = run([...nobody, 'show', '--netns', 'host', '-o', 'json'], a);
    expect(show.code).toBe(0);
    expect(JSON.parse(show.all)).toMatchObject({ namespaces: [expect.objectContaining({ netns: 'host' })] });
  });
});
