// Issue 9 as an attacker plays it, against the real apiserver and the shipped RBAC: a tenant
// who may create HpcClusters (and nothing else) in its namespace, endpoints of the test's own
// on free loopback ports, and the operator acting as its ServiceAccount.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { ApiException, CoreV1Api, RbacAuthorizationV1Api, type KubeConfig } from '@kubernetes/client-node';
import { CREDENTIALS_LABEL, CREDENTIALS_LABEL_VALUE, GROUP, PLURAL } from '../../src/api/hpccluster.js';
import { SYNC_REQUESTED_ANNOTATION } from '../../src/controller/plan.js';
import { CLUSTER_LABEL, MANAGED_BY_LABEL, MANAGED_BY_VALUE } from '../../src/render/configmaps.js';
import { EndpointAllowList } from '../../src/provider/endpoint-policy.js';
import { DEV_ACCESS_KEY, startSimulator, type Simulator } from '../../tools/simulator/server.js';
import { serviceAccountKubeConfig } from '../../tools/controlplane/controlplane.js';
import { createTestNamespace, testKubeConfig } from '../../tools/harness/cluster.js';
import { endlessPage, json, offsetOf, startHostileEndpoint, type HostileEndpoint } from '../support/hostile-endpoint.js';
import {
  createCredentialsSecret,
  createHpcCluster,
  installCrd,
  operatorKubeConfig,
  patchHpcCluster,
  readConfigMap,
  readyOf,
  startOperator,
  waitForReady,
  type RunningOperator,
} from '../../tools/harness/operator.js';

let admin: KubeConfig;
let simulator: Simulator;
const operators: RunningOperator[] = [];
const endpoints: HostileEndpoint[] = [];

beforeAll(async () => {
  admin = testKubeConfig();
  await installCrd(admin);
  simulator = await startSimulator({ accessKeys: [DEV_ACCESS_KEY], clusters: [{ id: 'hpc-good', users: [{ username: 'ann', uid: 5001, gid: 5001, role: 'member' }] }] });
});

afterAll(async () => {
  await Promise.all(operators.map((operator) => operator.stop()));
  await Promise.all(endpoints.map((endpoint) => endpoint.close()));
  await simulator?.close();
});

async function hostile(answer: Parameters<typeof startHostileEndpoint>[0]): Promise<HostileEndpoint> {
  const endpoint = await startHostileEndpoint(answer);
  endpoints.push(endpoint);
  return endpoint;
}

/** A namespace with the operator watching it (as its ServiceAccount) and a tenant who may only manage HpcClusters. */
async function tenantNamespace(prefix: string, allowedEndpoints?: EndpointAllowList): Promise<{ namespace: string; tenant: KubeConfig }> {
  const namespace = await createTestNamespace(admin, prefix);
  const operator = await startOperator(await operatorKubeConfig(admin, namespace), namespace, allowedEndpoints === undefined ? {} : { allowedEndpoints });
  operators.push(operator);
  const rbac = admin.makeApiClient(RbacAuthorizationV1Api);
  await admin.makeApiClient(CoreV1Api).createNamespacedServiceAccount({ namespace, body: { metadata: { name: 'tenant' } } });
  await rbac.createNamespacedRole({
    namespace,
    body: { metadata: { name: 'tenant' }, rules: [{ apiGroups: [GROUP], resources: [PLURAL], verbs: ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete'] }] },
  });
  await rbac.createNamespacedRoleBinding({
    namespace,
    body: {
      metadata: { name: 'tenant' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'tenant' },
      subjects: [{ kind: 'ServiceAccount', name: 'tenant', namespace }],
    },
  });
  return { namespace, tenant: await serviceAccountKubeConfig(admin, namespace, 'tenant') };
}

const spec = (endpoint: string, secret: string, over: Record<string, unknown> = {}) => ({
  clusterId: 'hpc-good',
  zone: 'jinan1a',
  endpoint,
  allowInsecureHttp: true,
  credentialsSecretRef: { name: secret },
  ...over,
});

test('finding 1: a Secret not lent to the operator is neither read nor sent, whatever the HpcCluster names', async () => {
  const { namespace, tenant } = await tenantNamespace('trust-secret');
  const core = admin.makeApiClient(CoreV1Api);
  await core.createNamespacedSecret({ namespace, body: { metadata: { name: 'db-creds' }, stringData: { password: 'database-password-42' } } });
  // The tenant cannot read it itself...
  const denied = await tenant.makeApiClient(CoreV1Api).readNamespacedSecret({ namespace, name: 'db-creds' }).catch((e: unknown) => e);
  expect((denied as ApiException<unknown>).code).toBe(403);
  // ...and points an HpcCluster of its own at it and at an endpoint of its own.
  const collector = await hostile((_req, res) => json(res, { action: 'HpcUserListUsersResponse', ret_code: 0, total_count: 0, user_set: [] }));
  await createHpcCluster(tenant, namespace, 'exfiltrate', spec(collector.url, 'db-creds', { credentialsSecretRef: { name: 'db-creds', accessKeyIdKey: 'password', secretAccessKeyKey: 'password' } }));

  const refused = await waitForReady(admin, namespace, 'exfiltrate', 'CredentialsNotFound');
  expect(readyOf(refused)?.message).toContain(`labelled ${CREDENTIALS_LABEL}: "${CREDENTIALS_LABEL_VALUE}"`);
  expect(JSON.stringify(refused.status)).not.toContain('database-password-42');
  expect(collector.requests).toEqual([]);

  // The same HpcCluster on a Secret its owner lent to the operator does reach the endpoint:
  // the count above could have been anything but zero.
  await createCredentialsSecret(admin, namespace, 'lent', DEV_ACCESS_KEY);
  await createHpcCluster(tenant, namespace, 'lent', spec(collector.url, 'lent'));
  await waitForReady(admin, namespace, 'lent', 'Synced');
  expect(collector.requests.length).toBeGreaterThan(0);
  expect(collector.requests.join('\n')).not.toContain('database-password-42');
});

describe('finding 2: endpoints', () => {
  let namespace: string;
  let tenant: KubeConfig;
  let unlisted: HostileEndpoint;
  let redirector: HostileEndpoint;
  let errorPage: HostileEndpoint;
  let closedUrl: string;

  beforeAll(async () => {
    unlisted = await hostile((_req, res) => json(res, endlessPage(0, 1)));
    redirector = await hostile((req, res) => res.writeHead(307, { location: `${simulator.url}${req.url ?? ''}` }).end());
    errorPage = await hostile((_req, res) => res.writeHead(404, { 'content-type': 'application/json' }).end('{"ret_code":404,"message":"internal service says hello"}'));
    const closed = await startHostileEndpoint(() => undefined);
    await closed.close();
    closedUrl = closed.url;
    // The platform team allows the simulator and three endpoints that misbehave; loopback as such is not allowed.
    ({ namespace, tenant } = await tenantNamespace('trust-endpoint', new EndpointAllowList([simulator.url, redirector.url, errorPage.url, closedUrl])));
    await createCredentialsSecret(admin, namespace, 'key', DEV_ACCESS_KEY);
  });

  test('an endpoint off the operator\'s allow-list never gets a request', async () => {
    await createHpcCluster(tenant, namespace, 'unlisted', spec(unlisted.url, 'key'));
    const refused = await waitForReady(admin, namespace, 'unlisted', 'EndpointNotAllowed');
    expect(readyOf(refused)?.message).toContain(`endpoint ${unlisted.url} is not allowed by this operator`);
    expect(refused.status?.conditions?.find((c) => c.type === 'Stalled')?.status).toBe('True');
    expect(unlisted.requests).toEqual([]);
    await createHpcCluster(tenant, namespace, 'listed', spec(simulator.url, 'key'));
    await waitForReady(admin, namespace, 'listed', 'Synced');
  });

  test('a redirect is not followed, and a refused port, an error page and a redirect read the same in status', async () => {
    const before = simulator.stats().requests;
    const cases = { redirect: redirector.url, 'error-page': errorPage.url, refused: closedUrl };
    for (const [name, url] of Object.entries(cases)) await createHpcCluster(tenant, namespace, name, spec(url, 'key'));
    const messages = await Promise.all(
      Object.entries(cases).map(async ([name, url]) => readyOf(await waitForReady(admin, namespace, name, 'ListUsersFailed'))?.message?.replace(url, 'ENDPOINT')),
    );
    expect(new Set(messages).size).toBe(1);
    expect(messages[0]).toMatch(/^ListUsers ENDPOINT zone=jinan1a cluster=hpc-good offset=0: no valid ListUsers answer from the endpoint/);
    expect(redirector.requests.length).toBeGreaterThan(0);
    expect(simulator.stats().requests).toBe(before);
  });
});

test('finding 3: the apiserver refuses a syncInterval that would overflow a timer', async () => {
  const namespace = await createTestNamespace(admin, 'trust-interval');
  const refused = await createHpcCluster(admin, namespace, 'slow', spec(simulator.url, 'key', { syncInterval: '1000h' })).catch((e: unknown) => e);
  expect(refused).toBeInstanceOf(ApiException);
  expect((refused as ApiException<unknown>).code).toBe(422);
  expect(String((refused as ApiException<unknown>).body)).toContain('syncInterval must be between 30s and 24h');
  await createHpcCluster(admin, namespace, 'daily', spec(simulator.url, 'key', { syncInterval: '24h' }));
});

test('finding 4: providers that report a billion users stop at their cap while another resource syncs', async () => {
  const { namespace, tenant } = await tenantNamespace('trust-stall');
  await createCredentialsSecret(admin, namespace, 'key', DEV_ACCESS_KEY);
  const endless = await hostile((req, res) => json(res, endlessPage(offsetOf(req), 1_000_000_000)));
  // One more than the operator's workers: before the caps, these held every worker for ever.
  const stallers = ['a', 'b', 'c', 'd', 'e'].map((suffix) => `endless-${suffix}`);
  for (const name of stallers) await createHpcCluster(tenant, namespace, name, spec(endless.url, 'key'));
  await createHpcCluster(tenant, namespace, 'good', spec(simulator.url, 'key'));

  await waitForReady(admin, namespace, 'good', 'Synced');
  for (const name of stallers) {
    const stopped = await waitForReady(admin, namespace, name, 'SyncLimitExceeded');
    expect(readyOf(stopped)?.message).toContain('the provider reports 1000000000 users, more than this operator\'s limit of 50000 per listing');
  }
  // Each stopped at its first page.
  expect(endless.requests.every((url) => url.includes('&offset=0&'))).toBe(true);
});

test('finding 6: a ConfigMap name held by another gets ConfigMapConflict without a provider call, and is never adopted', async () => {
  const { namespace, tenant } = await tenantNamespace('trust-names');
  await createCredentialsSecret(admin, namespace, 'key', DEV_ACCESS_KEY);
  const provider = await hostile((_req, res) => json(res, { action: 'HpcUserListUsersResponse', ret_code: 0, total_count: 0, user_set: [] }));
  const core = admin.makeApiClient(CoreV1Api);
  // Someone else's ConfigMap under the name an HpcCluster writes, without the operator's labels...
  const unlabelled = { 'users.json': '[]', note: 'not the operator\'s' };
  await core.createNamespacedConfigMap({ namespace, body: { metadata: { name: 'taken-users' }, data: unlabelled } });
  // ...and one labelled as the operator's but controlled by another object.
  const holder = await core.createNamespacedConfigMap({ namespace, body: { metadata: { name: 'holder' } } });
  const holderUid = holder.metadata?.uid ?? '';
  const ownerReferences = [{ apiVersion: 'v1', kind: 'ConfigMap', name: 'holder', uid: holderUid, controller: true }];
  const labels = { [MANAGED_BY_LABEL]: MANAGED_BY_VALUE, [CLUSTER_LABEL]: 'owned' };
  await core.createNamespacedConfigMap({ namespace, body: { metadata: { name: 'owned-nss', labels, ownerReferences }, data: { passwd: 'theirs' } } });
  await createHpcCluster(tenant, namespace, 'taken', spec(provider.url, 'key'));
  await createHpcCluster(tenant, namespace, 'owned', spec(provider.url, 'key'));

  const taken = await waitForReady(admin, namespace, 'taken', 'ConfigMapConflict');
  expect(readyOf(taken)?.message).toContain('ConfigMap taken-users already exists and was not written by this operator');
  const owned = await waitForReady(admin, namespace, 'owned', 'ConfigMapConflict');
  expect(readyOf(owned)?.message).toContain('ConfigMap owned-nss is controlled by ConfigMap holder');
  expect((await readConfigMap(admin, namespace, 'taken-users'))?.data).toEqual(unlabelled);
  const kept = await readConfigMap(admin, namespace, 'owned-nss');
  expect(kept?.data).toEqual({ passwd: 'theirs' });
  expect(kept?.metadata?.ownerReferences?.map((ref) => ref.uid)).toEqual([holderUid]);
  expect(provider.requests).toEqual([]);

  // Once the name is free, a sync request goes ahead: the count above could have been anything but zero.
  await core.deleteNamespacedConfigMap({ namespace, name: 'taken-users' });
  await patchHpcCluster(tenant, namespace, 'taken', { metadata: { annotations: { [SYNC_REQUESTED_ANNOTATION]: 'name-freed' } } });
  await waitForReady(admin, namespace, 'taken', 'Synced');
  expect(provider.requests.length).toBeGreaterThan(0);
  expect((await readConfigMap(admin, namespace, 'taken-users'))?.metadata?.ownerReferences?.[0]).toMatchObject({ kind: 'HpcCluster', name: 'taken', controller: true });
});
