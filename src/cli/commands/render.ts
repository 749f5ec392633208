// render -f PATH [--node N]: the effective desired state for one node, as a
// config file (valid input that renders to itself).
import { formatDiagnostics, loadConfig, nodeName, renderConfig } from '../../config/index.js';
import type { CliIO } from '../io.js';
import { UsageError } from '../io.js';
import { useColor } from './validate.js';

export async function run(opts: Record<string, unknown>, io: CliIO): Promise<number> {
  const file = opts.file;
  if (typeof file !== 'string' || file === '') throw new UsageError('-f PATH is required');
  const node = nodeName({ node: typeof opts.node === 'string' ? opts.node : undefined }, io.env);
  const res = await loadConfig(file, { cwd: io.cwd, node, once: true });
  const color = useColor(io, io.stderr);
  if (!res.ok) {
    io.stderr.write(formatDiagnostics(res.diagnostics, { color }));
    io.stderr.write(`${file}: invalid; nothing rendered\n`);
    return 1;
  }
  if (res.warnings.length) io.stderr.write(formatDiagnostics(res.warnings, { color }));
  io.stdout.write(renderConfig(res.config, node));
  return 0;
}
