// deploy/kubernetes: every manifest is valid against the Kubernetes API schemas,
// the kustomizations build, the overlays change what they claim, and the
// DaemonSet carries what a node agent of this kind needs (docs/design.md#operation).
import { BlockList, isIP } from 'node:net';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Namespace } from 'kubernetes-models/v1/Namespace';
import { ServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
import { DaemonSet } from 'kubernetes-models/apps/v1/DaemonSet';
import { PodMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PodMonitor';
import { configSchema } from '../src/core/schema.js';
import { main } from '../src/cli/main.js';
import { parseListen } from '../src/http/server.js';
import { build, find, readYamlDocuments, type Resource } from './deploy-kustomize.js';
import { captureIO } from './helpers/io.js';

const K8S = fileURLToPath(new URL('../deploy/kubernetes', import.meta.url));
const BASE = join(K8S, 'base');
const OVERLAYS = ['observe', 'prometheus-operator'];

// Offline validators generated from the Kubernetes OpenAPI (and the Prometheus
// Operator CRD) schemas: wrong types, missing required fields, bad enum values.
const MODELS: Record<string, (r: Resource) => { validate(): void }> = {
  'v1/Namespace': (r) => new Namespace(r as never),
  'v1/ServiceAccount': (r) => new ServiceAccount(r as never),
  'v1/ConfigMap': (r) => new ConfigMap(r as never),
  'apps/v1/DaemonSet': (r) => new DaemonSet(r as never),
  'monitoring.coreos.com/v1/PodMonitor': (r) => new PodMonitor(r as never),
};

function validateAll(resources: Resource[]): void {
  for (const r of resources) {
    const make = MODELS[`${r.apiVersion}/${r.kind}`];
    if (!make) throw new Error(`no schema for ${r.apiVersion} ${r.kind}: add its model to the test`);
    make(r).validate();
  }
}

type Container = {
  name: string;
  args: string[];
  env: Array<{ name: string; valueFrom?: { fieldRef?: { fieldPath: string } } }>;
  ports: Array<{ name: string; containerPort: number; hostPort?: number; protocol?: string }>;
  readinessProbe: { httpGet: { path: string; port: string | number } };
  livenessProbe: { httpGet: { path: string; port: string | number } };
  resources: { requests: Record<string, string>; limits: Record<string, string> };
  securityContext: {
    privileged?: boolean;
    allowPrivilegeEscalation?: boolean;
    readOnlyRootFilesystem?: boolean;
    capabilities: { add: string[]; drop: string[] };
  };
  volumeMounts: Array<{ name: string; mountPath: string; readOnly?: boolean; mountPropagation?: string; subPath?: string }>;
};
type PodSpec = {
  hostNetwork?: boolean;
  hostPID?: boolean;
  serviceAccountName: string;
  automountServiceAccountToken?: boolean;
  tolerations: Array<{ operator?: string; key?: string; effect?: string }>;
  containers: Container[];
  volumes: Array<{ name: string; hostPath?: { path: string; type?: string }; configMap?: { name: string } }>;
};
type DaemonSetShape = Resource & {
  spec: {
    selector: { matchLabels: Record<string, string> };
    updateStrategy: { type: string; rollingUpdate: { maxUnavailable: string | number; maxSurge?: string | number } };
    template: { metadata: { labels: Record<string, string> }; spec: PodSpec };
  };
};

function daemonSet(resources: Resource[]): DaemonSetShape {
  return find(resources, 'DaemonSet', 'mptcp-reconciler') as DaemonSetShape;
}

/** The value of `--name=value` or `--name value` in an argument list. */
function flag(args: string[], name: string): string | undefined {
  for (let i = 0; i < args.length; i++) {
    if (args[i] === name) return args[i + 1];
    if (args[i]!.startsWith(`${name}=`)) return args[i]!.slice(name.length + 1);
  }
  return undefined;
}

const io = () => captureIO();

describe('kustomize base and overlays', () => {
  it('every kustomization lists only files that exist and builds', () => {
    for (const dir of [BASE, ...OVERLAYS.map((o) => join(K8S, 'overlays', o))]) {
      expect(() => build(dir), dir).not.toThrow();
    }
  });

  it('every manifest file in the tree is referenced by a kustomization', () => {
    // A manifest nobody references is never deployed: usually a forgotten entry.
    const referenced = new Set<string>();
    for (const dir of [BASE, ...OVERLAYS.map((o) => join(K8S, 'overlays', o))]) {
      const k = readYamlDocuments(join(dir, 'kustomization.yaml'))[0] as {
        resources?: string[];
        configMapGenerator?: Array<{ files: string[] }>;
      };
      for (const r of k.resources ?? []) referenced.add(resolve(dir, r));
      for (const g of k.configMapGenerator ?? []) for (const f of g.files) referenced.add(resolve(dir, f));
    }
    const walk = (d: string): string[] =>
      readdirSync(d, { withFileTypes: true }).flatMap((e) =>
        e.isDirectory() ? walk(join(d, e.name)) : e.name.endsWith('.yaml') && e.name !== 'kustomization.yaml' ? [join(d, e.name)] : [],
      );
    for (const f of walk(K8S)) expect(referenced, `${f} is not in any kustomization`).toContain(f);
  });

  it('the base and both overlays validate against the Kubernetes API schemas', () => {
    validateAll(build(BASE));
    for (const o of OVERLAYS) validateAll(build(join(K8S, 'overlays', o)));
  });

  it('the schema validation rejects a broken DaemonSet (the check has teeth)', () => {
    const ds = structuredClone(daemonSet(build(BASE)));
    ds.spec.template.spec.containers[0]!.volumeMounts[0]!.mountPropagation = 'Sideways';
    expect(() => validateAll([ds])).toThrow(/mountPropagation/);
  });

  it('puts every namespaced object into the mptcp-reconciler namespace', () => {
    for (const r of build(BASE)) {
      if (r.kind === 'Namespace') expect(r.metadata.name).toBe('mptcp-reconciler');
      else expect(r.metadata.namespace, `${r.kind} ${r.metadata.name}`).toBe('mptcp-reconciler');
    }
  });

  it('observe overlay: only the mode changes, to observe', () => {
    const base = daemonSet(build(BASE));
    const observed = daemonSet(build(join(K8S, 'overlays/observe')));
    const baseArgs = base.spec.template.spec.containers[0]!.args;
    const args = observed.spec.template.spec.containers[0]!.args;
    expect(flag(baseArgs, '--mode')).toBe('enforce');
    expect(flag(args, '--mode')).toBe('observe');
    // Everything else is the base, untouched.
    const strip = (a: string[]) => a.filter((x) => !x.startsWith('--mode'));
    expect(strip(args)).toEqual(strip(baseArgs));
    const withoutArgs = (d: DaemonSetShape) => {
      const c = structuredClone(d);
      c.spec.template.spec.containers[0]!.args = [];
      return c;
    };
    expect(withoutArgs(observed)).toEqual(withoutArgs(base));
    expect(build(join(K8S, 'overlays/observe')).map((r) => r.kind).sort()).toEqual(build(BASE).map((r) => r.kind).sort());
  });

  it('observe overlay fails to build if the base moves --mode (the patch tests first)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'deploy-k8s-'));
    try {
      // A copy of the base whose args are in another order, under the overlay's patch.
      const base = join(dir, 'base');
      const overlay = join(dir, 'overlay');
      mkdirSync(overlay, { recursive: true });
      cpSync(BASE, base, { recursive: true });
      const dsPath = join(base, 'daemonset.yaml');
      const ds = parse(readFileSync(dsPath, 'utf8'));
      ds.spec.template.spec.containers[0].args.reverse();
      writeFileSync(dsPath, JSON.stringify(ds));
      const k = readFileSync(join(K8S, 'overlays/observe/kustomization.yaml'), 'utf8');
      writeFileSync(join(overlay, 'kustomization.yaml'), k.replace('../../base', '../base'));
      expect(() => build(overlay)).toThrow();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('prometheus-operator overlay: the base plus a PodMonitor that scrapes the metrics port', () => {
    const resources = build(join(K8S, 'overlays/prometheus-operator'));
    expect(resources.length).toBe(build(BASE).length + 1);
    const pm = find(resources, 'PodMonitor') as Resource & {
      spec: { selector: { matchLabels: Record<string, string> }; podMetricsEndpoints: Array<{ port: string; path?: string }> };
    };
    const ds = daemonSet(resources);
    expect(pm.metadata.namespace).toBe(ds.metadata.namespace);
    // The selector selects the DaemonSet's pods, and the port name exists on them.
    for (const [k, v] of Object.entries(pm.spec.selector.matchLabels)) expect(ds.spec.template.metadata.labels[k]).toBe(v);
    const portNames = ds.spec.template.spec.containers[0]!.ports.map((p) => p.name);
    for (const ep of pm.spec.podMetricsEndpoints) {
      expect(portNames).toContain(ep.port);
      expect(ep.path ?? '/metrics').toBe('/metrics');
    }
  });
});

describe('DaemonSet', () => {
  const ds = daemonSet(build(BASE));
  const pod = ds.spec.template.spec;
  const c = pod.containers[0]!;
  const mount = (path: string) => c.volumeMounts.find((m) => m.mountPath === path);
  const volume = (name: string) => pod.volumes.find((v) => v.name === name);

  it('runs watch in the host network namespace with the config directory and a mode', () => {
    expect(pod.hostNetwork).toBe(true);
    expect(c.args[0]).toBe('watch');
    expect(flag(c.args, '--file') ?? flag(c.args, '-f')).toBe('/etc/mptcp-reconciler');
    expect(flag(c.args, '--mode')).toBe('enforce');
  });

  it('uses only options the watch command has (its --help lists them)', async () => {
    const t = io();
    expect(await main(['watch', '--help'], t.io)).toBe(0);
    const help = t.out() + t.err();
    const used = c.args.filter((a) => a.startsWith('-')).map((a) => a.split('=')[0]!);
    expect(used.length).toBeGreaterThan(3);
    for (const o of used) expect(help, `watch has no option ${o}`).toMatch(new RegExp(`(^|[\\s,])${o}([\\s=<,]|$)`, 'm'));
  });

  it('listens on the node\'s loopback only, where the kubelet probes', () => {
    expect(flag(c.args, '--listen')).toBe('127.0.0.1:9808');
    const probes = c as unknown as { readinessProbe: { httpGet: { host?: string } }; livenessProbe: { httpGet: { host?: string } } };
    expect(probes.readinessProbe.httpGet.host).toBe('127.0.0.1');
    expect(probes.livenessProbe.httpGet.host).toBe('127.0.0.1');
  });

  it('is node infrastructure: priorityClassName system-node-critical', () => {
    expect((pod as { priorityClassName?: string }).priorityClassName).toBe('system-node-critical');
  });

  it('prometheus-operator overlay: listens on the pod (= node) IP, and probes go there', () => {
    const c = daemonSet(build(join(K8S, 'overlays/prometheus-operator'))).spec.template.spec.containers[0]! as typeof pod.containers[0] & {
      readinessProbe: { httpGet: { host?: string } };
      livenessProbe: { httpGet: { host?: string } };
    };
    expect(c.readinessProbe.httpGet.host).toBeUndefined();
    expect(c.livenessProbe.httpGet.host).toBeUndefined();
    const env = (name: string) => c.env.find((e) => e.name === name)?.valueFrom?.fieldRef?.fieldPath;
    expect(env('NODE_NAME')).toBe('spec.nodeName');
    expect(env('POD_IP')).toBe('status.podIP');
    const listen = flag(c.args, '--listen')!;
    expect(listen).toBe('$(POD_IP):9808');
    // What the kubelet makes of it on an IPv4 node is an address the daemon accepts.
    expect(parseListen(listen.replace('$(POD_IP)', '192.0.2.7'))).toEqual({ host: '192.0.2.7', port: 9808 });
    // Kubernetes expands $(VAR) only for variables declared before use in env.
    expect(c.env.map((e) => e.name)).toContain('POD_IP');
    const metrics = c.ports.find((p) => p.name === 'metrics')!;
    expect(metrics.containerPort).toBe(9808);
    // The API server requires hostPort == containerPort with hostNetwork.
    expect(metrics.hostPort ?? metrics.containerPort).toBe(metrics.containerPort);
  });

  it('has liveness on /healthz and readiness on /readyz, on the metrics port', () => {
    expect(c.livenessProbe.httpGet).toEqual({ host: '127.0.0.1', path: '/healthz', port: 'metrics' });
    expect(c.readinessProbe.httpGet).toEqual({ host: '127.0.0.1', path: '/readyz', port: 'metrics' });
  });

  it('adds NET_ADMIN and SYS_ADMIN after dropping all, on a read-only root filesystem', () => {
    expect(c.securityContext.capabilities.drop).toEqual(['ALL']);
    // Spelled without CAP_: the API server refuses CAP_SYS_ADMIN together with
    // allowPrivilegeEscalation: false (it compares the literal string).
    expect([...c.securityContext.capabilities.add].sort()).toEqual(['NET_ADMIN', 'SYS_ADMIN']);
    expect(c.securityContext.readOnlyRootFilesystem).toBe(true);
  });

  it('is not privileged and does not allow privilege escalation', () => {
    expect(c.securityContext.privileged).toBe(false);
    expect(c.securityContext.allowPrivilegeEscalation).toBe(false);
    const text = readFileSync(join(BASE, 'daemonset.yaml'), 'utf8');
    expect(text).not.toMatch(/privileged: true/);
  });

  it('writes sysctls through the host /proc/sys/net mounted read-write, passed as --sysctl-root', () => {
    const root = flag(c.args, '--sysctl-root')!;
    expect(root).toBe('/host/proc/sys');
    const m = mount(`${root}/net`)!;
    expect(m, `a volume mount at ${root}/net`).toBeDefined();
    expect(m.readOnly).not.toBe(true);
    expect(m.subPath).toBeUndefined();
    expect(volume(m.name)?.hostPath).toEqual({ path: '/proc/sys/net', type: 'Directory' });
    // Nothing else of the host's /proc is writable.
    for (const other of c.volumeMounts) {
      const path = volume(other.name)?.hostPath?.path;
      if (path === '/proc' || path?.startsWith('/proc/')) expect(other.readOnly === true || other === m, other.mountPath).toBe(true);
    }
    // runc refuses volumes inside the container's own /proc.
    for (const other of c.volumeMounts) expect(other.mountPath === '/proc' || other.mountPath.startsWith('/proc/'), other.mountPath).toBe(false);
  });

  it('sees named namespaces created after it started (HostToContainer on /run/netns)', () => {
    const m = mount('/run/netns')!;
    // Bidirectional would need a privileged container; HostToContainer does not.
    expect(m.mountPropagation).toBe('HostToContainer');
    expect(volume(m.name)?.hostPath?.path).toBe('/run/netns');
  });

  it('reads the host /proc and /etc/{NetworkManager,mptcpd} read-only, passed as --proc-root/--etc-root', () => {
    const procRoot = flag(c.args, '--proc-root')!;
    const etcRoot = flag(c.args, '--etc-root')!;
    expect(pod.hostPID === true || procRoot !== '/proc').toBe(true);
    if (pod.hostPID !== true) {
      const m = mount(procRoot)!;
      expect(m.readOnly).toBe(true);
      expect(volume(m.name)?.hostPath?.path).toBe('/proc');
    }
    for (const dir of ['NetworkManager', 'mptcpd']) {
      const m = mount(`${etcRoot}/${dir}`)!;
      expect(m, dir).toBeDefined();
      expect(m.readOnly).toBe(true);
      expect(volume(m.name)?.hostPath?.path).toBe(`/etc/${dir}`);
    }
  });

  it('mounts the ConfigMap as a directory (no subPath), so updates reach the running pod', () => {
    const m = mount('/etc/mptcp-reconciler')!;
    expect(m.subPath).toBeUndefined();
    expect(m.readOnly).toBe(true);
    expect(volume(m.name)?.configMap?.name).toBe('mptcp-reconciler-config');
    find(build(BASE), 'ConfigMap', 'mptcp-reconciler-config');
  });

  it('every volume mount has its volume and every volume is mounted', () => {
    const mounted = new Set(c.volumeMounts.map((m) => m.name));
    for (const m of c.volumeMounts) expect(volume(m.name), m.name).toBeDefined();
    for (const v of pod.volumes) expect(mounted.has(v.name), v.name).toBe(true);
  });

  it('is sized from measurements: requests cover the RSS at 800 namespaces (90-100 MiB), the limit lies above V8\'s heap ceiling', () => {
    expect(c.resources.requests).toEqual({ cpu: '10m', memory: '112Mi' });
    expect(c.resources.limits.memory).toBe('256Mi');
    // No CPU limit: throttling would only delay passes.
    expect(c.resources.limits.cpu).toBeUndefined();
  });

  it('rolls out with RollingUpdate and maxUnavailable, without surge on the host port', () => {
    expect(ds.spec.updateStrategy.type).toBe('RollingUpdate');
    expect(ds.spec.updateStrategy.rollingUpdate.maxUnavailable).toBeTruthy();
    expect(String(ds.spec.updateStrategy.rollingUpdate.maxSurge ?? 0)).toBe('0');
  });

  it('tolerates every taint so it runs on every node', () => {
    expect(pod.tolerations).toContainEqual({ operator: 'Exists' });
  });

  it('selects exactly its own pods and gets no API token', () => {
    for (const [k, v] of Object.entries(ds.spec.selector.matchLabels)) expect(ds.spec.template.metadata.labels[k]).toBe(v);
    expect(pod.automountServiceAccountToken).toBe(false);
    const sa = find(build(BASE), 'ServiceAccount', pod.serviceAccountName) as Resource & { automountServiceAccountToken?: boolean };
    expect(sa.automountServiceAccountToken).toBe(false);
  });
});

describe('fleet ConfigMap', () => {
  const cm = find(build(BASE), 'ConfigMap', 'mptcp-reconciler-config') as Resource & { data: Record<string, string> };
  const files = Object.entries(cm.data);

  it('holds YAML files the config loader picks up from the mounted directory', () => {
    expect(files.length).toBeGreaterThan(0);
    for (const [name] of files) expect(name).toMatch(/^[^.].*\.ya?ml$/);
  });

  it('is a valid config by the schema, with node globs and only documentation addresses', () => {
    const docs = new BlockList();
    docs.addSubnet('192.0.2.0', 24, 'ipv4');
    docs.addSubnet('198.51.100.0', 24, 'ipv4');
    docs.addSubnet('203.0.113.0', 24, 'ipv4');
    docs.addSubnet('2001:db8::', 32, 'ipv6');
    for (const [name, text] of files) {
      const config = configSchema.parse(parse(text));
      expect(config.namespaces.some((n) => n.nodes?.some((g) => g !== '*')), name).toBe(true);
      for (const n of config.namespaces) {
        for (const ep of n.endpoints ?? []) {
          if (ep.address === undefined) continue;
          expect(docs.check(ep.address, isIP(ep.address) === 6 ? 'ipv6' : 'ipv4'), ep.address).toBe(true);
        }
      }
    }
  });

  it('passes `mptcp-reconciler validate --strict` (no warnings either)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'deploy-fleet-'));
    try {
      for (const [name, text] of files) {
        const file = join(dir, name);
        writeFileSync(file, text);
        const t = io();
        const code = await main(['validate', '--strict', '-f', file], t.io);
        expect(code, `validate ${name}: ${t.err()}`).toBe(0);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('gives each kind of node its own state (`render --node`)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'deploy-fleet-'));
    try {
      for (const [name, text] of files) writeFileSync(join(dir, name), text);
      const render = async (node: string) => {
        const t = io();
        expect(await main(['render', '-f', dir, '--node', node], t.io), t.err()).toBe(0);
        return t.out();
      };
      const edge = await render('edge-01');
      const worker = await render('worker-7');
      const branch = await render('branch-3');
      expect(edge).toContain('192.0.2.10');
      expect(worker).not.toContain('192.0.2.10');
      expect(branch).toContain('wwan0');
      expect(edge).not.toContain('wwan0');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('docs/fleet.md', () => {
  it('every complete config it shows is valid', () => {
    const doc = readFileSync(fileURLToPath(new URL('../docs/fleet.md', import.meta.url)), 'utf8');
    const configs = [...doc.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]!).filter((y) => /^version: 1$/m.test(y));
    expect(configs.length).toBeGreaterThan(0);
    for (const y of configs) expect(() => configSchema.parse(parse(y)), y).not.toThrow();
  });
});
