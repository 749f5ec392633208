// Which node this process is (README.md#commands): --node, else NODE_NAME (set from the
// Kubernetes downward API in the DaemonSet), else the hostname.
import { hostname } from 'node:os';

export function nodeName(
  opts: { node?: string | undefined },
  env: Record<string, string | undefined>,
  fallback: () => string = hostname,
): string {
  if (opts.node !== undefined && opts.node !== '') return opts.node;
  const fromEnv = env.NODE_NAME?.trim();
  if (fromEnv) return fromEnv;
  return fallback();
}
