// Issue 9 as an attacker plays it, against the real apiserver and the shipped RBAC: a tenant
// who may create HpcClusters (and nothing else) in its namespace, endpoints of the test's own
// on free loopback ports, and the operator acting as its ServiceAccount.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { AdmissionregistrationV1Api, ApiException, CoreV1Api, RbacAuthorizationV1Api, type KubeConfig, type V1PolicyRule } from '@kubernetes/client-node';
import { CREDENTIALS_LABEL, CREDENTIALS_LABEL_VALUE, GROUP, PLURAL, type HpcClusterObject } from '../../src/api/hpccluster.js';
import { SYNC_REQUESTED_ANNOTATION } from '../../src/controller/sync-request.js';
import { CLUSTER_LABEL, CONTENT_HASH_ANNOTATION, contentHashOf, MANAGED_BY_LABEL, MANAGED_BY_VALUE, SYNC_ID_ANNOTATION } from '../../src/render/configmaps.js';
import { usersDigestOf } from '../../src/domain/trusted-users.js';
import { EndpointAllowList } from '../../src/provider/endpoint-policy.js';
import { DEV_ACCESS_KEY, startSimulator, type Simulator } from '../../tools/simulator/server.js';
import { serviceAccountKubeConfig } from '../../tools/controlplane/controlplane.js';
import { createTestNamespace, testKubeConfig } from '../../tools/harness/cluster.js';
import { waitFor } from '../../tools/harness/wait-for.js';
import { endlessPage, json, offsetOf, startHostileEndpoint, type HostileEndpoint } from '../support/hostile-endpoint.js';
import {
  createCredentialsSecret,
  createHpcCluster,
  installCrd,
  operatorKubeConfig,
  patchHpcCluster,
  readConfigMap,
  readHpcCluster,
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
async function tenantNamespace(
  prefix: string,
  allowedEndpoints?: EndpointAllowList,
  extraRules: V1PolicyRule[] = [],
): Promise<{ namespace: string; tenant: KubeConfig }> {
  const namespace = await createTestNamespace(admin, prefix);
  const operator = await startOperator(await operatorKubeConfig(admin, namespace), namespace, allowedEndpoints === undefined ? {} : { allowedEndpoints });
  operators.push(operator);
  const rbac = admin.makeApiClient(RbacAuthorizationV1Api);
  await admin.makeApiClient(CoreV1Api).createNamespacedServiceAccount({ namespace, body: { metadata: { name: 'tenant' } } });
  await rbac.createNamespacedRole({
    namespace,
    body: { metadata: { name: 'tenant' }, rules: [{ apiGroups: [GROUP], resources: [PLURAL], verbs: ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete'] }, ...extraRules] },
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

  // Once the name is free, the resource syncs at once (its interval is ten minutes), calling the
  // provider: the count above could have been anything but zero.
  await core.deleteNamespacedConfigMap({ namespace, name: 'taken-users' });
  await waitForReady(admin, namespace, 'taken', 'Synced');
  expect(provider.requests.length).toBeGreaterThan(0);
  expect((await readConfigMap(admin, namespace, 'taken-users'))?.metadata?.ownerReferences?.[0]).toMatchObject({ kind: 'HpcCluster', name: 'taken', controller: true });
});

test('finding 5: a plausible users.json a tenant writes is not taken as the last good list, and is repaired', async () => {
  const configMapWriter: V1PolicyRule = { apiGroups: [''], resources: ['configmaps'], verbs: ['get', 'list', 'update', 'patch'] };
  const { namespace, tenant } = await tenantNamespace('trust-forged', undefined, [configMapWriter]);
  await createCredentialsSecret(admin, namespace, 'key', DEV_ACCESS_KEY);
  await createHpcCluster(tenant, namespace, 'lab', spec(simulator.url, 'key'));
  const synced = await waitForReady(admin, namespace, 'lab', 'Synced');
  const real = await readConfigMap(admin, namespace, 'lab-users');
  const realJson = real?.data?.['users.json'] ?? '';
  const [ann] = JSON.parse(realJson) as Record<string, unknown>[];
  // Two plausible users more, one of them root: were it believed, the provider's single user
  // would be a removal of 2 of 3 (over the default 50%), the real sync would be held and the
  // forgery would stay. Its keys and content-hash annotation match the forged data, so it
  // reads as a ConfigMap the operator wrote.
  const fake = [ann, { ...ann, username: 'mallory', uid: 0, gid: 0, userId: 'usr-mallory', hpcUserId: 'hpcuser-mallory' }, { ...ann, username: 'zed', uid: 5002, gid: 5002, userId: 'usr-zed', hpcUserId: 'hpcuser-zed' }];
  const fakeData = { ...real?.data, 'users.json': `${JSON.stringify(fake, null, 2)}\n`, 'mallory.uid': '0', 'mallory.gid': '0' };
  const tenantCore = tenant.makeApiClient(CoreV1Api);
  const current = await tenantCore.readNamespacedConfigMap({ namespace, name: 'lab-users' });
  await tenantCore.replaceNamespacedConfigMap({
    namespace,
    name: 'lab-users',
    body: { ...current, metadata: { ...current.metadata, annotations: { ...current.metadata?.annotations, [CONTENT_HASH_ANNOTATION]: contentHashOf(fakeData) } }, data: fakeData },
  });

  const repaired = await waitFor(async () => {
    const cm = await readConfigMap(admin, namespace, 'lab-users');
    return cm?.data?.['users.json'] === realJson ? cm : undefined;
  }, { description: 'lab-users repaired to the provider\'s list' });
  expect(repaired.data).toEqual(real?.data);
  expect(repaired.metadata?.annotations?.[CONTENT_HASH_ANNOTATION]).toBe(contentHashOf(real?.data ?? {}));
  const after = await waitForReady(admin, namespace, 'lab', 'Synced');
  expect(after.status?.usersDigest).toBe(synced.status?.usersDigest);
  expect(after.status?.usersDigest).toBe(usersDigestOf(realJson));
  expect(after.status?.users?.map((u) => u.username)).toEqual(['ann']);
  const events = await admin.makeApiClient(CoreV1Api).listNamespacedEvent({ namespace });
  expect(events.items.map((e) => e.reason)).not.toContain('RemovalHeld');
  expect(events.items.filter((e) => e.type === 'Warning')).toEqual([]);
});

describe('finding 7: both ConfigMaps are one sync', () => {
  const ann = { username: 'ann', uid: 5001, gid: 5001, role: 'member' as const };
  const bob = { username: 'bob', uid: 5002, gid: 5002, role: 'member' as const };
  const dan = { username: 'dan', uid: 5004, gid: 5004, role: 'member' as const };
  // An hour: a sync the test sees within its deadline is one start-up or an event asked for, not a periodic one.
  const hourly = (clusterId: string) => spec(simulator.url, 'key', { clusterId, syncInterval: '1h' });
  const usersOf = async (namespace: string, name: string) => (await readConfigMap(admin, namespace, name))?.data?.['users.json'] ?? '';
  const syncIds = async (namespace: string, name: string) =>
    Promise.all([`${name}-users`, `${name}-nss`].map(async (cm) => (await readConfigMap(admin, namespace, cm))?.metadata?.annotations?.[SYNC_ID_ANNOTATION]));

  test('a pair left half-written, a forged list and a sync requested while the operator was down are all seen to at start-up', async () => {
    const namespace = await createTestNamespace(admin, 'trust-restart');
    const kubeConfig = await operatorKubeConfig(admin, namespace);
    await createCredentialsSecret(admin, namespace, 'key', DEV_ACCESS_KEY);
    const names = ['half', 'asked', 'quiet', 'forged', 'labelled'];
    for (const name of names) simulator.setUsers(`hpc-${name}`, [ann]);
    // As installed: the lease tells the next leader when the last one was seen.
    let operator = await startOperator(kubeConfig, namespace, { leaderElection: true });
    for (const name of names) await createHpcCluster(admin, namespace, name, hourly(`hpc-${name}`));
    const before = new Map<string, HpcClusterObject>();
    for (const name of names) before.set(name, await waitForReady(admin, namespace, name, 'Synced'));
    for (const name of names) {
      const [usersId, nssId] = await syncIds(namespace, name);
      expect(usersId).toBe(before.get(name)?.status?.usersDigest);
      expect(nssId).toBe(usersId);
    }
    await operator.stop();

    // While it is down, both upstream lists change; the operator was killed after writing the
    // -nss of the next sync of `half` (its -users and status are those of the last one)...
    simulator.setUsers('hpc-half', [ann, bob]);
    simulator.setUsers('hpc-asked', [ann, bob]);
    simulator.setUsers('hpc-quiet', [ann, bob]);
    const core = admin.makeApiClient(CoreV1Api);
    const nss = await core.readNamespacedConfigMap({ namespace, name: 'half-nss' });
    const nextData = { ...nss.data, passwd: `${nss.data?.passwd ?? ''}bob:x:5002:5002:member:/home/bob:/bin/sh\n` };
    const nextAnnotations = { ...nss.metadata?.annotations, [CONTENT_HASH_ANNOTATION]: contentHashOf(nextData), [SYNC_ID_ANNOTATION]: usersDigestOf('the next sync') };
    await core.replaceNamespacedConfigMap({ namespace, name: 'half-nss', body: { ...nss, metadata: { ...nss.metadata, annotations: nextAnnotations }, data: nextData } });
    // ...someone asked `asked` for a sync...
    await patchHpcCluster(admin, namespace, 'asked', { metadata: { annotations: { [SYNC_REQUESTED_ANNOTATION]: 'while-down' } } });
    // ...a tenant forged `forged`'s users.json (ann as uid 0) with annotations that match it and
    // the real sync id, and another labelled `labelled`'s -users (a new version, the same data).
    const forged = await core.readNamespacedConfigMap({ namespace, name: 'forged-users' });
    const forgedData = { ...forged.data, 'users.json': (forged.data?.['users.json'] ?? '').replace(/"uid": \d+/, '"uid": 0') };
    expect(forgedData['users.json']).toContain('"uid": 0');
    const forgedAnnotations = { ...forged.metadata?.annotations, [CONTENT_HASH_ANNOTATION]: contentHashOf(forgedData) };
    await core.replaceNamespacedConfigMap({ namespace, name: 'forged-users', body: { ...forged, metadata: { ...forged.metadata, annotations: forgedAnnotations }, data: forgedData } });
    const labelled = await core.readNamespacedConfigMap({ namespace, name: 'labelled-users' });
    await core.replaceNamespacedConfigMap({ namespace, name: 'labelled-users', body: { ...labelled, metadata: { ...labelled.metadata, labels: { ...labelled.metadata?.labels, team: 'chem' } } } });
    const callsBefore = simulator.calls().length;

    operator = await startOperator(kubeConfig, namespace, { leaderElection: true });
    operators.push(operator);
    const half = await waitFor(async () => {
      const object = await readHpcCluster(admin, namespace, 'half');
      return object.status?.users?.length === 2 ? object : undefined;
    }, { description: 'half synced again' });
    expect(await syncIds(namespace, 'half')).toEqual([half.status?.usersDigest, half.status?.usersDigest]);
    expect(half.status?.usersDigest).toBe(usersDigestOf(await usersOf(namespace, 'half-users')));
    expect((await readConfigMap(admin, namespace, 'half-nss'))?.data?.passwd).toMatch(/^bob:x:5002:5002:member:\/public\/shanhe\/\S+:\/bin\/sh$/m);
    const asked = await waitFor(async () => {
      const object = await readHpcCluster(admin, namespace, 'asked');
      return object.status?.users?.length === 2 ? object : undefined;
    }, { description: 'the request made while the operator was down handled' });
    expect(asked.status?.users?.map((u) => u.username)).toEqual(['ann', 'bob']);
    expect(await syncIds(namespace, 'asked')).toEqual([asked.status?.usersDigest, asked.status?.usersDigest]);
    const repaired = before.get('forged')?.status?.usersDigest;
    await waitFor(async () => usersDigestOf(await usersOf(namespace, 'forged-users')) === repaired, { description: 'the forged users.json repaired' });
    // A resource in step, with no request, waits for its slot: start-up makes no call for it,
    // also when its -users changed version without changing what it holds.
    const since = simulator.calls().slice(callsBefore).map((call) => call.clusterId);
    expect(since).toContain('hpc-half');
    expect(since).toContain('hpc-asked');
    expect(since).toContain('hpc-forged');
    expect(since).not.toContain('hpc-quiet');
    expect(since).not.toContain('hpc-labelled');
    expect((await readHpcCluster(admin, namespace, 'quiet')).status?.usersDigest).toBe(before.get('quiet')?.status?.usersDigest);
  });

  test('a write the apiserver refuses is never Ready=True: Ready False names it, and the sync completes once allowed', async () => {
    const namespace = await createTestNamespace(admin, 'trust-refused');
    const operator = await startOperator(await operatorKubeConfig(admin, namespace), namespace);
    operators.push(operator);
    await createCredentialsSecret(admin, namespace, 'key', DEV_ACCESS_KEY);
    simulator.setUsers('hpc-refused', [ann]);
    await createHpcCluster(admin, namespace, 'lab', hourly('hpc-refused'));
    const synced = await waitForReady(admin, namespace, 'lab', 'Synced');

    // The platform's policy refuses any -nss that lists dan in this namespace.
    const policies = admin.makeApiClient(AdmissionregistrationV1Api);
    const message = 'test policy: no dan in an -nss ConfigMap';
    await policies.createValidatingAdmissionPolicy({
      body: {
        metadata: { name: namespace },
        spec: {
          failurePolicy: 'Fail',
          matchConstraints: { resourceRules: [{ apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE', 'UPDATE'], resources: ['configmaps'] }] },
          validations: [{ expression: "!object.metadata.name.endsWith('-nss') || !has(object.data) || !('passwd' in object.data) || !object.data.passwd.contains('dan:')", message }],
        },
      },
    });
    await policies.createValidatingAdmissionPolicyBinding({
      body: {
        metadata: { name: namespace },
        spec: { policyName: namespace, validationActions: ['Deny'], matchResources: { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': namespace } } } },
      },
    });
    const core = admin.makeApiClient(CoreV1Api);
    await waitFor(async () => {
      try {
        await core.createNamespacedConfigMap({ namespace, body: { metadata: { name: 'probe-nss' }, data: { passwd: 'dan:x' } } });
      } catch (error) {
        return (error as ApiException<unknown>).code === 422;
      }
      await core.deleteNamespacedConfigMap({ namespace, name: 'probe-nss' });
      return false;
    }, { description: 'the policy enforced' });

    simulator.setUsers('hpc-refused', [ann, dan]);
    await patchHpcCluster(admin, namespace, 'lab', { metadata: { annotations: { [SYNC_REQUESTED_ANNOTATION]: 'add-dan' } } });
    const refused = await waitForReady(admin, namespace, 'lab', 'ConfigMapWriteFailed');
    expect(readyOf(refused)?.status).toBe('False');
    expect(readyOf(refused)?.message).toContain('the apiserver refused the write of ConfigMap lab-nss (HTTP 422)');
    expect(readyOf(refused)?.message).toContain(message);
    // Nothing of the refused sync went further: -users and status still agree on the last good list.
    expect(refused.status?.usersDigest).toBe(synced.status?.usersDigest);
    expect(usersDigestOf(await usersOf(namespace, 'lab-users'))).toBe(synced.status?.usersDigest);
    expect(await usersOf(namespace, 'lab-users')).not.toContain('"dan"');

    await policies.deleteValidatingAdmissionPolicyBinding({ name: namespace });
    const done = await waitForReady(admin, namespace, 'lab', 'Synced', { timeoutMs: 90_000 });
    expect(done.status?.users?.map((u) => u.username)).toEqual(['ann', 'dan']);
    expect(await syncIds(namespace, 'lab')).toEqual([done.status?.usersDigest, done.status?.usersDigest]);
    await policies.deleteValidatingAdmissionPolicy({ name: namespace });
  }, 150_000);
});

describe('finding 8: restarts and outages do not spend the quota', () => {
  let provider: Simulator;

  beforeAll(async () => {
    provider = await startSimulator({ accessKeys: [DEV_ACCESS_KEY], clusters: [{ id: 'hpc-budget', users: [{ username: 'ann', uid: 5001, gid: 5001, role: 'member' }] }] });
  });

  afterAll(async () => {
    await provider?.close();
  });

  const reconciles = async (operator: RunningOperator): Promise<number> => {
    const metric = await operator.metrics.registry.getSingleMetric('hpc_user_operator_reconcile_total')?.get();
    return metric?.values.reduce((sum, v) => sum + v.value, 0) ?? 0;
  };

  test('a key the provider refused is not tried again by any number of restarts, until its Secret changes', async () => {
    const namespace = await createTestNamespace(admin, 'trust-refused-key');
    const kubeConfig = await operatorKubeConfig(admin, namespace);
    await createCredentialsSecret(admin, namespace, 'key', { id: DEV_ACCESS_KEY.id, secret: 'not-the-secret' });
    let operator = await startOperator(kubeConfig, namespace);
    await createHpcCluster(admin, namespace, 'lab', spec(provider.url, 'key', { clusterId: 'hpc-budget' }));
    const refused = await waitForReady(admin, namespace, 'lab', 'AuthenticationFailed');
    expect(refused.status?.stalledOn?.generation).toBe(1);
    await operator.stop();
    const calls = provider.stats().requests;
    expect(calls).toBeGreaterThan(0);

    for (let restart = 0; restart < 5; restart++) {
      operator = await startOperator(kubeConfig, namespace);
      // Each start reconciles the resource (it is Stalled, so due at once), and decides from status alone.
      await waitFor(async () => (await reconciles(operator)) > 0, { description: 'the start-up reconcile' });
      await operator.stop();
    }
    expect(provider.stats().requests).toBe(calls);

    // The same restart with the Secret fixed does call: the count above could have been larger.
    await admin.makeApiClient(CoreV1Api).deleteNamespacedSecret({ namespace, name: 'key' });
    await createCredentialsSecret(admin, namespace, 'key', DEV_ACCESS_KEY);
    operator = await startOperator(kubeConfig, namespace);
    operators.push(operator);
    await waitForReady(admin, namespace, 'lab', 'Synced');
    expect(provider.stats().requests).toBeGreaterThan(calls);
  });

  test('an outage backs off across restarts: a restart makes no call before the back-off says', async () => {
    const namespace = await createTestNamespace(admin, 'trust-outage');
    const kubeConfig = await operatorKubeConfig(admin, namespace);
    await createCredentialsSecret(admin, namespace, 'key', DEV_ACCESS_KEY);
    provider.setFaults({ http5xx: { status: 503, rate: 1 } });
    let operator = await startOperator(kubeConfig, namespace);
    const before = provider.stats().requests;
    await createHpcCluster(admin, namespace, 'lab', spec(provider.url, 'key', { clusterId: 'hpc-budget' }));
    // Four failed syncs (about 1 + 2 + 4 s of back-off): the next waits about 8 s.
    await waitFor(async () => ((await readHpcCluster(admin, namespace, 'lab')).status?.consecutiveFailures ?? 0) >= 4, { timeoutMs: 60_000, description: 'four failed syncs' });
    await operator.stop();
    const failing = await readHpcCluster(admin, namespace, 'lab');
    expect(readyOf(failing)?.reason).toBe('ListUsersFailed');
    const failures = failing.status?.consecutiveFailures ?? 0;
    const calls = provider.stats().requests - before;
    // The provider client's own attempts per sync, as measured: every call belongs to a counted sync.
    const perSync = calls / failures;
    expect(Number.isInteger(perSync)).toBe(true);

    const restarts = 5;
    for (let restart = 0; restart < restarts; restart++) {
      operator = await startOperator(kubeConfig, namespace);
      await operator.stop();
    }
    const after = await readHpcCluster(admin, namespace, 'lab');
    const failuresDuring = (after.status?.consecutiveFailures ?? 0) - failures;
    // Only syncs the back-off let through (none, unless the restarts outlasted it), each counted in status.
    expect(failuresDuring).toBeLessThan(restarts);
    expect(provider.stats().requests - before - calls).toBe(failuresDuring * perSync);

    provider.setFaults({ http5xx: null });
    operator = await startOperator(kubeConfig, namespace);
    operators.push(operator);
    const synced = await waitForReady(admin, namespace, 'lab', 'Synced', { timeoutMs: 60_000 });
    expect(synced.status?.consecutiveFailures).toBeUndefined();
  }, 150_000);
});
