// The daemon's read-only HTTP surface: probes, Prometheus metrics, status JSON.
// GET (and HEAD) only; nothing here can change state.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';

export interface HttpSources {
  /** The loop runs (false once stopping). */
  healthy(): boolean;
  /** Ready for a rollout gate. */
  ready(): boolean;
  /** Why not ready, and namespaces blocked by policy (reported in the body either way). */
  readiness?(): { ready: boolean; reasons: string[]; blocked: string[] };
  registry: Registry;
  status(): unknown;
}

export interface ListenAddress {
  host: string;
  port: number;
}

/** "127.0.0.1:9808", "[::1]:9808", ":9808" (all addresses); undefined when malformed. */
export function parseListen(text: string): ListenAddress | undefined {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(text.trim());
  if (!m) return undefined;
  const port = Number(m[3]);
  if (port > 65535) return undefined;
  const host = m[1] ?? (m[2] === '' ? '::' : m[2]!);
  return { host, port };
}

function send(res: ServerResponse, code: number, type: string, body: string, head: boolean): void {
  res.writeHead(code, { 'content-type': type, 'cache-control': 'no-store', 'content-length': Buffer.byteLength(body) });
  res.end(head ? undefined : body);
}

/**
 * Bounds on what a client may hold. Any local user can connect, so without
 * them 200 connections sending a header byte now and then (slowloris) keep
 * descriptors and memory forever. Probes and scrapes need one short request;
 * reconciling never waits for this server.
 */
export interface HttpLimits {
  /** Connections open at once; more are closed on accept. */
  maxConnections: number;
  /** From connect to the end of the request headers. */
  headersTimeoutMs: number;
  /** From connect to the end of the whole request. */
  requestTimeoutMs: number;
  /** An idle keep-alive connection between requests. */
  keepAliveTimeoutMs: number;
  /** A socket with no traffic at all. */
  idleTimeoutMs: number;
}

export const DEFAULT_HTTP_LIMITS: HttpLimits = {
  maxConnections: 64,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 15_000,
  keepAliveTimeoutMs: 5_000,
  idleTimeoutMs: 30_000,
};

export async function startHttpServer(
  listen: ListenAddress,
  src: HttpSources,
  limits: Partial<HttpLimits> = {},
): Promise<{ server: Server; address: ListenAddress; close(): Promise<void> }> {
  const lim = { ...DEFAULT_HTTP_LIMITS, ...limits };
  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const head = req.method === 'HEAD';
    if (req.method !== 'GET' && !head) {
      res.setHeader('allow', 'GET, HEAD');
      return send(res, 405, 'text/plain; charset=utf-8', 'method not allowed\n', false);
    }
    const path = (req.url ?? '/').split('?')[0];
    switch (path) {
      case '/healthz':
        return src.healthy()
          ? send(res, 200, 'text/plain; charset=utf-8', 'ok\n', head)
          : send(res, 503, 'text/plain; charset=utf-8', 'stopping\n', head);
      case '/readyz': {
        const r = src.readiness?.() ?? { ready: src.ready(), reasons: ['first pass not done'], blocked: [] };
        const blocked = r.blocked.map((b) => `blocked by conflicts policy: ${b}\n`).join('');
        return r.ready
          ? send(res, 200, 'text/plain; charset=utf-8', `ready\n${blocked}`, head)
          : send(res, 503, 'text/plain; charset=utf-8', `not ready\n${r.reasons.map((x) => `${x}\n`).join('')}${blocked}`, head);
      }
      case '/metrics':
        return send(res, 200, src.registry.contentType, await src.registry.metrics(), head);
      case '/status':
        return send(res, 200, 'application/json; charset=utf-8', `${JSON.stringify(src.status(), null, 2)}\n`, head);
      default:
        return send(res, 404, 'text/plain; charset=utf-8', 'not found: try /healthz /readyz /metrics /status\n', head);
    }
  };
  const server = createServer(
    {
      headersTimeout: lim.headersTimeoutMs,
      requestTimeout: lim.requestTimeoutMs,
      keepAliveTimeout: lim.keepAliveTimeoutMs,
      // How often the two timeouts above are checked (default 30 s, longer than they are).
      connectionsCheckingInterval: Math.max(100, Math.min(1000, Math.floor(lim.headersTimeoutMs / 4))),
      maxHeaderSize: 8192,
    },
    (req, res) => {
      handle(req, res).catch((err: unknown) => {
        if (!res.headersSent) send(res, 500, 'text/plain; charset=utf-8', `error: ${(err as Error).message}\n`, false);
        else res.destroy();
      });
    },
  );
  server.maxConnections = lim.maxConnections;
  server.timeout = lim.idleTimeoutMs;
  server.maxHeadersCount = 50;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(listen.port, listen.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const a = server.address() as AddressInfo;
  return {
    server,
    address: { host: a.address, port: a.port },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
