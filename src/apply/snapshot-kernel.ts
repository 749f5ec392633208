// A NamespaceKernel over a saved `show -o json` snapshot, for `plan --live`: the
// same reconcile code plans against it, without root and without any socket.
// Every write refuses, so a bug can never turn a review into a change.
import type { KernelWriteResult, Limits, LiveFingerprint, LiveSelection, NamespaceKernel } from './../kernel/api.js';
import type { MptcpConfig, MptcpKey } from '../config/schema.js';
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
  close(): void {}
}
