// The Kubernetes manifests (deploy/kubernetes): each overlay rendered by kustomize (kubectl's built-in one),
// every object validated against the Kubernetes API's OpenAPI schemas (kubernetes-models), and the objects
// checked against what the architecture needs: the services' ports and probes, a non-root read-only runtime,
// requests and limits, budgets and autoscalers that name real Deployments, configuration keys the code reads,
// and network policies that allow exactly the architecture's flows between the services.
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { repoPath } from './observability-files.js';
import { communicatorDeadlineMs, defaultShutdownDeadlineMs } from './shutdown-deadlines.js';

const run = promisify(execFile);
const OVERLAYS = ['small', 'large'] as const;
const SERVICE_PORTS: Record<string, number> = {
  secretary: 8000,
  guesser: 8001,
  'system-analyst': 8002,
  communicator: 8003,
};
/** The flows between the services that the architecture has (docs/architecture.md): source → target:port. */
const ARCHITECTURE_FLOWS = new Set([
  'secretary→guesser:8001',
  'secretary→system-analyst:8002',
  'secretary→communicator:8003',
  'communicator→secretary:8000',
]);

type Labels = Record<string, string>;
type LabelSelector = {
  matchLabels?: Labels;
  matchExpressions?: { key: string; operator: string; values?: string[] }[];
};
type K8sObject = {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Labels };
  spec?: Record<string, unknown>;
  data?: Record<string, string>;
};
type Container = {
  name: string;
  image: string;
  ports?: { name?: string; containerPort: number }[];
  env?: { name: string; value?: string }[];
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext?: {
    allowPrivilegeEscalation?: boolean;
    readOnlyRootFilesystem?: boolean;
    capabilities?: { drop?: string[] };
  };
  readinessProbe?: { httpGet?: { path: string; port: string | number } };
  livenessProbe?: { httpGet?: unknown; tcpSocket?: { port: string | number } };
  startupProbe?: { httpGet?: unknown; tcpSocket?: { port: string | number } };
};
type PodSpec = {
  containers: Container[];
  initContainers?: Container[];
  securityContext?: { runAsNonRoot?: boolean; runAsUser?: number };
  automountServiceAccountToken?: boolean;
};
type PodTemplate = { metadata: { labels: Labels }; spec: PodSpec };
type NetworkPolicyPeer = { podSelector?: LabelSelector; namespaceSelector?: LabelSelector; ipBlock?: unknown };
type NetworkPolicyRule = { from?: NetworkPolicyPeer[]; to?: NetworkPolicyPeer[]; ports?: { port?: number }[] };

/** `kubectl kustomize` of an overlay, parsed into objects. */
async function render(overlay: string): Promise<K8sObject[]> {
  const { stdout } = await run('kubectl', ['kustomize', repoPath(`deploy/kubernetes/overlays/${overlay}`)], {
    maxBuffer: 16 * 1024 * 1024,
  });
  return parseAllDocuments(stdout).map((d) => d.toJS() as K8sObject);
}

/**
 * Validates one object against the API schema of its apiVersion and kind, as kubernetes-models ships them
 * (generated from the Kubernetes OpenAPI document): `v1` → kubernetes-models/v1/<Kind>, `apps/v1` →
 * kubernetes-models/apps/v1/<Kind>. Throws with the schema's message when the object does not conform.
 */
async function validateAgainstApiSchema(object: K8sObject): Promise<void> {
  const module = (await import(`kubernetes-models/${object.apiVersion}/${object.kind}`)) as Record<
    string,
    new (data: unknown) => { validate(): void }
  >;
  const Model = module[object.kind] ?? module['default'];
  if (!Model) throw new Error(`no model for ${object.apiVersion} ${object.kind}`);
  new Model(object).validate();
}

function selects(selector: LabelSelector | undefined, labels: Labels): boolean {
  if (!selector) return true;
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) if (labels[k] !== v) return false;
  for (const e of selector.matchExpressions ?? []) {
    const value = labels[e.key];
    if (e.operator === 'In' && !(value !== undefined && e.values?.includes(value))) return false;
    if (e.operator === 'NotIn' && value !== undefined && e.values?.includes(value)) return false;
    if (e.operator === 'Exists' && value === undefined) return false;
    if (e.operator === 'DoesNotExist' && value !== undefined) return false;
  }
  return true;
}

/** Whether a rule's peers admit a pod with these labels in the same namespace (an empty list admits all). */
function peersAdmit(peers: NetworkPolicyPeer[] | undefined, labels: Labels): boolean {
  if (!peers || peers.length === 0) return true;
  return peers.some((p) => !p.ipBlock && selects(p.podSelector, labels));
}

function portsAdmit(ports: { port?: number }[] | undefined, port: number): boolean {
  return !ports || ports.length === 0 || ports.some((p) => p.port === undefined || p.port === port);
}

/**
 * NetworkPolicy semantics for a pod-to-pod connection in one namespace: allowed when the target has no policy
 * of type Ingress or one of its Ingress rules admits the source and port, and likewise for the source's
 * Egress policies (networking.k8s.io/v1 NetworkPolicy reference).
 */
function connectionAllowed(policies: K8sObject[], source: Labels, target: Labels, port: number): boolean {
  const direction = (pod: Labels, type: 'Ingress' | 'Egress') =>
    policies.filter((p) => {
      const spec = p.spec as { podSelector: LabelSelector; policyTypes?: string[] };
      return selects(spec.podSelector, pod) && (spec.policyTypes ?? ['Ingress']).includes(type);
    });
  const ingress = direction(target, 'Ingress');
  const egress = direction(source, 'Egress');
  const ingressOk =
    ingress.length === 0 ||
    ingress.some((p) =>
      ((p.spec as { ingress?: NetworkPolicyRule[] }).ingress ?? []).some(
        (r) => peersAdmit(r.from, source) && portsAdmit(r.ports, port),
      ),
    );
  const egressOk =
    egress.length === 0 ||
    egress.some((p) =>
      ((p.spec as { egress?: NetworkPolicyRule[] }).egress ?? []).some(
        (r) => peersAdmit(r.to, target) && portsAdmit(r.ports, port),
      ),
    );
  return ingressOk && egressOk;
}

/** The keys .env.example documents: what an operator may set (a test in config-files keeps it complete). */
async function documentedKeys(): Promise<Set<string>> {
  const text = await readFile(repoPath('.env.example'), 'utf8');
  return new Set([...text.matchAll(/^#?\s*([A-Z][A-Z0-9_]+)=/gm)].map((m) => m[1]!));
}

describe.each(OVERLAYS)('Kubernetes overlay %s', (overlay) => {
  let objects: K8sObject[];
  const ofKind = (kind: string) => objects.filter((o) => o.kind === kind);
  const deployments = () => ofKind('Deployment');
  const template = (d: K8sObject) => (d.spec as { template: PodTemplate }).template;

  beforeAll(async () => {
    objects = await render(overlay);
  });

  it('renders, and every object conforms to the Kubernetes API schema of its kind', async () => {
    expect(objects.length).toBeGreaterThan(10);
    const problems: string[] = [];
    for (const object of objects) {
      try {
        await validateAgainstApiSchema(object);
      } catch (err) {
        problems.push(`${object.kind}/${object.metadata.name}: ${(err as Error).message}`);
      }
    }
    expect(problems).toEqual([]);
  });

  it('puts everything in one namespace held to the restricted Pod Security Standard', () => {
    const namespace = ofKind('Namespace');
    expect(namespace).toHaveLength(1);
    expect(namespace[0]!.metadata.labels?.['pod-security.kubernetes.io/enforce']).toBe('restricted');
    for (const o of objects.filter((x) => x.kind !== 'Namespace'))
      expect(o.metadata.namespace, `${o.kind}/${o.metadata.name}`).toBe(namespace[0]!.metadata.name);
  });

  it('runs each service on its port with readiness on /health and liveness that never restarts on a dependency', () => {
    expect(
      deployments()
        .map((d) => d.metadata.name)
        .sort(),
    ).toEqual(
      Object.keys(SERVICE_PORTS)
        .map((s) => `workemon-${s}`)
        .sort(),
    );
    for (const [service, port] of Object.entries(SERVICE_PORTS)) {
      const d = deployments().find((x) => x.metadata.name === `workemon-${service}`)!;
      const container = template(d).spec.containers[0]!;
      expect(container.image).toMatch(new RegExp(`^workemon-${service}:`));
      expect(container.ports?.[0]?.containerPort).toBe(port);
      expect(container.env?.find((e) => e.name === 'PORT')?.value).toBe(String(port));
      expect(container.readinessProbe?.httpGet?.path).toBe('/health');
      expect(container.livenessProbe?.httpGet, 'liveness must not depend on /health').toBeUndefined();
      expect(container.livenessProbe?.tcpSocket).toBeDefined();
      expect(container.startupProbe?.tcpSocket).toBeDefined();
      const service_ = ofKind('Service').find((s) => s.metadata.name === `workemon-${service}`)!;
      const spec = service_.spec as { selector: Labels; ports: { port: number }[] };
      expect(spec.ports[0]!.port).toBe(port);
      expect(selects({ matchLabels: spec.selector }, template(d).metadata.labels)).toBe(true);
      // A Service selects one Deployment's pods only.
      const selected = deployments().filter((x) =>
        selects({ matchLabels: spec.selector }, template(x).metadata.labels),
      );
      expect(selected).toHaveLength(1);
    }
  });

  it('runs every container as non-root on a read-only root filesystem, with requests and limits', () => {
    const pods = [...deployments(), ...ofKind('Job')].map((o) => ({ name: o.metadata.name, spec: template(o).spec }));
    for (const { name, spec } of pods) {
      expect(spec.securityContext?.runAsNonRoot, name).toBe(true);
      expect(spec.securityContext?.runAsUser, name).not.toBe(0);
      expect(spec.automountServiceAccountToken, name).toBe(false);
      for (const c of [...spec.containers, ...(spec.initContainers ?? [])]) {
        expect(c.securityContext?.readOnlyRootFilesystem, `${name}/${c.name}`).toBe(true);
        expect(c.securityContext?.allowPrivilegeEscalation, `${name}/${c.name}`).toBe(false);
        expect(c.securityContext?.capabilities?.drop, `${name}/${c.name}`).toContain('ALL');
        for (const r of ['cpu', 'memory']) {
          expect(c.resources?.requests?.[r], `${name}/${c.name} requests.${r}`).toBeDefined();
        }
        expect(c.resources?.limits?.memory, `${name}/${c.name} limits.memory`).toBeDefined();
      }
    }
  });

  it('migrates before the secretary serves: an init container and a Job run the secretary image migration', () => {
    const secretary = deployments().find((d) => d.metadata.name === 'workemon-secretary')!;
    const init = template(secretary).spec.initContainers ?? [];
    const job = ofKind('Job').find((j) => j.metadata.name === 'workemon-migrate')!;
    for (const c of [init[0], template(job).spec.containers[0]]) {
      expect(c?.image).toMatch(/^workemon-secretary:/);
      expect((c as unknown as { command: string[] }).command.join(' ')).toContain('services/secretary/dist/migrate.js');
    }
  });

  it('has budgets for every service and autoscalers for the secretary and the LLM services only', () => {
    const names = new Set(deployments().map((d) => d.metadata.name));
    for (const pdb of ofKind('PodDisruptionBudget')) {
      const spec = pdb.spec as { selector: LabelSelector; maxUnavailable?: number };
      expect(deployments().filter((d) => selects(spec.selector, template(d).metadata.labels))).toHaveLength(1);
    }
    expect(ofKind('PodDisruptionBudget')).toHaveLength(names.size);
    const scaled = ofKind('HorizontalPodAutoscaler').map((h) => {
      const spec = h.spec as {
        scaleTargetRef: { kind: string; name: string };
        minReplicas: number;
        maxReplicas: number;
        metrics: { type: string; pods?: { metric: { name: string } } }[];
      };
      expect(names.has(spec.scaleTargetRef.name)).toBe(true);
      expect(spec.minReplicas).toBeLessThanOrEqual(spec.maxReplicas);
      expect(spec.metrics.map((m) => m.type).sort()).toEqual(['Pods', 'Resource']);
      expect(spec.metrics.find((m) => m.type === 'Pods')?.pods?.metric.name).toBe('workemon_http_requests_in_flight');
      return spec.scaleTargetRef.name;
    });
    expect(scaled.sort()).toEqual(['workemon-guesser', 'workemon-secretary', 'workemon-system-analyst']);
    // An HPA owns the replica count: the Deployment must not carry one that every apply would reset.
    for (const name of scaled) {
      const d = deployments().find((x) => x.metadata.name === name)!;
      expect((d.spec as { replicas?: number }).replicas, name).toBeUndefined();
    }
  });

  it('gives every service more than its own shutdown deadline between SIGTERM and SIGKILL', async () => {
    const config = ofKind('ConfigMap').find((c) => c.metadata.name === 'workemon-config')!.data ?? {};
    const deadlines: Record<string, number> = {
      secretary: await defaultShutdownDeadlineMs(),
      guesser: await defaultShutdownDeadlineMs(),
      'system-analyst': await defaultShutdownDeadlineMs(),
      communicator: await communicatorDeadlineMs(config),
    };
    for (const [service, deadline] of Object.entries(deadlines)) {
      const d = deployments().find((x) => x.metadata.name === `workemon-${service}`)!;
      const grace = (template(d).spec as { terminationGracePeriodSeconds?: number }).terminationGracePeriodSeconds;
      // Kubernetes' default is 30 s (PodSpec terminationGracePeriodSeconds).
      expect((grace ?? 30) * 1000, service).toBeGreaterThan(deadline);
    }
  });

  it('runs several communicators, rolled one at a time: the poller lease picks the one that polls', () => {
    const d = deployments().find((x) => x.metadata.name === 'workemon-communicator')!;
    const spec = d.spec as { replicas: number; strategy: { type: string } };
    expect(spec.replicas).toBeGreaterThanOrEqual(2);
    expect(spec.strategy.type).toBe('RollingUpdate');
    const config = ofKind('ConfigMap').find((c) => c.metadata.name === 'workemon-config')!;
    expect(config.data?.['POLLER_LEASE_TTL']).toMatch(/^\d+s$/);
  });

  it('gives the LLM services only their own key, which the secretary sends them and nothing else accepts', () => {
    type KeyedContainer = Omit<Container, 'env'> & {
      env?: { name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string } } }[];
      envFrom?: { secretRef?: { name: string }; configMapRef?: { name: string } }[];
    };
    const containers = (service: string) => {
      const spec = template(deployments().find((d) => d.metadata.name === `workemon-${service}`)!).spec;
      return [...spec.containers, ...(spec.initContainers ?? [])] as KeyedContainer[];
    };
    const secretsOf = (c: KeyedContainer) => [
      ...(c.envFrom ?? []).flatMap((e) => (e.secretRef ? [e.secretRef.name] : [])),
      ...(c.env ?? []).flatMap((e) => (e.valueFrom?.secretKeyRef ? [e.valueFrom.secretKeyRef.name] : [])),
    ];
    for (const [service, variable] of [
      ['guesser', 'GUESSER_API_KEY'],
      ['system-analyst', 'SYSTEM_ANALYST_API_KEY'],
    ] as const) {
      for (const c of containers(service)) {
        expect(secretsOf(c), service).not.toContain('workemon-keys');
        expect(c.env?.find((e) => e.name === 'SERVICE_API_KEYS')?.valueFrom?.secretKeyRef, service).toEqual({
          name: 'workemon-llm-keys',
          key: variable,
        });
      }
    }
    // The secretary reads the whole Secret (GUESSER_API_KEY, SYSTEM_ANALYST_API_KEY: the keys it sends); the
    // communicator never sees it.
    expect(containers('secretary').some((c) => secretsOf(c).includes('workemon-llm-keys'))).toBe(true);
    for (const c of containers('communicator')) expect(secretsOf(c)).not.toContain('workemon-llm-keys');
  });

  it('sets only configuration keys the services read', async () => {
    const known = await documentedKeys();
    const keys = [
      ...Object.keys(ofKind('ConfigMap').find((c) => c.metadata.name === 'workemon-config')!.data ?? {}),
      ...deployments().flatMap((d) => template(d).spec.containers.flatMap((c) => (c.env ?? []).map((e) => e.name))),
    ].filter((k) => k !== 'NODE_OPTIONS');
    expect(keys.filter((k) => !known.has(k))).toEqual([]);
  });

  it('allows exactly the architecture’s flows between the services', () => {
    const policies = ofKind('NetworkPolicy');
    const pods = Object.fromEntries(
      deployments().map((d) => [d.metadata.name.replace(/^workemon-/, ''), template(d).metadata.labels]),
    );
    const allowed: string[] = [];
    for (const [source, sourceLabels] of Object.entries(pods))
      for (const [target, targetLabels] of Object.entries(pods)) {
        if (source === target) continue;
        const port = SERVICE_PORTS[target]!;
        if (connectionAllowed(policies, sourceLabels, targetLabels, port)) allowed.push(`${source}→${target}:${port}`);
      }
    expect(new Set(allowed)).toEqual(ARCHITECTURE_FLOWS);
    // Every pod is covered by a default-deny policy of both types.
    for (const labels of Object.values(pods)) {
      const covering = policies.filter((p) => selects((p.spec as { podSelector: LabelSelector }).podSelector, labels));
      const types = new Set(covering.flatMap((p) => (p.spec as { policyTypes: string[] }).policyTypes));
      expect([...types].sort()).toEqual(['Egress', 'Ingress']);
    }
  });
});

describe('Kubernetes overlays differ in size', () => {
  it('large runs more replicas and more LLM concurrency than small', async () => {
    const [small, large] = await Promise.all(OVERLAYS.map(render));
    const minReplicas = (objs: K8sObject[]) =>
      objs
        .filter((o) => o.kind === 'HorizontalPodAutoscaler')
        .map((o) => (o.spec as { minReplicas: number }).minReplicas);
    expect(Math.min(...minReplicas(large!))).toBeGreaterThan(Math.max(...minReplicas(small!)));
    const concurrency = (objs: K8sObject[]) =>
      Number(
        objs.find((o) => o.kind === 'ConfigMap' && o.metadata.name === 'workemon-config')!.data!['LLM_CONCURRENCY'],
      );
    expect(concurrency(large!)).toBeGreaterThan(concurrency(small!));
  });
});
