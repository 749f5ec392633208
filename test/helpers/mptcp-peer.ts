// Real MPTCP peers for traffic tests: the python3 server/client in
// test/fixtures/doctor/mptcp_peer.py run inside a namespace. Each keeps its
// connection(s) open until its stdin closes; stop() closes it and waits.
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';

export const MPTCP_PEER = join(import.meta.dirname, '..', 'fixtures', 'doctor', 'mptcp_peer.py');

export async function waitFor<T>(what: string, fn: () => T | undefined, ms = 15_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export interface Peer {
  proc: ChildProcess;
  out: () => string;
  /** Closes stdin and waits for the exit code. */
  stop: () => Promise<number | null>;
}

function peer(netns: string, args: string[], started: string): Promise<Peer> {
  const proc = spawn('ip', ['netns', 'exec', netns, 'python3', MPTCP_PEER, ...args], { stdio: ['pipe', 'pipe', 'inherit'] });
  let buf = '';
  proc.stdout!.on('data', (d: Buffer) => (buf += d.toString()));
  const p: Peer = {
    proc,
    out: () => buf,
    stop: async () => {
      proc.stdin!.end();
      await waitFor('the peer to exit', () => (proc.exitCode !== null || proc.signalCode !== null ? true : undefined));
      return proc.exitCode;
    },
  };
  return waitFor(`the peer to print "${started}"`, () => {
    if (proc.exitCode !== null) throw new Error(`peer ${args.join(' ')} exited with ${proc.exitCode}`);
    return buf.includes(started) ? p : undefined;
  });
}

/** A server on addr:port that accepts `count` connections. */
export function mptcpServer(netns: string, addr: string, port: number, count: number): Promise<Peer> {
  return peer(netns, ['server', addr, String(port), String(count)], 'listening');
}

/** A client connected to addr:port (data exchanged, so the path manager acts). */
export function mptcpClient(netns: string, addr: string, port: number): Promise<Peer> {
  return peer(netns, ['client', addr, String(port)], 'connected');
}

/** Kills whatever is still running (for afterAll); by the processes' own pids. */
export function killPeers(peers: readonly Peer[]): void {
  for (const p of peers) if (p.proc.exitCode === null && p.proc.signalCode === null) p.proc.kill('SIGKILL');
}
