// The watch daemon plans with the kernel's capabilities, probed once per
// namespace handle: a declaration the kernel cannot hold is refused with the
// reason in /status, and nothing is written for it.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { realDeps } from '../src/daemon/deps.js';
import type { KernelCapabilities } from '../src/core/model.js';
import type { NamespaceKernel } from '../src/kernel/api.js';
import { capabilitiesOfHandle, probeCapabilities } from '../src/kernel/capabilities.js';
import { closeNamespace, openNamespace } from '../src/kernel/namespace.js';
import { daemonTestScope, eventually } from './helpers/daemon.js';
import { ipEndpoints, requireRoot } from './helpers/netns.js';

const scope = daemonTestScope('y16');
beforeAll(() => requireRoot());
afterEach(() => scope.stopDaemons());
afterAll(() => scope.cleanup());

describe('capabilities in the daemon', () => {
  it('are probed once per handle, and again for a re-opened one', () => {
    const ns = scope.netns();
    const k1 = openNamespace(ns);
    const caps = capabilitiesOfHandle(k1);
    expect(caps).toEqual(probeCapabilities(ns));
    expect(capabilitiesOfHandle(k1)).toBe(caps);
    closeNamespace(ns);
    const k2 = openNamespace(ns);
    expect(k2).not.toBe(k1);
    const again = capabilitiesOfHandle(k2);
    expect(again).not.toBe(caps);
    expect(again).toEqual(caps);
    closeNamespace(ns);
  });

  it('a flag the kernel lacks is refused with the reason in /status; the rest of the entry is applied', async () => {
    const ns = scope.netns();
    // This kernel stores every endpoint flag, laminar included, so only the
    // capability value is faked: the real probe, minus laminar (an older kernel's
    // answer). The daemon, the kernel and /status are real.
    const probed: NamespaceKernel[] = [];
    const older = (k: NamespaceKernel): KernelCapabilities => {
      probed.push(k);
      const real = capabilitiesOfHandle(k);
      return { ...real, release: '6.17.0', endpointFlags: real.endpointFlags!.filter((f) => f !== 'laminar') };
    };
    expect(probeCapabilities(ns).endpointFlags).toContain('laminar');
    const file = scope.configFile(`version: 1
namespaces:
  - netns: ${ns}
    endpoints:
      - { address: 192.0.2.1, flags: [signal] }
      - { address: 192.0.2.2, flags: [subflow, laminar] }
`);
    const d = await scope.start(file, { deps: realDeps({ capabilities: older }) });
    type Status = { namespaces: Record<string, { converged: boolean; errors: { message: string }[] }> };
    const st = await eventually('the refusal in /status', async () => {
      const s = (await (await fetch(`${d.url}/status`)).json()) as Status;
      return (s.namespaces[ns]?.errors.length ?? 0) > 0 ? s : undefined;
    });
    expect(st.namespaces[ns]!.converged).toBe(false);
    expect(st.namespaces[ns]!.errors.map((e) => e.message)).toEqual([
      'endpoints[192.0.2.2]: this kernel (6.17.0) has no endpoint flag laminar; remove it or run a kernel that has it',
    ]);
    expect(ipEndpoints(ns).map((e) => e.address)).toEqual(['192.0.2.1']);
    expect(probed.length).toBeGreaterThan(0);
    expect(probed.every((k) => k.netns === ns)).toBe(true);
  });
});
