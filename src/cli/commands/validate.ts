// validate -f PATH [--node NAME] [--strict]: exit 0 when valid (warnings on
// stderr), 1 when not, with every problem positioned. Without --node the merge
// rules are checked for every node the file names, so a fleet repo is checked
// as a whole in CI.
import { formatDiagnostics, loadConfig } from '../../config/index.js';
import type { CliIO } from '../io.js';
import { UsageError } from '../io.js';

export function useColor(io: CliIO, stream: CliIO['stdout']): boolean {
  return stream.isTTY === true && io.env.NO_COLOR === undefined;
}

export async function run(opts: Record<string, unknown>, io: CliIO): Promise<number> {
  const file = opts.file;
  if (typeof file !== 'string' || file === '') throw new UsageError('-f PATH is required');
  const node = typeof opts.node === 'string' ? opts.node : undefined;
  const res = await loadConfig(file, { cwd: io.cwd, node, once: true });
  const color = useColor(io, io.stderr);
  if (!res.ok) {
    io.stderr.write(formatDiagnostics(res.diagnostics, { color }));
    const errors = res.diagnostics.filter((d) => d.severity === 'error').length;
    io.stderr.write(`${file}: invalid (${errors} error${errors === 1 ? '' : 's'}); nothing would be applied\n`);
    return 1;
  }
  if (res.warnings.length) io.stderr.write(formatDiagnostics(res.warnings, { color }));
  const n = res.warnings.length;
  if (opts.strict === true && n > 0) {
    io.stderr.write(`${file}: ${n} warning${n === 1 ? '' : 's'}, which --strict treats as errors\n`);
    return 1;
  }
  io.stdout.write(
    `${file}: valid (${res.files.length} file${res.files.length === 1 ? '' : 's'}, ${res.config.namespaces.length} entr${res.config.namespaces.length === 1 ? 'y' : 'ies'}${n ? `, ${n} warning${n === 1 ? '' : 's'}` : ''})\n`,
  );
  return 0;
}
