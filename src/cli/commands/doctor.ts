// `doctor [-f PATH] [--netns GLOB] [-o text|json]`: the path-manager document's
// pitfalls checked on the live state of each namespace (and on a config with -f).
// Read-only. Exit 1 when any finding is an error.
import { formatDiagnostics, loadConfig, nodeName } from '../../config/index.js';
import { netnsPatternProblem, type Config } from '../../core/schema.js';
import { listNamespaces, selectNamespaces } from '../../kernel/netns.js';
import { formatText, toJson } from '../../doctor/report.js';
import { runDoctor } from '../../doctor/run.js';
import type { CliIO } from '../io.js';
import { UsageError } from '../io.js';

interface DoctorOptions {
  file?: string;
  node?: string;
  netns?: string;
  output?: 'text' | 'json';
  procRoot?: string;
  etcRoot?: string;
}

export async function run(opts: Record<string, unknown>, io: CliIO): Promise<number> {
  const o = opts as DoctorOptions;
  if (o.netns !== undefined) {
    const p = netnsPatternProblem(o.netns);
    if (p) throw new UsageError(`--netns "${o.netns}" ${p}`);
  }
  const node = nodeName(o, io.env);
  let config: Config | undefined;
  if (o.file !== undefined) {
    const loaded = await loadConfig(o.file, { node, cwd: io.cwd, once: true });
    if (!loaded.ok) {
      io.stderr.write(formatDiagnostics(loaded.diagnostics, { color: io.stderr.isTTY === true }));
      io.stderr.write(`error: ${o.file} is invalid; fix it (see \`validate -f ${o.file}\`) before doctor can compare it with the live state\n`);
      return 1;
    }
    config = loaded.config;
  }
  const allNames = listNamespaces();
  const names = selectNamespaces(o.netns, allNames);
  if (names.length === 0) {
    throw new UsageError(`no namespace matches --netns "${o.netns}" ("host" matches only itself)`);
  }
  const reports = await runDoctor({
    node,
    names,
    allNames,
    ...(o.netns !== undefined ? { pattern: o.netns } : {}),
    ...(config ? { config } : {}),
    procRoot: o.procRoot ?? '/proc',
    etcRoot: o.etcRoot ?? '/etc',
  });
  const json = toJson(node, reports);
  if (o.output === 'json') io.stdout.write(`${JSON.stringify(json, null, 2)}\n`);
  else io.stdout.write(formatText(node, reports, { color: io.stdout.isTTY === true }));
  return json.summary.errors > 0 ? 1 : 0;
}
