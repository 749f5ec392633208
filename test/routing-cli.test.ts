// Source routing through the command line on the real kernel (main(argv, io)):
// validate refuses reserved and shared tables with file:line:column; plan shows
// the routing diff (text and JSON) and writes nothing; apply writes it and a
// second apply finds nothing to do; show prints the tool's tables back as
// `sourceRouting`; a route the kernel refuses is reported with its operation,
// namespace and errno while the rest of the pass is still written; doctor
// flags an endpoint whose joins would leave by another interface, and stops
// once the table and rule exist; plan --live plans routing from a saved
// snapshot. iproute2 is the oracle.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { main } from '../src/cli/main.js';
import { closeAllNamespaces } from '../src/kernel/namespace.js';
import { captureIO } from './helpers/io.js';
import { ip, namespacesFor, veth } from './helpers/netns.js';

const dir = mkdtempSync(join(tmpdir(), 'mr-rtA-cli-'));
const makeNs = namespacesFor('rtA', () => closeAllNamespaces());
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function cli(...argv: string[]) {
  const t = captureIO({ env: { NODE_NAME: 'test-node' }, cwd: dir });
  const code = await main(argv, t.io);
  return { code, out: t.out(), err: t.err() };
}

let fileNo = 0;
function config(text: string): string {
  const p = join(dir, `c${fileNo++}.yaml`);
  writeFileSync(p, text);
  return p;
}

/** c1 198.51.100.2/24 (the default route, via 198.51.100.1) and c2 203.0.113.2/24, veth peers kept inside. */
function client(): string {
  const ns = makeNs();
  for (const l of ['c1', 'c2']) {
    veth(ns, l, undefined, `${l}p`);
    ip('-n', ns, 'link', 'set', `${l}p`, 'up');
    ip('-n', ns, 'link', 'set', l, 'up');
  }
  ip('-n', ns, 'addr', 'add', '198.51.100.2/24', 'dev', 'c1');
  ip('-n', ns, 'addr', 'add', '203.0.113.2/24', 'dev', 'c2');
  ip('-n', ns, 'route', 'add', 'default', 'via', '198.51.100.1', 'dev', 'c1');
  return ns;
}

const entry = (ns: string, routing: string[]) =>
  ['version: 1', 'namespaces:', `  - netns: ${ns}`, '    endpoints:', '      - dev: c2', '        flags: [subflow]', '    sourceRouting:', ...routing, ''].join('\n');

const state = (ns: string) => [ip('-n', ns, 'rule', 'show'), ip('-n', ns, '-4', 'route', 'show', 'table', 'all'), ip('-n', ns, '-6', 'rule', 'show'), ip('-n', ns, 'mptcp', 'endpoint', 'show')].join('\n');

describe('source routing on the command line', () => {
  it('validate refuses a reserved table and a table shared by two interfaces, with file:line:column', async () => {
    const reserved = config(entry('x', ['      c1: { table: 254 }']));
    const r1 = await cli('validate', '-f', reserved);
    expect(r1.code).not.toBe(0);
    expect(r1.err).toContain(`${reserved}:8:`);
    expect(r1.err).toMatch(/routing table 254 is the kernel's `main` table/);
    const shared = config(entry('x', ['      c1: { table: 101 }', '      c2: { table: 101 }']));
    const r2 = await cli('validate', '-f', shared);
    expect(r2.code).not.toBe(0);
    expect(r2.err).toContain(`${shared}:9:`);
    expect(r2.err).toMatch(/routing table 101 of c2 is already the table of c1/);
  });

  it('plan shows the routing diff and writes nothing; apply writes it; a second apply has nothing to do; show prints it back', async () => {
    const ns = client();
    const file = config(entry(ns, ['      c2: { table: 102, gateway: 203.0.113.1 }']));
    const before = state(ns);

    expect((await cli('plan', '-f', file, '--detailed-exitcode')).code).toBe(2);
    const plan = await cli('plan', '-f', file);
    expect(plan.code).toBe(0);
    expect(plan.out).toContain('+sourceRouting:');
    expect(plan.out).toContain('route add 203.0.113.0/24 dev c2 table 102');
    expect(plan.out).toContain('route add default via 203.0.113.1 dev c2 table 102');
    expect(plan.out).toContain('rule add from 203.0.113.2 lookup 102 pref 10000');
    const json = JSON.parse((await cli('plan', '-f', file, '-o', 'json')).out) as { namespaces: { routing: { op: string; when: string; text: string }[] }[] };
    expect(json.namespaces[0]!.routing.map((o) => [o.op, o.when])).toEqual([
      ['add-route', 'before'],
      ['add-route', 'before'],
      ['add-rule', 'before'],
    ]);
    expect(state(ns)).toBe(before);

    const apply = await cli('apply', '-f', file);
    expect(apply.code, apply.out + apply.err).toBe(0);
    expect(ip('-n', ns, 'rule', 'show')).toMatch(/^10000:\s+from 203\.0\.113\.2 lookup 102 proto 213\s*$/m);
    expect(ip('-n', ns, 'route', 'show', 'table', '102')).toMatch(/default via 203\.0\.113\.1 dev c2 proto 213/);
    // The main table is not the tool's: its default route stays as it was.
    expect(ip('-n', ns, 'route', 'show', 'default')).toMatch(/default via 198\.51\.100\.1 dev c1/);

    const again = await cli('apply', '-f', file, '-o', 'json');
    const doc = JSON.parse(again.out) as { namespaces: { operations: unknown[]; routing?: unknown[]; converged: boolean }[] };
    expect(doc.namespaces[0]).toMatchObject({ operations: [], converged: true });
    expect(doc.namespaces[0]!.routing).toBeUndefined();
    expect((await cli('plan', '-f', file, '--detailed-exitcode')).code).toBe(0);

    const show = await cli('show', '--netns', ns);
    expect(show.out).toMatch(/sourceRouting:\n\s+c2:\n\s+table: 102\n\s+gateway: 203\.0\.113\.1\n/);
  });

  it('plan --live plans source routing from a saved show -o json, without the kernel', async () => {
    const ns = client();
    const snap = join(dir, `snap${fileNo++}.json`);
    const show = await cli('show', '--netns', ns, '-o', 'json');
    expect(show.code).toBe(0);
    writeFileSync(snap, show.out);
    const file = config(entry(ns, ['      c2: { table: 102, gateway: 203.0.113.1 }']));
    const plan = await cli('plan', '-f', file, '--live', snap);
    expect(plan.code, plan.err).toBe(0);
    expect(plan.out).toContain('rule add from 203.0.113.2 lookup 102 pref 10000');
    expect(plan.out).toContain('route add default via 203.0.113.1 dev c2 table 102');
    expect(ip('-n', ns, 'rule', 'show')).not.toMatch(/proto 213/);
  });

  it('IPv6: the prefix, a default route via a link-local gateway and the rule, converged on the second apply', async () => {
    const ns = client();
    ip('-n', ns, 'addr', 'add', '2001:db8:2::2/64', 'dev', 'c2', 'nodad');
    const file = config(entry(ns, ['      c2: { table: 102, gateway: 203.0.113.1, gateway6: "fe80::1" }']));
    const first = await cli('apply', '-f', file);
    expect(first.code, first.out + first.err).toBe(0);
    expect(ip('-n', ns, '-6', 'rule', 'show')).toMatch(/from 2001:db8:2::2 lookup 102 proto 213/);
    const v6 = ip('-n', ns, '-6', 'route', 'show', 'table', '102');
    expect(v6).toMatch(/2001:db8:2::\/64 dev c2 proto 213/);
    expect(v6).toMatch(/default via fe80::1 dev c2 proto 213/);
    expect((await cli('apply', '-f', file)).out).toContain('no changes');
  });

  it('a route the kernel refuses is reported (operation, namespace, errno); the rest of the pass is written', async () => {
    const ns = client();
    // 192.0.2.1 is on no prefix of c2: the kernel refuses a default route via it.
    const file = config(entry(ns, ['      c2: { table: 102, gateway: 192.0.2.1 }']));
    const r = await cli('apply', '-f', file, '-o', 'json');
    expect(r.code).toBe(1);
    const doc = JSON.parse(r.out) as { namespaces: { errors: { message: string; errno?: string; op?: string }[]; routing: { op: string; result: string }[] }[] };
    const n = doc.namespaces[0]!;
    const err = n.errors.find((e) => e.op?.startsWith('RTM_NEWROUTE default via 192.0.2.1'))!;
    expect(err.message).toContain(`in netns ${ns}`);
    expect(err.errno).toMatch(/^E[A-Z]+$/);
    expect(n.routing.map((o) => [o.op, o.result])).toEqual([
      ['add-route', 'ok'],
      ['add-route', 'failed'],
      ['add-rule', 'ok'],
    ]);
    expect(ip('-n', ns, 'rule', 'show')).toMatch(/from 203\.0\.113\.2 lookup 102 proto 213/);
    expect(ip('-n', ns, 'mptcp', 'endpoint', 'show')).toMatch(/203\.0\.113\.2 id \d+ subflow dev c2/);
  });

  it('doctor flags an endpoint whose joins leave by another interface, naming the namespace and sourceRouting; not once it is applied', async () => {
    const ns = client();
    ip('-n', ns, 'mptcp', 'endpoint', 'add', '203.0.113.2', 'dev', 'c2', 'subflow');
    type Doc = { namespaces: { netns: string; findings: { code: string; subject: string; message: string; fix?: string }[] }[] };
    const doctor = async () => (JSON.parse((await cli('doctor', '--netns', ns, '-o', 'json')).out) as Doc).namespaces[0]!.findings.filter((f) => f.code === 'MPTCP027');
    const found = await doctor();
    expect(found.map((f) => f.subject)).toEqual(['endpoint 203.0.113.2']);
    expect(found[0]!.message).toContain('leave by c1');
    expect(found[0]!.fix).toContain(`in netns ${ns}`);
    expect(found[0]!.fix).toMatch(/sourceRouting: \{ c2: \{ table: \d+, gateway: GATEWAY \} \}/);

    const apply = await cli('apply', '-f', config(entry(ns, ['      c2: { table: 102, gateway: 203.0.113.1 }'])));
    expect(apply.code, apply.out + apply.err).toBe(0);
    expect(await doctor()).toEqual([]);
  });
});
