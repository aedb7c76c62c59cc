// Runs the operator against the test control plane the way it runs in a cluster: the CRD
// from crds/, the RBAC rules from deploy/ bound to a ServiceAccount, and the controller
// acting as that ServiceAccount, watching one test namespace.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import {
  ApiextensionsV1Api,
  CoreV1Api,
  CustomObjectsApi,
  KubernetesObjectApi,
  PatchStrategy,
  RbacAuthorizationV1Api,
  setHeaderOptions,
  type KubeConfig,
  type KubernetesObject,
  type V1ConfigMap,
} from '@kubernetes/client-node';
import fetch from 'node-fetch';
import { pino } from 'pino';
import { API_VERSION, CREDENTIALS_LABEL, CREDENTIALS_LABEL_VALUE, GROUP, KIND, PLURAL, VERSION, type Condition, type HpcClusterObject, type HpcClusterSpecInput } from '../../src/api/hpccluster.js';
import { KeyBudgets } from '../../src/budget/key-budgets.js';
import { Manager } from '../../src/controller/manager.js';
import { kubeAccessFromKubeConfig } from '../../src/kube/access.js';
import { KubeClient } from '../../src/kube/client.js';
import { OperatorMetrics } from '../../src/controller/metrics.js';
import { EndpointAllowList } from '../../src/provider/endpoint-policy.js';
import { HpcUserSource } from '../../src/provider/user-source.js';
import { CertificateKeeper } from '../../src/webhook/certificate-keeper.js';
import type { AccessKey, Simulator } from '../simulator/server.js';
import type { SimulatedUser } from '../simulator/store.js';
import { kubectlPath } from '../controlplane/build.js';
import { deployFile } from '../deploy-file.js';
import { serviceAccountKubeConfig, writeKubeConfigFile } from '../controlplane/controlplane.js';
import { apiStatusCode } from './cluster.js';
import { waitFor } from './wait-for.js';

const execFileAsync = promisify(execFile);
const CRD_FILE = fileURLToPath(new URL('../../crds/hpcclusters.hpc.shanhe.com.yaml', import.meta.url));
const CRD_NAME = `${PLURAL}.${GROUP}`;
/** The names the shipped install gives the webhook's TLS Secret and configuration. */
export const WEBHOOK_SECRET = 'hpc-user-operator-webhook-tls';
export const WEBHOOK_CONFIGURATION = 'hpc-user-operator';

/** Creates an object, or leaves the existing one: tests in parallel install the same things. */
async function ensure(kubeConfig: KubeConfig, object: KubernetesObject): Promise<void> {
  try {
    await KubernetesObjectApi.makeApiClient(kubeConfig).create(object);
  } catch (error) {
    if (apiStatusCode(error) !== 409) throw error;
  }
}

/** `kubectl apply --server-side` of YAML text as `admin`, with the built kubectl, as users install. */
export async function kubectlApply(admin: KubeConfig, manifests: string): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'hpc-apply-'));
  try {
    writeKubeConfigFile(admin, join(dir, 'kubeconfig'));
    writeFileSync(join(dir, 'manifests.yaml'), manifests);
    await execFileAsync(kubectlPath(), ['--kubeconfig', join(dir, 'kubeconfig'), 'apply', '--server-side', '--force-conflicts', '-f', join(dir, 'manifests.yaml')]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Installs the committed CRD with the built kubectl, as users do, and waits until it is
 * served. (client-node's typed create would drop `default` and `x-kubernetes-validations`,
 * which its model spells differently.)
 */
export async function installCrd(admin: KubeConfig): Promise<void> {
  await kubectlApply(admin, readFileSync(CRD_FILE, 'utf8'));
  const api = admin.makeApiClient(ApiextensionsV1Api);
  await waitFor(
    async () => {
      const current = await api.readCustomResourceDefinition({ name: CRD_NAME });
      return current.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True');
    },
    { description: `CRD ${CRD_NAME} established` },
  );
}

/**
 * A ServiceAccount in `namespace` bound to the shipped ClusterRole (and the leader-election
 * Role in that namespace), and a KubeConfig that acts as it. `scope: 'namespace'` binds the
 * ClusterRole in `namespace` only, as the Helm chart does for watched namespaces; `'cluster'`
 * binds it everywhere, as the default install does.
 */
export async function operatorKubeConfig(
  admin: KubeConfig,
  namespace: string,
  scope: 'namespace' | 'cluster' = 'namespace',
  { webhook = false }: { webhook?: boolean } = {},
): Promise<KubeConfig> {
  const rbac = admin.makeApiClient(RbacAuthorizationV1Api);
  const clusterRole = deployFile('rbac/clusterrole.yaml');
  const leaderRole = deployFile('rbac/leader-election-role.yaml');
  await ensure(admin, clusterRole);
  await admin.makeApiClient(CoreV1Api).createNamespacedServiceAccount({ namespace, body: { metadata: { name: 'hpc-user-operator' } } });
  const subjects = [{ kind: 'ServiceAccount', name: 'hpc-user-operator', namespace }];
  const toClusterRole = { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: clusterRole.metadata?.name ?? '' };
  if (scope === 'cluster') {
    await rbac.createClusterRoleBinding({ body: { metadata: { name: `hpc-user-operator-${namespace}` }, roleRef: toClusterRole, subjects } });
  } else {
    await rbac.createNamespacedRoleBinding({ namespace, body: { metadata: { name: 'hpc-user-operator' }, roleRef: toClusterRole, subjects } });
  }
  await rbac.createNamespacedRole({ namespace, body: { ...leaderRole, metadata: { ...leaderRole.metadata, namespace } } });
  await rbac.createNamespacedRoleBinding({
    namespace,
    body: { metadata: { name: 'hpc-user-operator-leader-election' }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: leaderRole.metadata?.name ?? '' }, subjects },
  });
  if (webhook) {
    // The webhook's TLS Secret in the operator's namespace, and its MutatingWebhookConfiguration.
    const webhookRole = deployFile('rbac/webhook-role.yaml');
    const webhookClusterRole = deployFile('rbac/webhook-clusterrole.yaml');
    await rbac.createNamespacedRole({ namespace, body: { ...webhookRole, metadata: { ...webhookRole.metadata, namespace } } });
    await rbac.createNamespacedRoleBinding({
      namespace,
      body: { metadata: { name: 'hpc-user-operator-webhook' }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: webhookRole.metadata?.name ?? '' }, subjects },
    });
    await ensure(admin, webhookClusterRole);
    await rbac.createClusterRoleBinding({
      body: {
        metadata: { name: `hpc-user-operator-webhook-${namespace}` },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: webhookClusterRole.metadata?.name ?? '' },
        subjects,
      },
    });
  }
  return serviceAccountKubeConfig(admin, namespace, 'hpc-user-operator');
}

export interface RunningOperator {
  manager: Manager;
  metrics: OperatorMetrics;
  stop(): Promise<void>;
}

/** The webhook of an operator started by `startOperator`: managed certificates for 127.0.0.1. */
export interface TestWebhookOptions {
  /** The operator's own namespace: its TLS Secret. */
  namespace: string;
  /** Life of a serving certificate (default 1 h). */
  validityMs?: number;
  /** Renew it this long before it ends (default a third of validityMs). */
  renewBeforeMs?: number;
  checkIntervalMs?: number;
}

/**
 * The controller in this process, watching `namespace` only (or the namespaces listed; leader
 * election then uses the first), as `kubeConfig`'s identity.
 */
export async function startOperator(
  kubeConfig: KubeConfig,
  namespaces: string | string[],
  options: {
    leaderElection?: boolean;
    identity?: string;
    unwatchedLimitMs?: number;
    providerTimeoutMs?: number;
    allowedEndpoints?: EndpointAllowList;
    webhook?: TestWebhookOptions;
  } = {},
): Promise<RunningOperator> {
  const watched = typeof namespaces === 'string' ? [namespaces] : namespaces;
  const namespace = watched[0] ?? 'default';
  const metrics = new OperatorMetrics();
  const logger = pino({ level: process.env.HPC_TEST_LOG_LEVEL ?? 'silent' });
  const webhook = options.webhook;
  // The simulator's quota is the one under test; the operator's own budget stays out of the way,
  // and its window is short, so a QuotaExceeded a test provokes pauses that key for seconds only.
  const budget = new KeyBudgets({ defaultRate: { calls: 1_000_000, windowMs: 10_000 } });
  const manager = new Manager({
    kube: kubeAccessFromKubeConfig(kubeConfig),
    namespaces: watched,
    concurrency: 4,
    userSource: new HpcUserSource({
      timeoutMs: options.providerTimeoutMs ?? 2_000,
      // The simulators of the tests listen on loopback ports of their own.
      allowedEndpoints: options.allowedEndpoints ?? new EndpointAllowList([], true),
      retry: { maxAttempts: 2, baseDelayMs: 50, maxDelayMs: 200 },
      rateLimiters: budget,
      onRequest: (outcome) => metrics.countProviderRequest(outcome),
    }),
    budget,
    metrics,
    logger,
    identity: options.identity ?? `test-${namespace}`,
    drainTimeoutMs: 5_000,
    metricsAddr: '127.0.0.1:0',
    healthAddr: '127.0.0.1:0',
    ...(options.leaderElection === true ? { leaderElection: { namespace, name: 'hpc-user-operator' } } : {}),
    ...(options.unwatchedLimitMs === undefined ? {} : { unwatchedLimitMs: options.unwatchedLimitMs }),
    ...(webhook === undefined
      ? {}
      : {
          webhook: {
            addr: '127.0.0.1:0',
            certificates: new CertificateKeeper({
              client: new KubeClient(kubeAccessFromKubeConfig(kubeConfig)),
              namespace: webhook.namespace,
              secretName: WEBHOOK_SECRET,
              managed: {
                policy: { hosts: ['127.0.0.1'], validityMs: webhook.validityMs ?? 3_600_000, ...(webhook.renewBeforeMs === undefined ? {} : { renewBeforeMs: webhook.renewBeforeMs }) },
                webhookConfigurationName: WEBHOOK_CONFIGURATION,
              },
              checkIntervalMs: webhook.checkIntervalMs ?? 1_000,
              logger,
            }),
          },
        }),
  });
  await manager.start();
  return { manager, metrics, stop: () => manager.stop() };
}

/** A Secret holding a simulator access key under the default key names, lent to the operator by its label. */
export async function createCredentialsSecret(
  admin: KubeConfig,
  namespace: string,
  name: string,
  key: AccessKey,
  annotations?: Record<string, string>,
): Promise<void> {
  await admin.makeApiClient(CoreV1Api).createNamespacedSecret({
    namespace,
    body: {
      metadata: { name, labels: { [CREDENTIALS_LABEL]: CREDENTIALS_LABEL_VALUE }, ...(annotations === undefined ? {} : { annotations }) },
      stringData: { access_key_id: key.id, secret_access_key: key.secret },
    },
  });
}

export function hpcClusterManifest(namespace: string, name: string, spec: HpcClusterSpecInput): HpcClusterObject {
  return { apiVersion: API_VERSION, kind: KIND, metadata: { name, namespace }, spec };
}

export async function createHpcCluster(admin: KubeConfig, namespace: string, name: string, spec: HpcClusterSpecInput): Promise<HpcClusterObject> {
  return (await admin.makeApiClient(CustomObjectsApi).createNamespacedCustomObject({
    group: GROUP,
    version: VERSION,
    namespace,
    plural: PLURAL,
    body: hpcClusterManifest(namespace, name, spec),
  })) as HpcClusterObject;
}

export async function readHpcCluster(admin: KubeConfig, namespace: string, name: string): Promise<HpcClusterObject> {
  return (await admin.makeApiClient(CustomObjectsApi).getNamespacedCustomObject({ group: GROUP, version: VERSION, namespace, plural: PLURAL, name })) as HpcClusterObject;
}

/** Merge-patches an HpcCluster (spec or metadata), as `kubectl patch --type merge` does. */
export async function patchHpcCluster(admin: KubeConfig, namespace: string, name: string, patch: object): Promise<void> {
  await admin
    .makeApiClient(CustomObjectsApi)
    .patchNamespacedCustomObject({ group: GROUP, version: VERSION, namespace, plural: PLURAL, name, body: patch }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
}

export const readyOf = (object: HpcClusterObject): Condition | undefined => object.status?.conditions?.find((c) => c.type === 'Ready');

/** Waits until the Ready condition has `reason` (and, if given, was set for `generation`). */
export async function waitForReady(
  admin: KubeConfig,
  namespace: string,
  name: string,
  reason: string,
  { generation, timeoutMs = 30_000 }: { generation?: number; timeoutMs?: number } = {},
): Promise<HpcClusterObject> {
  return waitFor(
    async () => {
      const object = await readHpcCluster(admin, namespace, name);
      const ready = readyOf(object);
      const fresh = generation === undefined || ready?.observedGeneration === generation;
      return ready?.reason === reason && fresh ? object : undefined;
    },
    { timeoutMs, description: `${namespace}/${name} Ready reason ${reason}` },
  );
}

/**
 * A new HpcCluster `name` reading simulator cluster `clusterId` (given `users` first) with the
 * credentials of Secret `secret`, waited until it first synced; `spec` adds to or overrides that.
 */
export async function syncedCluster(
  admin: KubeConfig,
  simulator: Pick<Simulator, 'setUsers' | 'url'>,
  cluster: { namespace: string; name: string; clusterId: string; secret: string },
  users: SimulatedUser[],
  spec: Partial<HpcClusterSpecInput> = {},
): Promise<HpcClusterObject> {
  const { namespace, name, clusterId, secret } = cluster;
  simulator.setUsers(clusterId, users);
  await createHpcCluster(admin, namespace, name, {
    clusterId,
    zone: 'jinan1a',
    endpoint: simulator.url,
    allowInsecureHttp: true,
    credentialsSecretRef: { name: secret },
    ...spec,
  });
  return waitForReady(admin, namespace, name, 'Synced');
}

export async function readConfigMap(admin: KubeConfig, namespace: string, name: string): Promise<V1ConfigMap | undefined> {
  try {
    return await admin.makeApiClient(CoreV1Api).readNamespacedConfigMap({ namespace, name });
  } catch (error) {
    if (apiStatusCode(error) === 404) return undefined;
    throw error;
  }
}

export interface MetricSample {
  labels: Map<string, string>;
  value: number;
}

/** The samples of metric `name` in a Prometheus text exposition. */
export function metricSamples(exposition: string, name: string): MetricSample[] {
  const samples: MetricSample[] = [];
  for (const line of exposition.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    const labels = new Map([...line.matchAll(/(\w+)="([^"]*)"/g)].map((m): [string, string] => [m[1] ?? '', m[2] ?? '']));
    samples.push({ labels, value: Number(line.slice(line.lastIndexOf(' ') + 1)) });
  }
  return samples;
}

const WRITE_VERBS = new Set(['POST', 'PUT', 'PATCH', 'DELETE', 'APPLY']);

/**
 * Write requests the kube-apiserver has served for `resources`, from its own /metrics
 * (`apiserver_request_total` by verb and resource): counted where they land, not where
 * the operator thinks it sent them.
 */
export async function apiserverWrites(admin: KubeConfig, resources: readonly string[]): Promise<number> {
  const server = admin.getCurrentCluster()?.server ?? '';
  // client-node's own TLS and credentials, for a path its generated APIs do not cover.
  const options = await admin.applyToFetchOptions({});
  const response = await fetch(`${server}/metrics`, options);
  if (!response.ok) throw new Error(`GET /metrics: HTTP ${response.status}`);
  return metricSamples(await response.text(), 'apiserver_request_total')
    .filter(({ labels }) => WRITE_VERBS.has(labels.get('verb') ?? '') && resources.includes(labels.get('resource') ?? ''))
    .reduce((writes, sample) => writes + sample.value, 0);
}
