// The two ways to install the operator, rendered by the real tools (kubectl's kustomize, helm)
// and admitted by the real API server with a server-side dry run: what they install, that they
// agree, and that their CRD and RBAC rules are the ones in crds/ and deploy/rbac/.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { KubeConfig } from '@kubernetes/client-node';
import { parse, parseAllDocuments, stringify } from 'yaml';
import { PROVIDER_ENDPOINTS } from '../../src/provider/endpoint-policy.js';
import { createTestNamespace, deleteTestNamespace, testKubeConfig } from '../../tools/harness/cluster.js';
import { helm, kubectl, serverSideDryRun } from '../support/tools.js';

interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  [field: string]: unknown;
}

interface Container {
  image: string;
  args: string[];
  env: { name: string; valueFrom?: { fieldRef?: { fieldPath: string } } }[];
  resources: unknown;
  securityContext: unknown;
  livenessProbe: { httpGet: { path: string; port: string } };
  readinessProbe: { httpGet: { path: string; port: string } };
  ports: { name: string; containerPort: number }[];
}

interface Deployment extends Manifest {
  spec: { replicas: number; template: { spec: { securityContext: unknown; containers: Container[] } } };
}

const root = fileURLToPath(new URL('../..', import.meta.url));
const chartDir = join(root, 'deploy/helm/hpc-user-operator');
const { version } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string };
const IMAGE = `ghcr.io/hpc-user-operator/hpc-user-operator:${version}`;
const INSTALL_NAMESPACE = 'hpc-user-operator-system';
// The release name that makes the chart's object names those of the kustomize install.
const RELEASE = 'hpc-user-operator';

const readYaml = (path: string): Manifest => parse(readFileSync(join(root, path), 'utf8')) as Manifest;
const manifestsOf = (text: string): Manifest[] =>
  parseAllDocuments(text)
    .map((document) => document.toJS() as Manifest | null)
    .filter((manifest): manifest is Manifest => manifest !== null);
const only = <T extends Manifest = Manifest>(manifests: Manifest[], kind: string): T => {
  const matching = manifests.filter((m) => m.kind === kind);
  if (matching.length !== 1) throw new Error(`expected one ${kind}, found ${matching.length}`);
  return matching[0] as T;
};
/** The one manifest of `kind` named `name`. */
const named = <T extends Manifest = Manifest>(manifests: Manifest[], kind: string, name: string): T => only<T>(manifests.filter((m) => m.metadata.name === name), kind);
const kindsAndNames = (manifests: Manifest[]): string[] => manifests.map((m) => `${m.kind}/${m.metadata.name}`).sort();
const rulesOf = (manifest: Manifest): unknown => (manifest as Manifest & { rules: unknown }).rules;
const containerOf = (deployment: Deployment): Container => {
  const container = deployment.spec.template.spec.containers[0];
  if (container === undefined) throw new Error('the Deployment has no container');
  return container;
};

/** What kubectl reports for each object a dry run admitted: `kind/name serverside-applied (server dry run)`. */
function expectAllAdmitted(output: { stdout: string; stderr: string }, manifests: Manifest[]): void {
  for (const manifest of manifests) {
    expect(output.stdout).toMatch(new RegExp(`/${manifest.metadata.name} serverside-applied \\(server dry run\\)`));
  }
  // Pod Security admission and deprecated APIs answer with warnings, not errors.
  expect(output.stderr).toBe('');
}

let admin: KubeConfig;
let helmNamespace: string;
let workDir: string;
/** What `kubectl kustomize deploy` printed. */
let kustomizeOutput: string;
let kustomized: Manifest[];
let valuesFiles = 0;

/** `helm template` of the chart into the test's namespace: its output, and that parsed. */
async function helmTemplate(args: string[] = []): Promise<{ output: string; rendered: Manifest[] }> {
  const { stdout } = await helm(['template', RELEASE, chartDir, '--namespace', helmNamespace, '--include-crds', ...args]);
  return { output: stdout, rendered: manifestsOf(stdout) };
}

async function helmTemplateWithValues(values: object): Promise<{ output: string; rendered: Manifest[] }> {
  const valuesFile = join(workDir, `values-${String(++valuesFiles)}.yaml`);
  writeFileSync(valuesFile, stringify(values));
  return helmTemplate(['--values', valuesFile]);
}

beforeAll(async () => {
  admin = testKubeConfig();
  workDir = mkdtempSync(join(tmpdir(), 'hpc-deploy-test-'));
  helmNamespace = await createTestNamespace(admin, 'helm');
  // `helm install --create-namespace` makes a namespace without Pod Security labels; this one
  // warns, so that a chart value breaking the restricted standard shows in the dry run.
  await kubectl(['label', 'namespace', helmNamespace, 'pod-security.kubernetes.io/warn=restricted']);
  kustomizeOutput = (await kubectl(['kustomize', join(root, 'deploy')])).stdout;
  kustomized = manifestsOf(kustomizeOutput);
  // A dry run creates nothing, so the namespace the install declares is created for real: its
  // objects need it, and its Pod Security labels judge the Deployment.
  await kubectl(['apply', '--server-side', '-f', '-'], { input: stringify(only(kustomized, 'Namespace')) });
});

afterAll(async () => {
  await deleteTestNamespace(admin, helmNamespace);
  await deleteTestNamespace(admin, INSTALL_NAMESPACE);
  rmSync(workDir, { recursive: true, force: true });
});

describe('kubectl kustomize deploy', () => {
  it('renders the default install, which the API server admits', async () => {
    expect(kindsAndNames(kustomized)).toEqual([
      'ClusterRole/hpc-user-operator',
      'ClusterRole/hpc-user-operator-webhook',
      'ClusterRoleBinding/hpc-user-operator',
      'ClusterRoleBinding/hpc-user-operator-webhook',
      'CustomResourceDefinition/hpcclusters.hpc.shanhe.com',
      'Deployment/hpc-user-operator',
      'MutatingWebhookConfiguration/hpc-user-operator',
      'Namespace/hpc-user-operator-system',
      'PodDisruptionBudget/hpc-user-operator',
      'Role/hpc-user-operator-leader-election',
      'Role/hpc-user-operator-webhook',
      'RoleBinding/hpc-user-operator-leader-election',
      'RoleBinding/hpc-user-operator-webhook',
      'Service/hpc-user-operator-metrics',
      'Service/hpc-user-operator-webhook',
      'ServiceAccount/hpc-user-operator',
      'ValidatingAdmissionPolicy/hpc-user-operator-hpccluster-status',
      'ValidatingAdmissionPolicy/hpc-user-operator-managed-configmaps',
      'ValidatingAdmissionPolicy/hpc-user-operator-pod-identity',
      'ValidatingAdmissionPolicyBinding/hpc-user-operator-hpccluster-status',
      'ValidatingAdmissionPolicyBinding/hpc-user-operator-managed-configmaps',
      'ValidatingAdmissionPolicyBinding/hpc-user-operator-pod-identity',
    ]);
    const clusterScoped = [
      'Namespace',
      'CustomResourceDefinition',
      'ClusterRole',
      'ClusterRoleBinding',
      'MutatingWebhookConfiguration',
      'ValidatingAdmissionPolicy',
      'ValidatingAdmissionPolicyBinding',
    ];
    for (const manifest of kustomized.filter((m) => !clusterScoped.includes(m.kind))) expect(manifest.metadata.namespace).toBe(INSTALL_NAMESPACE);
    expectAllAdmitted(await serverSideDryRun(kustomizeOutput), kustomized);
  });

  it('runs two leader-electing, locked-down replicas of the package version', () => {
    const deployment = only<Deployment>(kustomized, 'Deployment');
    const container = containerOf(deployment);
    expect(deployment.spec.replicas).toBe(2);
    expect(container.image).toBe(IMAGE);
    expect(container.args).toEqual(
      expect.arrayContaining(['run', '--leader-elect', '--metrics-addr=:8080', '--health-addr=:8081', `--allowed-endpoints=${PROVIDER_ENDPOINTS.join(',')}`, '--webhook-addr=:9443', '--webhook-certs=managed']),
    );
    expect(container.env).toEqual([
      { name: 'POD_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
      { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
      { name: 'NODE_OPTIONS', value: '--max-old-space-size=512 --max-semi-space-size=16' },
    ]);
    expect(deployment.spec.template.spec.securityContext).toEqual({ runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532, seccompProfile: { type: 'RuntimeDefault' } });
    expect(container.securityContext).toEqual({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } });
    expect(container.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'health' });
    expect(container.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'health' });
    expect(container.ports).toEqual([
      { name: 'metrics', containerPort: 8080 },
      { name: 'health', containerPort: 8081 },
      { name: 'webhook', containerPort: 9443 },
    ]);
    expect(container.resources).toEqual({ requests: { cpu: '100m', memory: '384Mi' }, limits: { memory: '768Mi' } });
  });

  it('installs the CRD of crds/ and binds the rules of deploy/rbac/ to its ServiceAccount', () => {
    expect(only(kustomized, 'CustomResourceDefinition')).toEqual(readYaml('crds/hpcclusters.hpc.shanhe.com.yaml'));
    const serviceAccount = { kind: 'ServiceAccount', name: 'hpc-user-operator', namespace: INSTALL_NAMESPACE };
    for (const [kind, name, file] of [
      ['ClusterRole', 'hpc-user-operator', 'clusterrole.yaml'],
      ['ClusterRole', 'hpc-user-operator-webhook', 'webhook-clusterrole.yaml'],
      ['Role', 'hpc-user-operator-leader-election', 'leader-election-role.yaml'],
      ['Role', 'hpc-user-operator-webhook', 'webhook-role.yaml'],
    ] as const) {
      expect(rulesOf(named(kustomized, kind, name))).toEqual(rulesOf(readYaml(`deploy/rbac/${file}`)));
      expect(named(kustomized, `${kind}Binding`, name)).toMatchObject({ roleRef: { kind, name }, subjects: [serviceAccount] });
    }
  });

  it('registers the pod identity webhook as SPEC and the issue list it, behind its Service', () => {
    const configuration = only<Manifest & { webhooks: Record<string, unknown>[] }>(kustomized, 'MutatingWebhookConfiguration');
    expect(configuration.webhooks).toEqual([
      {
        name: 'pod-identity.hpc.shanhe.com',
        admissionReviewVersions: ['v1'],
        clientConfig: { service: { name: 'hpc-user-operator-webhook', namespace: INSTALL_NAMESPACE, path: '/mutate-pods', port: 443 } },
        rules: [
          { apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE'], resources: ['pods'], scope: 'Namespaced' },
          { apiGroups: [''], apiVersions: ['v1'], operations: ['UPDATE'], resources: ['pods/ephemeralcontainers'], scope: 'Namespaced' },
        ],
        objectSelector: { matchExpressions: [{ key: 'hpc.shanhe.com/cluster', operator: 'Exists' }] },
        namespaceSelector: { matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['kube-system', INSTALL_NAMESPACE] }] },
        matchPolicy: 'Equivalent',
        failurePolicy: 'Fail',
        sideEffects: 'None',
        reinvocationPolicy: 'IfNeeded',
        timeoutSeconds: 5,
      },
    ]);
    const service = named<Manifest & { spec: { ports: unknown[] } }>(kustomized, 'Service', 'hpc-user-operator-webhook');
    expect(service.spec.ports).toEqual([{ name: 'webhook', port: 443, targetPort: 'webhook' }]);
    expect(containerOf(only<Deployment>(kustomized, 'Deployment')).args).toEqual(
      expect.arrayContaining(['--webhook-secret=hpc-user-operator-webhook-tls', '--webhook-service=hpc-user-operator-webhook', '--webhook-configuration=hpc-user-operator']),
    );
  });
});

describe('the Helm chart', () => {
  it('passes helm lint --strict', async () => {
    const { stdout } = await helm(['lint', '--strict', chartDir]);
    expect(stdout).toContain('1 chart(s) linted, 0 chart(s) failed');
  });

  it('renders with default values what kustomize installs, and the API server admits it', async () => {
    const { output, rendered } = await helmTemplate();
    // Helm leaves the namespace to `helm install --create-namespace`.
    expect(kindsAndNames(rendered)).toEqual(kindsAndNames(kustomized.filter((m) => m.kind !== 'Namespace')));
    expect(only<Deployment>(rendered, 'Deployment').spec).toEqual(only<Deployment>(kustomized, 'Deployment').spec);
    expect(only(rendered, 'CustomResourceDefinition')).toEqual(readYaml('crds/hpcclusters.hpc.shanhe.com.yaml'));
    for (const kind of ['ClusterRole', 'Role', 'MutatingWebhookConfiguration', 'ValidatingAdmissionPolicy', 'ValidatingAdmissionPolicyBinding']) {
      const withoutMetadata = (manifests: Manifest[]) =>
        manifests
          .filter((m) => m.kind === kind)
          .map(({ metadata, ...rest }) => ({ name: metadata.name, ...rest }))
          .sort((a, b) => a.name.localeCompare(b.name));
      expect(withoutMetadata(rendered)).toEqual(
        withoutMetadata(kustomized).map((m) => JSON.parse(JSON.stringify(m).replaceAll(INSTALL_NAMESPACE, helmNamespace)) as unknown),
      );
    }
    expect(rendered.some((m) => m.kind === 'ServiceMonitor')).toBe(false);
    expectAllAdmitted(await serverSideDryRun(output), rendered);
  });

  it('passes watched namespaces, image and log level from a values file, and the API server admits it', async () => {
    const watched = [await createTestNamespace(admin, 'research'), await createTestNamespace(admin, 'teaching')];
    const { output, rendered } = await helmTemplateWithValues({
      image: { repository: 'registry.example.internal/hpc/operator', tag: '0.1.0-rc.1', pullPolicy: 'Always' },
      watchNamespaces: watched,
      logLevel: 'debug',
      resources: { requests: { cpu: '200m', memory: '256Mi' }, limits: { memory: '1Gi' } },
      serviceMonitor: { enabled: false },
    });
    const deployment = only<Deployment>(rendered, 'Deployment');
    const container = containerOf(deployment);
    expect(container).toMatchObject({ image: 'registry.example.internal/hpc/operator:0.1.0-rc.1', imagePullPolicy: 'Always' });
    expect(container.args).toEqual(
      expect.arrayContaining([`--namespaces=${watched.join(',')}`, '--log-level=debug', '--leader-elect', `--allowed-endpoints=${PROVIDER_ENDPOINTS.join(',')}`]),
    );
    // The rules hold in the watched namespaces only (cluster-wide: its own webhook configuration, nothing else).
    expect(rendered.filter((m) => m.kind === 'ClusterRoleBinding').map((m) => m.metadata.name)).toEqual([`${RELEASE}-webhook`]);
    const bindings = rendered.filter((m) => m.kind === 'RoleBinding' && m.metadata.namespace !== helmNamespace) as (Manifest & { roleRef: { kind: string } })[];
    expect(bindings.map((b) => [b.metadata.namespace, b.roleRef.kind])).toEqual(watched.map((ns) => [ns, 'ClusterRole']));
    expect(container.resources).toEqual({ requests: { cpu: '200m', memory: '256Mi' }, limits: { memory: '1Gi' } });
    expect(rendered.some((m) => m.kind === 'ServiceMonitor')).toBe(false);
    expectAllAdmitted(await serverSideDryRun(output), rendered);
  });

  it('places pods by the scheduling values, and the API server admits it', async () => {
    const scheduling = {
      podAnnotations: { 'example.com/team': 'hpc' },
      priorityClassName: 'system-cluster-critical',
      nodeSelector: { 'kubernetes.io/os': 'linux' },
      tolerations: [{ key: 'dedicated', operator: 'Equal', value: 'operators', effect: 'NoSchedule' }],
      affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'kubernetes.io/arch', operator: 'In', values: ['amd64'] }] }] } } },
    };
    const { output, rendered } = await helmTemplateWithValues(scheduling);
    const template = (only<Deployment>(rendered, 'Deployment').spec.template as unknown) as { metadata: { annotations?: unknown }; spec: Record<string, unknown> };
    expect(template.metadata.annotations).toEqual(scheduling.podAnnotations);
    expect(template.spec).toMatchObject({
      priorityClassName: scheduling.priorityClassName,
      nodeSelector: scheduling.nodeSelector,
      tolerations: scheduling.tolerations,
      affinity: scheduling.affinity,
    });
    expectAllAdmitted(await serverSideDryRun(output), rendered);
  });

  it('renders a ServiceMonitor for the metrics Service when enabled', async () => {
    const { rendered } = await helmTemplateWithValues({ serviceMonitor: { enabled: true, interval: '1m', labels: { release: 'prometheus' } } });
    const serviceMonitor = only<Manifest & { spec: { selector: { matchLabels: Record<string, string> }; endpoints: unknown[] } }>(rendered, 'ServiceMonitor');
    const service = named<Manifest & { spec: { ports: { name: string }[] } }>(rendered, 'Service', `${RELEASE}-metrics`);
    expect(serviceMonitor).toMatchObject({ apiVersion: 'monitoring.coreos.com/v1', metadata: { namespace: helmNamespace, labels: { release: 'prometheus' } } });
    const { spec } = serviceMonitor;
    expect(service.metadata.labels).toMatchObject(spec.selector.matchLabels);
    expect(spec.endpoints).toEqual([{ port: service.spec.ports[0]?.name, path: '/metrics', interval: '1m' }]);
  });

  it('without leader election runs one replica, with neither Lease permissions nor a disruption budget', async () => {
    await expect(helmTemplateWithValues({ leaderElection: { enabled: false } })).rejects.toThrow(/replicaCount > 1 needs leaderElection.enabled/);
    const { rendered } = await helmTemplateWithValues({ leaderElection: { enabled: false }, replicaCount: 1 });
    expect(containerOf(only<Deployment>(rendered, 'Deployment')).args.some((arg) => arg.startsWith('--leader-elect'))).toBe(false);
    expect(rendered.filter((m) => ['Role', 'RoleBinding', 'PodDisruptionBudget'].includes(m.kind) && !m.metadata.name.endsWith('-webhook'))).toEqual([]);
  });

  it('with cert-manager, a Certificate for the webhook Secret and the caBundle injected; no write access to Secrets', async () => {
    const { output, rendered } = await helmTemplateWithValues({ webhook: { certManager: { enabled: true, issuerRef: { kind: 'ClusterIssuer', name: 'corp-ca' } } } });
    const certificate = named<Manifest & { spec: Record<string, unknown> }>(rendered, 'Certificate', `${RELEASE}-webhook`);
    expect(certificate.spec).toMatchObject({ secretName: `${RELEASE}-webhook-tls`, dnsNames: [`${RELEASE}-webhook.${helmNamespace}.svc`, `${RELEASE}-webhook.${helmNamespace}.svc.cluster.local`], issuerRef: { kind: 'ClusterIssuer', name: 'corp-ca' } });
    expect(only(rendered, 'MutatingWebhookConfiguration').metadata).toMatchObject({ annotations: { 'cert-manager.io/inject-ca-from': `${helmNamespace}/${RELEASE}-webhook` } });
    expect(rulesOf(named(rendered, 'Role', `${RELEASE}-webhook`))).toEqual([{ apiGroups: [''], resources: ['secrets'], resourceNames: [`${RELEASE}-webhook-tls`], verbs: ['get'] }]);
    expect(containerOf(only<Deployment>(rendered, 'Deployment')).args).toContain('--webhook-certs=secret');
    // cert-manager's CRDs are not installed here: only the objects the API server knows are dry-run.
    const known = rendered.filter((m) => !m.apiVersion.startsWith('cert-manager.io/'));
    expect(output).toContain('kind: Certificate');
    expectAllAdmitted(await serverSideDryRun(known.map((m) => stringify(m)).join('---\n')), known);
  });
});
