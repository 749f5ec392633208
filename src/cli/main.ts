// Argument parsing for every command (README.md#commands, the contract). Each command
// lives in commands/<name>.ts and is imported only when used, which keeps the
// start-up of a one-shot command short.
import { Command, CommanderError, Option } from 'commander';
import { release } from 'node:os';
import type { CliIO } from './io.js';
import { UsageError } from './io.js';
import { PACKAGE_NAME, packageVersion } from '../version.js';

export interface CommonOptions {
  file?: string;
  node?: string;
  netns?: string;
  output?: string;
}

const REQUIRED = '(required) ';

type Runner = (opts: Record<string, unknown>, io: CliIO) => Promise<number>;

async function load(name: string): Promise<Runner> {
  switch (name) {
    case 'validate':
      return (await import('./commands/validate.js')).run as Runner;
    case 'render':
      return (await import('./commands/render.js')).run as Runner;
    case 'show':
      return (await import('./commands/show.js')).run as Runner;
    case 'plan':
      return (await import('./commands/plan.js')).run as Runner;
    case 'apply':
      return (await import('./commands/apply.js')).run as Runner;
    case 'watch':
      return (await import('./commands/watch.js')).run as Runner;
    case 'doctor':
      return (await import('./commands/doctor.js')).run as Runner;
    case 'demo':
      return (await import('./commands/demo.js')).run as Runner;
    default:
      throw new UsageError(`unknown command ${name}`);
  }
}

function build(io: CliIO, chosen: { name?: string; opts?: Record<string, unknown> }): Command {
  const program = new Command('mptcp-reconciler')
    .description('Declarative reconciler for the Linux MPTCP path manager')
    .exitOverride()
    .configureOutput({
      writeOut: (s) => void io.stdout.write(s),
      writeErr: (s) => void io.stderr.write(s),
    })
    .showHelpAfterError('(run with --help for usage)')
    // One line a bug report or a fleet inventory can quote as is.
    .version(`${PACKAGE_NAME} ${packageVersion()} (node ${process.version}, kernel ${release()})`, '-V, --version', 'print the version');

  // `-f` is required, but checked here rather than with commander's
  // makeOptionMandatory: commander reports a missing mandatory option before an
  // unknown one, so a typo such as `--fle` would get "required option -f" instead
  // of "unknown option --fle (Did you mean --file?)".
  const pick =
    (name: string, needsFile = false) =>
    (opts: Record<string, unknown>, cmd: Command): void => {
      if (needsFile && opts.file === undefined) {
        cmd.error("error: required option '-f, --file <path>' not specified", { code: 'commander.missingMandatoryOptionValue' });
      }
      chosen.name = name;
      chosen.opts = opts;
    };
  const file = () => new Option('-f, --file <path>', `${REQUIRED}config file or directory of *.yaml/*.yml`);
  const node = () => new Option('--node <name>', 'node name (default: $NODE_NAME, else the hostname)');
  const netns = () => new Option('--netns <glob>', 'only namespaces whose name matches this glob');
  // A container's own /proc/sys is read-only; a read-write mount of the host's
  // /proc/sys/net elsewhere still acts on the namespace the process is in.
  const sysctlRoot = () =>
    new Option('--sysctl-root <dir>', 'directory holding net/ of /proc/sys (e.g. a mount of the host /proc/sys/net)').default('/proc/sys');

  program
    .command('validate')
    .description('check a config file or directory; exit 1 when invalid')
    .addOption(file())
    .addOption(node())
    .option('--strict', 'treat warnings as errors')
    .action(pick('validate', true));
  program
    .command('render')
    .description('print the effective desired state for a node')
    .addOption(file())
    .addOption(node())
    .action(pick('render', true));
  program
    .command('show')
    .description('print the live state in the config format')
    .addOption(netns())
    .addOption(new Option('-o, --output <format>', 'output format').choices(['yaml', 'json']).default('yaml'))
    .addOption(sysctlRoot())
    .action(pick('show'));
  program
    .command('plan')
    .description('show what apply would change')
    .addOption(file())
    .addOption(node())
    .addOption(netns())
    .option('--live <snapshot.json>', 'plan against a saved `show -o json` instead of the kernel')
    .addOption(new Option('-o, --output <format>', 'output format').choices(['text', 'json']).default('text'))
    .option('--detailed-exitcode', 'exit 2 when changes are pending')
    .option('--etc-root <dir>', 'host /etc for conflict detection (stopped managers; a running one is read through /proc/PID/root)', '/etc')
    .addOption(sysctlRoot())
    .action(pick('plan', true));
  program
    .command('apply')
    .description('make the live state match the config, then verify')
    .addOption(file())
    .addOption(node())
    .addOption(netns())
    .addOption(new Option('-o, --output <format>', 'output format').choices(['text', 'json']).default('text'))
    .option('--etc-root <dir>', 'host /etc for conflict detection (stopped managers; a running one is read through /proc/PID/root)', '/etc')
    .addOption(sysctlRoot())
    .action(pick('apply', true));
  program
    .command('watch')
    .description('keep every declared namespace converged')
    .addOption(file())
    .addOption(node())
    .option('--resync <duration>', 'full re-read interval', '5s')
    .option('--listen <addr:port>', 'HTTP address for /healthz /readyz /metrics /status', '127.0.0.1:9808')
    .addOption(new Option('--mode <mode>', 'enforce or only observe').choices(['enforce', 'observe']).default('enforce'))
    .addOption(
      new Option('--log-level <level>', 'log level')
        .choices(['trace', 'debug', 'info', 'warn', 'error', 'fatal'])
        .default('info'),
    )
    .option('--proc-root <dir>', 'host /proc for conflict detection', '/proc')
    .option('--etc-root <dir>', 'host /etc for conflict detection', '/etc')
    .addOption(sysctlRoot())
    .action(pick('watch', true));
  program
    .command('doctor')
    .description('check live state (and a config) for the path-manager pitfalls')
    .option('-f, --file <path>', 'config file or directory')
    .addOption(node())
    .addOption(netns())
    .addOption(new Option('-o, --output <format>', 'output format').choices(['text', 'json']).default('text'))
    .option('--proc-root <dir>', 'host /proc for conflict detection', '/proc')
    .option('--etc-root <dir>', 'host /etc for conflict detection', '/etc')
    .addOption(sysctlRoot())
    .action(pick('doctor'));
  program
    .command('demo')
    .description('run the whole cycle on throwaway namespaces (never the host config)')
    .option('--keep', 'do not delete the demo namespaces at the end')
    .action(pick('demo'));
  return program;
}

/**
 * Parses the command line; --help, --version and usage errors are answered here
 * (the exit code is returned). No side effect beyond writing to `io`, so the
 * start-up snapshot runs it at build time to have commander compiled.
 */
export async function parseCommandLine(
  argv: string[],
  io: CliIO,
): Promise<{ name: string; opts: Record<string, unknown> } | { code: number }> {
  const chosen: { name?: string; opts?: Record<string, unknown> } = {};
  const program = build(io, chosen);
  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version are not errors.
      return { code: err.exitCode === 0 ? 0 : 1 };
    }
    throw err;
  }
  if (!chosen.name) {
    io.stderr.write(program.helpInformation());
    return { code: 1 };
  }
  return { name: chosen.name, opts: chosen.opts ?? {} };
}

/** Runs the CLI; returns the exit code. Never throws for user errors. */
export async function main(argv: string[], io: CliIO): Promise<number> {
  const chosen = await parseCommandLine(argv, io);
  if ('code' in chosen) return chosen.code;
  try {
    if (typeof chosen.opts.sysctlRoot === 'string') {
      // Process-wide and set on every run, so one main() call cannot leak its root into the next.
      const { setSysctlRoot } = await import('../kernel/procfs.js');
      try {
        setSysctlRoot(chosen.opts.sysctlRoot);
      } catch (e) {
        throw new UsageError(`--sysctl-root: ${(e as Error).message}`);
      }
    }
    const run = await load(chosen.name);
    return await run(chosen.opts, io);
  } catch (err) {
    if (err instanceof UsageError) {
      io.stderr.write(`error: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
}
