// doctor's two outputs: text grouped by namespace (severity first, evidence and
// fix on the lines below), and JSON for scripts and CI.
import type { KernelCapabilities } from '../core/model.js';
import { describeCapabilities } from '../kernel/capabilities.js';
import { summarize, type Finding } from './findings.js';
import type { NamespaceReport } from './run.js';

export interface DoctorJson {
  node: string;
  namespaces: { netns: string; findings: Finding[]; capabilities?: KernelCapabilities }[];
  summary: { errors: number; warnings: number; infos: number };
}

export function toJson(node: string, reports: readonly NamespaceReport[]): DoctorJson {
  return {
    node,
    namespaces: reports.map((r) => ({ netns: r.netns, findings: r.findings, ...(r.capabilities && { capabilities: r.capabilities }) })),
    summary: summarize(reports.flatMap((r) => r.findings)),
  };
}

const COLOR = { error: '\x1b[31m', warning: '\x1b[33m', info: '\x1b[36m', dim: '\x1b[2m', bold: '\x1b[1m', reset: '\x1b[0m' } as const;

// Interface names and process details come from the system: keep escape sequences off the terminal.
function printable(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g, '\uFFFD');
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

export function formatText(node: string, reports: readonly NamespaceReport[], opts: { color?: boolean } = {}): string {
  const c = (k: keyof typeof COLOR, s: string) => (opts.color ? `${COLOR[k]}${s}${COLOR.reset}` : s);
  const lines: string[] = [`doctor on node ${printable(node)}`];
  for (const r of reports) {
    const s = summarize(r.findings);
    lines.push('', c('bold', `netns ${printable(r.netns)}`) + `: ${plural(s.errors, 'error')}, ${plural(s.warnings, 'warning')}, ${plural(s.infos, 'info')}`);
    if (r.findings.length === 0) lines.push('  no findings');
    for (const f of r.findings) {
      lines.push(`  ${c(f.severity, f.severity.toUpperCase().padEnd(7))} ${f.code} ${printable(f.subject)}: ${printable(f.message)}`);
      for (const e of f.evidence) lines.push(`          ${c('dim', '-')} ${printable(e)}`);
      if (f.fix) lines.push(`          fix: ${printable(f.fix)}`);
    }
    if (r.capabilities) lines.push(`  ${c('dim', printable(describeCapabilities(r.capabilities)))}`);
  }
  const t = summarize(reports.flatMap((r) => r.findings));
  lines.push('', `${plural(t.errors, 'error')}, ${plural(t.warnings, 'warning')}, ${plural(t.infos, 'info')} in ${plural(reports.length, 'namespace')}`);
  return `${lines.join('\n')}\n`;
}
