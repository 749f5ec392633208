// Real MPTCP traffic between two test namespaces: a python3 peer (server or
// client) that keeps its connection open until its stdin closes, and the
// polling helper the traffic tests wait with. Every wait is bounded.
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';

export const PEER = join(import.meta.dirname, '..', 'fixtures', 'doctor', 'mptcp_peer.py');

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
  /** Everything the peer printed so far. */
  out(): string;
  /** Closes stdin: the peer closes its connection(s) and exits. */
  stop(): void;
}

function peer(netns: string, args: string[], procs: ChildProcess[]): Peer {
  const proc = spawn('ip', ['netns', 'exec', netns, 'python3', PEER, ...args], { stdio: ['pipe', 'pipe', 'inherit'] });
  procs.push(proc);
  let buf = '';
  proc.stdout!.on('data', (d: Buffer) => (buf += d.toString()));
  return { proc, out: () => buf, stop: () => proc.stdin!.end() };
}

/** An MPTCP server in `netns` accepting `count` connections; resolves once it listens. */
export async function mptcpServer(netns: string, addr: string, port: number, count: number, procs: ChildProcess[]): Promise<Peer> {
  const p = peer(netns, ['server', addr, String(port), String(count)], procs);
  await waitFor('the server to listen', () => (p.out().includes('listening') ? true : undefined));
  return p;
}

/** An MPTCP client in `netns`; it prints "connected" once data went both ways. */
export function mptcpClient(netns: string, addr: string, port: number, procs: ChildProcess[]): Peer {
  return peer(netns, ['client', addr, String(port)], procs);
}

/** Kills the peers still running (a failed test); the normal path stops them with stop(). */
export function killPeers(procs: ChildProcess[]): void {
  for (const p of procs) if (p.exitCode === null && p.pid) p.kill('SIGKILL');
}
