// What doctor reports. Codes are stable ids (scripts and alert rules match on
// them); the slug says the same for humans. Never renumber: add new codes.
export type Severity = 'error' | 'warning' | 'info';

export interface Finding {
  severity: Severity;
  /** Stable id, e.g. MPTCP001. */
  code: string;
  /** Readable form of the code, e.g. rp-filter-strict. */
  rule: string;
  netns: string;
  /** What the finding is about: an interface, an endpoint, a connection, the config. */
  subject: string;
  message: string;
  /** The facts it rests on, one per line (sysctl values, counters, pids, file:line). */
  evidence: string[];
  /** What to do about it; absent for purely informative findings. */
  fix?: string;
}

export const RULES = {
  'rp-filter-strict': { code: 'MPTCP001', severity: 'error' },
  'endpoint-without-dev': { code: 'MPTCP002', severity: 'warning' },
  'subflow-endpoints-over-limit': { code: 'MPTCP003', severity: 'warning' },
  'add-addr-accepted-zero': { code: 'MPTCP004', severity: 'info' },
  'endpoint-invalid-flags': { code: 'MPTCP005', severity: 'error' },
  'mptcp-disabled': { code: 'MPTCP006', severity: 'error' },
  'userspace-pm-with-endpoints': { code: 'MPTCP007', severity: 'warning' },
  'userspace-pm-without-daemon': { code: 'MPTCP008', severity: 'warning' },
  'managers-both-active': { code: 'MPTCP009', severity: 'error' },
  'manager-next-to-config': { code: 'MPTCP010', severity: 'warning' },
  'endpoint-address-not-local': { code: 'MPTCP011', severity: 'warning' },
  'endpoint-dev-unusable': { code: 'MPTCP012', severity: 'warning' },
  connection: { code: 'MPTCP013', severity: 'info' },
  'connection-few-subflows': { code: 'MPTCP014', severity: 'warning' },
  'connection-fallback': { code: 'MPTCP015', severity: 'info' },
  'connections-not-listed': { code: 'MPTCP016', severity: 'info' },
  'config-endpoint-no-role': { code: 'MPTCP017', severity: 'warning' },
  'config-subflow-endpoints-over-limit': { code: 'MPTCP018', severity: 'warning' },
  'config-rp-filter-not-loose': { code: 'MPTCP019', severity: 'warning' },
  'config-dev-missing': { code: 'MPTCP020', severity: 'warning' },
  'config-not-applied': { code: 'MPTCP021', severity: 'info' },
  'netns-missing': { code: 'MPTCP022', severity: 'warning' },
  'netns-unreadable': { code: 'MPTCP023', severity: 'error' },
  'add-addr-ignored': { code: 'MPTCP024', severity: 'error' },
  'kernel-lacks-feature': { code: 'MPTCP025', severity: 'error' },
  'manager-running': { code: 'MPTCP026', severity: 'info' },
  'endpoint-no-route-out': { code: 'MPTCP027', severity: 'warning' },
} as const satisfies Record<string, { code: string; severity: Severity }>;

export type RuleName = keyof typeof RULES;

export function finding(
  rule: RuleName,
  f: { netns: string; subject: string; message: string; evidence?: string[]; fix?: string; severity?: Severity },
): Finding {
  const r = RULES[rule];
  return {
    severity: f.severity ?? r.severity,
    code: r.code,
    rule,
    netns: f.netns,
    subject: f.subject,
    message: f.message,
    evidence: f.evidence ?? [],
    ...(f.fix !== undefined ? { fix: f.fix } : {}),
  };
}

const ORDER: Record<Severity, number> = { error: 0, warning: 1, info: 2 };

/** Severity first, then code, then subject: stable output for diffs and tests. */
export function sortFindings(fs: readonly Finding[]): Finding[] {
  return [...fs].sort(
    (a, b) => ORDER[a.severity] - ORDER[b.severity] || a.code.localeCompare(b.code) || a.subject.localeCompare(b.subject),
  );
}

export function summarize(fs: readonly Finding[]): { errors: number; warnings: number; infos: number } {
  return {
    errors: fs.filter((f) => f.severity === 'error').length,
    warnings: fs.filter((f) => f.severity === 'warning').length,
    infos: fs.filter((f) => f.severity === 'info').length,
  };
}
