// A NamespaceKernel over a saved `show -o json` snapshot, for `plan --live`: the
// same reconcile code plans against it, without root and without any socket.
// Every write refuses, so a bug can never turn a review into a change.
import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { escapeName } from '../config/diagnostics.js';
import { readCapped } from '../config/load.js';
import { parseLiveSnapshot, type LiveSnapshot } from '../core/live-to-config.js';
import type { KernelWriteResult, Limits, LiveFingerprint, LiveSelection, NamespaceKernel } from './../kernel/api.js';
import type { MptcpConfig, MptcpKey } from '../core/schema.js';
import type { EndpointSpec, LiveAddress, LiveEndpoint, LiveLink, LiveNamespace } from '../core/model.js';

function readOnly(what: string): never {
  throw new Error(`${what}: a saved snapshot is read-only (plan --live never writes)`);
}

export class SnapshotKernel implements NamespaceKernel {
  readonly netns: string;
  constructor(private readonly live: LiveNamespace) {
    this.netns = live.netns;
  }
  async dumpEndpoints(): Promise<LiveEndpoint[]> {
    return this.live.endpoints.map((e) => ({ ...e }));
  }
  async addEndpoint(_ep: EndpointSpec): Promise<void> {
    readOnly('add endpoint');
  }
  async deleteEndpoint(_id: number): Promise<void> {
    readOnly('delete endpoint');
  }
  async setEndpointFlags(): Promise<void> {
    readOnly('set endpoint flags');
  }
  async getLimits(): Promise<Limits> {
    return { ...this.live.limits };
  }
  async setLimits(): Promise<void> {
    readOnly('set limits');
  }
  async links(): Promise<LiveLink[]> {
    return this.live.links.map((l) => ({ ...l }));
  }
  async addresses(): Promise<LiveAddress[]> {
    return this.live.addresses.map((a) => ({ ...a }));
  }
  readMptcpSysctls(): MptcpConfig {
    return { ...this.live.mptcp };
  }
  writeMptcpSysctl(_key: MptcpKey): void {
    readOnly('write sysctl');
  }
  readRpFilter(): Record<string, number> {
    return { ...this.live.rpFilter };
  }
  writeRpFilter(): void {
    readOnly('write rp_filter');
  }
  async readLive(_select?: LiveSelection): Promise<LiveNamespace> {
    // The whole snapshot: unselected parts are simply not compared by the planner.
    return structuredClone(this.live);
  }
  async readLiveIfChanged(select: LiveSelection): Promise<{ live: LiveNamespace; fingerprint: LiveFingerprint }> {
    return { live: await this.readLive(select), fingerprint: { bytes: new Uint8Array() } };
  }
  async runBatch(): Promise<KernelWriteResult[]> {
    readOnly('write endpoints');
  }
  async runRouting(): Promise<KernelWriteResult[]> {
    readOnly('write routes and rules');
  }
  close(): void {}
}

/** A snapshot of many namespaces is a few MiB at most; anything larger is not one. */
export const MAX_SNAPSHOT_BYTES = 16 * 1024 * 1024;

const SNAPSHOT_KEYS = new Set(['node', 'namespaces']);

/**
 * Reads and checks a `show -o json` file. Like a config file it is opened
 * first (non-blocking: a FIFO cannot hang it), checked with fstat (a regular
 * file of at most MAX_SNAPSHOT_BYTES: `/dev/zero` is refused unread) and read
 * with a cap. Errors say where and what, never quoting the file: whatever the
 * path points at, its bytes do not reach the terminal.
 */
export async function readSnapshotFile(path: string, shown = path): Promise<LiveSnapshot> {
  const name = escapeName(shown);
  const fail = (what: string): never => {
    throw new Error(`--live ${name}: ${what}`);
  };
  let fh: FileHandle;
  try {
    fh = await open(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return fail(code === 'ENOENT' ? 'no such file' : code === 'EACCES' || code === 'EPERM' ? 'permission denied' : `cannot open it (${code ?? 'error'})`);
  }
  let bytes: Buffer | undefined;
  try {
    const st = await fh.stat();
    if (!st.isFile()) fail(`is ${st.isDirectory() ? 'a directory' : st.isFIFO() ? 'a FIFO' : st.isCharacterDevice() || st.isBlockDevice() ? 'a device' : 'not a regular file'}, not a saved snapshot; it was not read`);
    if (st.size > MAX_SNAPSHOT_BYTES) fail(`is ${st.size} bytes; a snapshot is at most ${MAX_SNAPSHOT_BYTES} (16 MiB)`);
    bytes = await readCapped(fh, MAX_SNAPSHOT_BYTES);
  } finally {
    await fh.close();
  }
  if (bytes === undefined) return fail(`holds more than ${MAX_SNAPSHOT_BYTES} bytes; a snapshot is at most 16 MiB`);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return fail('is not UTF-8 text (expected the output of `show -o json`)');
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    // V8's message may quote the text around the error; only a position is kept.
    const m = /^[^"'`]*\bat position (\d+)/.exec((e as Error).message);
    if (!m) return fail('is not valid JSON (expected the output of `show -o json`)');
    const at = Number(m[1]);
    let line = 1;
    let start = 0;
    for (let nl = text.indexOf('\n'); nl >= 0 && nl < at; nl = text.indexOf('\n', nl + 1)) {
      line++;
      start = nl + 1;
    }
    return fail(`${line}:${at - start + 1}: not valid JSON here (expected the output of \`show -o json\`)`);
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) return fail('is not a JSON object (expected the output of `show -o json`)');
  for (const key of Object.keys(doc)) {
    if (!SNAPSHOT_KEYS.has(key)) {
      const k = key.length > 40 ? `${key.slice(0, 40)}…` : key;
      fail(`unknown top-level key ${JSON.stringify(escapeName(k))}: a snapshot has \`node\` and \`namespaces\` (is this the output of \`show -o json\`?)`);
    }
  }
  try {
    return parseLiveSnapshot(text);
  } catch (e) {
    return fail((e as Error).message);
  }
}
