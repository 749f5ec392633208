// The namespace's MPTCP MIB counters (the MPTcpExt lines of /proc/net/netstat,
// what `nstat` shows): evidence for what no socket keeps, such as ADD_ADDRs that
// arrived and were ignored. Read inside the namespace: /proc/thread-self/net
// follows the calling thread's network namespace.
import { readFileSync } from 'node:fs';
import { withNetns } from '../kernel/netns.js';

/** `MPTcpExt: A B ...` then `MPTcpExt: 1 2 ...` -> { MPTcpExtA: 1, ... }. */
export function parseMptcpMib(text: string): Record<string, number> {
  const lines = text.split('\n').filter((l) => l.startsWith('MPTcpExt:'));
  const out: Record<string, number> = {};
  for (let i = 0; i + 1 < lines.length; i += 2) {
    const names = lines[i]!.split(/\s+/).slice(1);
    const values = lines[i + 1]!.split(/\s+/).slice(1);
    names.forEach((n, j) => {
      const v = Number(values[j]);
      if (n && Number.isFinite(v)) out[`MPTcpExt${n}`] = v;
    });
  }
  return out;
}

export function readMptcpMib(netns: string): Record<string, number> {
  return withNetns(netns, () => parseMptcpMib(readFileSync('/proc/thread-self/net/netstat', 'utf8')));
}
