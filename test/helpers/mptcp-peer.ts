// Real MPTCP peers for traffic tests: the python3 server/client in
// test/fixtures/doctor/mptcp_peer.py run inside a namespace. Each keeps its
// connection(s) open until its stdin closes; stop() closes it and waits.
// Every wait is bounded.
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { waitFor } from './wait.js';

export const MPTCP_PEER = join(import.meta.dirname, '..', 'fixtures', 'doctor', 'mptcp_peer.py');

export { waitFor };

export interface Peer {
  proc: ChildProcess;
  /** Everything the peer printed so far. */
  out: () => string;
  /** Closes stdin and waits for the exit code (null when it had to be left to killPeers). */
  stop: () => Promise<number | null>;
}

/** Starts a peer; `procs`, when given, collects it for killPeers in an afterAll. */
function spawnPeer(netns: string, args: string[], procs?: ChildProcess[]): Peer {
  const proc = spawn('ip', ['netns', 'exec', netns, 'python3', MPTCP_PEER, ...args], { stdio: ['pipe', 'pipe', 'inherit'] });
  procs?.push(proc);
  let buf = '';
  proc.stdout!.on('data', (d: Buffer) => (buf += d.toString()));
  return {
    proc,
    out: () => buf,
    stop: async () => {
      proc.stdin!.end();
      // Never rejects: callers may fire and forget, and a peer that hangs is killed by killPeers.
      return waitFor('the peer to exit', () => (proc.exitCode !== null || proc.signalCode !== null ? true : undefined)).then(
        () => proc.exitCode,
        () => null,
      );
    },
  };
}

function untilPrinted(p: Peer, started: string, args: string[]): Promise<Peer> {
  return waitFor(`the peer to print "${started}"`, () => {
    if (p.proc.exitCode !== null) throw new Error(`peer ${args.join(' ')} exited with ${p.proc.exitCode}`);
    return p.out().includes(started) ? p : undefined;
  });
}

/** A server on addr:port that accepts `count` connections; resolves once it listens. */
export function mptcpServer(netns: string, addr: string, port: number, count: number, procs?: ChildProcess[]): Promise<Peer> {
  const args = ['server', addr, String(port), String(count)];
  return untilPrinted(spawnPeer(netns, args, procs), 'listening', args);
}

/** A client connected to addr:port (data exchanged, so the path manager acts). */
export function mptcpClient(netns: string, addr: string, port: number, procs?: ChildProcess[]): Promise<Peer> {
  const args = ['client', addr, String(port)];
  return untilPrinted(spawnPeer(netns, args, procs), 'connected', args);
}

/** A client started without waiting: for tests that watch it connect (or hang) themselves. */
export function startMptcpClient(netns: string, addr: string, port: number, procs?: ChildProcess[]): Peer {
  return spawnPeer(netns, ['client', addr, String(port)], procs);
}

/** Kills whatever is still running (for afterAll), by the processes' own pids. */
export function killPeers(list: readonly (Peer | ChildProcess)[]): void {
  for (const x of list) {
    const p = 'proc' in x ? x.proc : x;
    if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  }
}
