// The daemon's read-only HTTP surface: probes, Prometheus metrics, status JSON.
// GET (and HEAD) only; nothing here can change state.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';

export interface HttpSources {
  /** The loop runs (false once stopping). */
  healthy(): boolean;
  /** The first full pass over every namespace is done. */
  ready(): boolean;
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

export async function startHttpServer(listen: ListenAddress, src: HttpSources): Promise<{ server: Server; address: ListenAddress; close(): Promise<void> }> {
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
      case '/readyz':
        return src.ready()
          ? send(res, 200, 'text/plain; charset=utf-8', 'ready\n', head)
          : send(res, 503, 'text/plain; charset=utf-8', 'first pass not done\n', head);
      case '/metrics':
        return send(res, 200, src.registry.contentType, await src.registry.metrics(), head);
      case '/status':
        return send(res, 200, 'application/json; charset=utf-8', `${JSON.stringify(src.status(), null, 2)}\n`, head);
      default:
        return send(res, 404, 'text/plain; charset=utf-8', 'not found: try /healthz /readyz /metrics /status\n', head);
    }
  };
  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) send(res, 500, 'text/plain; charset=utf-8', `error: ${(err as Error).message}\n`, false);
      else res.destroy();
    });
  });
  // Probes and scrapes are short; idle keep-alive sockets must not hold up shutdown.
  server.keepAliveTimeout = 5000;
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
