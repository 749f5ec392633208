// `demo`: the whole cycle on two throwaway namespaces, never the host's MPTCP
// config. Build the namespaces and a veth link, write the demo config, plan,
// apply, drift by hand (our own netlink client playing "someone else"), plan
// again, repair, show, clean up — also when interrupted.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createNetns, createVethPair, deleteNetns } from '../../kernel/netns-admin.js';
import type { CliIO } from '../io.js';
import { main } from '../main.js';

function findTemplate(): string {
  // src/cli/commands (vitest) or dist/src/cli/commands (built): walk up to the package root.
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const p = join(dir, 'examples', 'demo.yaml');
    if (existsSync(p)) return p;
    dir = dirname(dir);
  }
  throw new Error('examples/demo.yaml not found next to the installed package');
}

function quote(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}

export async function run(opts: { keep?: boolean }, io: CliIO): Promise<number> {
  if (process.getuid?.() !== 0) {
    io.stderr.write('error: the demo creates network namespaces and needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN); run it with sudo\n');
    return 1;
  }
  const out = (s = '') => void io.stdout.write(`${s}\n`);
  const step = (s: string) => out(`\n== ${s}`);

  const tag = randomBytes(3).toString('hex');
  const srv = `mrdemo-${tag}-srv`;
  const cli = `mrdemo-${tag}-cli`;
  const glob = `mrdemo-${tag}-*`;
  const created: string[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'mrdemo-'));
  const file = join(dir, 'demo.yaml');

  let cleaned = false;
  const cleanup = () => {
    if (cleaned) return;
    cleaned = true;
    if (!opts.keep) for (const n of created.splice(0)) deleteNetns(n);
    rmSync(dir, { recursive: true, force: true });
  };
  // Interrupted: remove the namespaces before dying, as the finally block would.
  const onSignal = (sig: NodeJS.Signals) => {
    cleanup();
    io.stderr.write(`\ndemo interrupted by ${sig}; its namespaces were removed\n`);
    process.exit(sig === 'SIGINT' ? 130 : 143);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  const cmd = async (...argv: string[]) => {
    out(`$ mptcp-reconciler ${argv.map(quote).join(' ')}`);
    const code = await main(argv, io);
    out(`(exit ${code})`);
    return code;
  };

  try {
    step(`1. Two throwaway namespaces joined by a veth link (the host namespace is never touched)`);
    createNetns(srv);
    created.push(srv);
    createNetns(cli);
    created.push(cli);
    await createVethPair(
      { netns: srv, ifname: 'veth-srv', addresses: ['192.0.2.2/24', '198.51.100.2/24'] },
      { netns: cli, ifname: 'veth-cli', addresses: ['192.0.2.1/24', '198.51.100.1/24'] },
    );
    out(`${srv}: veth-srv 192.0.2.2/24 198.51.100.2/24`);
    out(`${cli}: veth-cli 192.0.2.1/24 198.51.100.1/24`);

    step('2. The desired state (examples/demo.yaml with the namespace names filled in)');
    const yaml = readFileSync(findTemplate(), 'utf8')
      .replace(/^(\s*- netns:) demo-server$/m, `$1 ${srv}`)
      .replace(/^(\s*- netns:) demo-client$/m, `$1 ${cli}`);
    writeFileSync(file, yaml);
    out(yaml.trimEnd());
    if ((await cmd('validate', '-f', file)) !== 0) return 1;

    step('3. What would change');
    await cmd('plan', '-f', file, '--netns', glob);

    step('4. Apply, then re-read and verify');
    if ((await cmd('apply', '-f', file, '--netns', glob)) !== 0) return 1;

    step('5. Someone else changes things by hand');
    const { openNamespace, closeNamespace } = await import('../../kernel/namespace.js');
    const k = openNamespace(cli);
    try {
      const eps = await k.dumpEndpoints();
      const ep = eps.find((e) => e.address === '198.51.100.1');
      if (ep) {
        await k.deleteEndpoint(ep.id);
        out(`deleted endpoint id ${ep.id} in ${cli}   (what \`ip -n ${cli} mptcp endpoint delete id ${ep.id}\` does)`);
      }
      await k.setLimits({ subflows: 8 });
      out(`set subflows to 8 in ${cli}            (what \`ip -n ${cli} mptcp limits set subflows 8\` does)`);
    } finally {
      closeNamespace(cli);
    }
    const ks = openNamespace(srv);
    try {
      const ep = (await ks.dumpEndpoints()).find((e) => e.address === '198.51.100.2' && e.port === undefined);
      if (ep) {
        await ks.setEndpointFlags(ep.id, { backup: true, fullmesh: false });
        out(`set backup on endpoint id ${ep.id} in ${srv}   (what \`ip -n ${srv} mptcp endpoint change id ${ep.id} backup\` does)`);
      }
    } finally {
      closeNamespace(srv);
    }

    step('6. The drift, as plan sees it (exit 2: changes pending)');
    await cmd('plan', '-f', file, '--netns', glob, '--detailed-exitcode');

    step('7. Repair it');
    if ((await cmd('apply', '-f', file, '--netns', glob)) !== 0) return 1;
    const again = await cmd('plan', '-f', file, '--netns', glob, '--detailed-exitcode');

    step('8. The live state, in the config format');
    await cmd('show', '--netns', glob);

    step(opts.keep ? `Done; kept ${srv} and ${cli} (--keep): delete them with \`ip netns delete\`` : 'Done; removing the demo namespaces');
    return again === 0 ? 0 : 1;
  } catch (err) {
    io.stderr.write(`demo failed: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    cleanup();
  }
}
