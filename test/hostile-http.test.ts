// The daemon's HTTP server against a local user holding connections open
// (slowloris): the real server on loopback, real sockets. The limits are made
// small so that the test does not wait for the production values.
import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { Registry } from 'prom-client';
import { startHttpServer } from '../src/http/server.js';
import { eventually } from './helpers/daemon.js';

const open: Socket[] = [];
const servers: { close(): Promise<void> }[] = [];
afterEach(async () => {
  for (const s of open.splice(0)) s.destroy();
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function server(limits: Parameters<typeof startHttpServer>[2]) {
  const s = await startHttpServer({ host: '127.0.0.1', port: 0 }, { healthy: () => true, ready: () => true, registry: new Registry(), status: () => ({}) }, limits);
  servers.push(s);
  return s;
}

function slowClient(port: number): { socket: Socket; closed: () => boolean; stop: () => void } {
  let closed = false;
  const socket = connect(port, '127.0.0.1');
  open.push(socket);
  socket.on('error', () => {});
  socket.on('close', () => {
    closed = true;
  });
  socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n');
  // A header byte every 100 ms: never idle, never done.
  const timer = setInterval(() => {
    if (!closed) socket.write('X');
  }, 100);
  return { socket, closed: () => closed, stop: () => clearInterval(timer) };
}

describe('HTTP limits', () => {
  it('slow clients are cut off, connections over the cap are refused, and probes answer again afterwards', async () => {
    const s = await server({ maxConnections: 5, headersTimeoutMs: 600, requestTimeoutMs: 1200, keepAliveTimeoutMs: 300, idleTimeoutMs: 1000 });
    let dropped = 0;
    s.server.on('drop', () => dropped++);
    const clients = Array.from({ length: 20 }, () => slowClient(s.address.port));
    try {
      await eventually('connections over the cap are dropped', () => dropped >= 15);
      await eventually('every slow client is closed by the server', () => clients.every((c) => c.closed()), 10_000);
      const n = await new Promise<number>((r, j) => s.server.getConnections((e, k) => (e ? j(e) : r(k))));
      expect(n).toBe(0);
    } finally {
      for (const c of clients) c.stop();
    }
    const r = await fetch(`http://127.0.0.1:${s.address.port}/healthz`);
    expect(r.status).toBe(200);
    expect(await r.text()).toBe('ok\n');
  });

  it('an idle connection that never sends anything is closed', async () => {
    const s = await server({ headersTimeoutMs: 600, requestTimeoutMs: 1200, idleTimeoutMs: 500 });
    const socket = connect(s.address.port, '127.0.0.1');
    open.push(socket);
    let closed = false;
    socket.on('error', () => {});
    socket.on('close', () => {
      closed = true;
    });
    await eventually('the idle socket is closed', () => closed, 10_000);
  });
});
