// The controller against the real control plane and the provider simulator: one operator
// (acting as a ServiceAccount bound to the shipped RBAC rules) watches this file's namespace,
// and each test drives its own HpcCluster through one path of SPEC.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { CoreV1Api, PatchStrategy, setHeaderOptions, type KubeConfig, type V1ConfigMap } from '@kubernetes/client-node';
import { CREDENTIALS_LABEL, CREDENTIALS_LABEL_VALUE, type HpcClusterSpecInput } from '../../src/api/hpccluster.js';
import { usersDigestOf } from '../../src/domain/trusted-users.js';
import type { HpcUser } from '../../src/domain/user.js';
import { DEV_ACCESS_KEY, startSimulator, type Simulator } from '../../tools/simulator/server.js';
import type { FaultPatch } from '../../tools/simulator/faults.js';
import { simulatedUser, type SimulatedUser } from '../../tools/simulator/store.js';
import { createTestNamespace, testKubeConfig } from '../../tools/harness/cluster.js';
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
  syncedCluster as syncedClusterIn,
  waitForReady,
  type RunningOperator,
} from '../../tools/harness/operator.js';
import { waitFor } from '../../tools/harness/wait-for.js';

let admin: KubeConfig;
let core: CoreV1Api;
let namespace: string;
let simulator: Simulator;
let operator: RunningOperator;
const SECRET = 'shanhe-api-key';
/** A key of one resource's own, so that counting its calls sees no other resource's retries. */
const OWN_KEY = { id: 'OWNACCESSKEYID', secret: 'own-secret-access-key' };
/** The label that lends a Secret to the operator. */
const LENT = { [CREDENTIALS_LABEL]: CREDENTIALS_LABEL_VALUE };
/** QuotaExceeded pauses every resource of the key that met it: the resource that meets it has a key of its own. */
const QUOTA_KEY = { id: 'QUOTAACCESSKEYID', secret: 'quota-secret-access-key' };

beforeAll(async () => {
  admin = testKubeConfig();
  core = admin.makeApiClient(CoreV1Api);
  await installCrd(admin);
  namespace = await createTestNamespace(admin, 'sync');
  simulator = await startSimulator({ accessKeys: [DEV_ACCESS_KEY, OWN_KEY, QUOTA_KEY] });
  await createCredentialsSecret(admin, namespace, SECRET, DEV_ACCESS_KEY);
  await createCredentialsSecret(admin, namespace, 'own-key', OWN_KEY);
  await createCredentialsSecret(admin, namespace, 'quota-key', QUOTA_KEY);
  operator = await startOperator(await operatorKubeConfig(admin, namespace), namespace);
});

afterAll(async () => {
  await operator?.stop();
  await simulator?.close();
});

const users = (prefix: string, count: number, firstUid = 20000): SimulatedUser[] =>
  Array.from({ length: count }, (_, i) => simulatedUser(`${prefix}${String(i).padStart(3, '0')}`, firstUid + i));

/** A new HpcCluster on simulator cluster `clusterId`, on the Secret SECRET unless `spec` says otherwise, waited until it first synced. */
const syncedCluster = (name: string, clusterId: string, seed: SimulatedUser[], spec: Partial<HpcClusterSpecInput> = {}) =>
  syncedClusterIn(admin, simulator, { namespace, name, clusterId, secret: SECRET }, seed, spec);

let syncRequests = 0;

async function reconcileCount(): Promise<number> {
  const metric = await operator.metrics.registry.getSingleMetric('hpc_user_operator_reconcile_total')?.get();
  return metric?.values.reduce((sum, v) => sum + v.value, 0) ?? 0;
}

/** Asks for a sync now, as a user would, and waits until it ran and the resource reports `reason`. */
async function requestSync(name: string, reason: string) {
  const reconcilesBefore = await reconcileCount();
  await patchHpcCluster(admin, namespace, name, { metadata: { annotations: { 'hpc.shanhe.com/sync-requested': String(++syncRequests) } } });
  return waitFor(
    async () => {
      if ((await reconcileCount()) <= reconcilesBefore) return undefined;
      const object = await readHpcCluster(admin, namespace, name);
      return readyOf(object)?.reason === reason ? object : undefined;
    },
    { description: `${name} reports ${reason} after a sync request` },
  );
}

async function configMaps(name: string): Promise<[V1ConfigMap | undefined, V1ConfigMap | undefined]> {
  return [await readConfigMap(admin, namespace, `${name}-users`), await readConfigMap(admin, namespace, `${name}-nss`)];
}

async function eventsOf(name: string) {
  const list = await core.listNamespacedEvent({ namespace, fieldSelector: `involvedObject.name=${name}` });
  return list.items;
}

test('a new HpcCluster becomes Ready with both ConfigMaps exactly as SPEC shows them', async () => {
  const seed = [simulatedUser('usr-vceaHsJu', 41522, { nasMountPoint: '/public/shanhe/s0723', hpcUserId: 'hpcuser-8a310ir1', userId: 'usr-vceaHsJu' }), simulatedUser('bob', 41523, { gid: 41522, role: 'admin' })];
  const object = await syncedCluster('chem-lab', 'hpc-qig9xu97', seed);

  const expectedUsers: HpcUser[] = [
    { username: 'bob', uid: 41523, gid: 41522, role: 'admin', nasMountPoint: '/public/shanhe/bob', userId: 'usr-bob', hpcUserId: 'hpcuser-bob' },
    { username: 'usr-vceaHsJu', uid: 41522, gid: 41522, role: 'member', nasMountPoint: '/public/shanhe/s0723', userId: 'usr-vceaHsJu', hpcUserId: 'hpcuser-8a310ir1' },
  ];
  expect(object.status).toMatchObject({
    observedGeneration: 1,
    userCount: 2,
    users: expectedUsers,
    usersTruncated: false,
    skippedUserCount: 0,
    configMaps: ['chem-lab-users', 'chem-lab-nss'],
  });
  expect(readyOf(object)).toMatchObject({ status: 'True', reason: 'Synced', message: '2 users synced' });
  expect(object.status?.conditions?.find((c) => c.type === 'Stalled')?.status).toBe('False');
  expect(object.status?.conditions?.find((c) => c.type === 'Reconciling')?.status).toBe('False');

  const [usersCm, nssCm] = await configMaps('chem-lab');
  for (const cm of [usersCm, nssCm]) {
    expect(cm?.metadata?.labels).toMatchObject({ 'app.kubernetes.io/managed-by': 'hpc-user-operator', 'hpc.shanhe.com/cluster': 'chem-lab' });
    expect(cm?.metadata?.annotations?.['hpc.shanhe.com/content-hash']).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(cm?.metadata?.ownerReferences).toEqual([
      { apiVersion: 'hpc.shanhe.com/v1alpha1', kind: 'HpcCluster', name: 'chem-lab', uid: object.metadata.uid, controller: true, blockOwnerDeletion: true },
    ]);
  }
  expect(JSON.parse(usersCm?.data?.['users.json'] ?? '')).toEqual(expectedUsers);
  // status vouches for exactly the users.json written (what admission trusts)
  expect(object.status?.usersDigest).toBe(usersDigestOf(usersCm?.data?.['users.json'] ?? ''));
  // and records the versions it wrote them at: a restart knows what they hold without reading them
  expect(object.status?.configMapVersions).toEqual({ users: usersCm?.metadata?.resourceVersion, nss: nssCm?.metadata?.resourceVersion });
  // The operator names itself as the manager of what it writes (its requests' User-Agent).
  for (const cm of [usersCm, nssCm]) expect(cm?.metadata?.managedFields?.map((f) => f.manager)).toEqual(['hpc-user-operator']);
  expect(object.metadata.managedFields?.find((f) => f.subresource === 'status')?.manager).toBe('hpc-user-operator');
  expect(usersCm?.data).toMatchObject({ 'usr-vceaHsJu.uid': '41522', 'usr-vceaHsJu.gid': '41522', 'usr-vceaHsJu.nas': '/public/shanhe/s0723', 'bob.uid': '41523', 'bob.gid': '41522' });
  expect(nssCm?.data).toEqual({
    passwd: 'bob:x:41523:41522:admin:/public/shanhe/bob:/bin/sh\nusr-vceaHsJu:x:41522:41522:member:/public/shanhe/s0723:/bin/sh\n',
    group: 'usr-vceaHsJu:x:41522:bob,usr-vceaHsJu\n',
  });
  const events = await eventsOf('chem-lab');
  expect(events.map((e) => [e.type, e.reason, e.message])).toContainEqual(['Normal', 'Synced', '2 users synced']);
});

test('users added, removed and changed upstream arrive on a requested sync, with an event', async () => {
  await syncedCluster('changes', 'hpc-changes', [simulatedUser('ann', 30001), simulatedUser('ben', 30002), simulatedUser('cat', 30003)]);
  simulator.addUser('hpc-changes', simulatedUser('dan', 30004));
  simulator.removeUser('hpc-changes', 'ben');
  simulator.updateUser('hpc-changes', 'cat', { nasMountPoint: '/public/shanhe/cat-new' });

  await waitFor(
    async () => {
      await requestSync('changes', 'Synced');
      const object = await readHpcCluster(admin, namespace, 'changes');
      return object.status?.users?.map((u) => u.username).join(',') === 'ann,cat,dan';
    },
    { description: 'the upstream changes in status' },
  );
  const [usersCm] = await configMaps('changes');
  expect(usersCm?.data?.['cat.nas']).toBe('/public/shanhe/cat-new');
  expect(usersCm?.data?.['ben.uid']).toBeUndefined();
  expect(usersCm?.data?.['dan.uid']).toBe('30004');
  const events = await eventsOf('changes');
  expect(events.map((e) => e.message)).toContain('Users changed: 1 added (dan), 1 removed (ben), 1 changed (cat)');
});

const faults: [string, string, FaultPatch][] = [
  ['a ret_code 5000 on every call', 'ListUsersFailed', { error: { rate: 1, retCode: 5000 } }],
  ['HTTP 503 with an HTML body', 'ListUsersFailed', { http5xx: { rate: 1, status: 503 } }],
  ['no answer (timeout)', 'ListUsersFailed', { hang: { rate: 1 } }],
  ['truncated JSON', 'ListUsersFailed', { truncateJson: { rate: 1 } }],
  ['a total_count that lies', 'ListUsersFailed', { totalCountDelta: 7 }],
  ['duplicate rows', 'ListUsersFailed', { duplicateRows: 2 }],
  ['users changing between pages', 'ListUsersFailed', { mutateBetweenPages: true }],
  ['the quota spent (ret_code 2500)', 'QuotaExceeded', { error: { rate: 1, retCode: 2500 } }],
];

describe('a failing provider leaves the ConfigMaps byte-identical', () => {
  test.each(faults)('%s → Ready False, %s', async (_name, reason, fault) => {
    const name = `fault-${String(faults.findIndex(([n]) => n === _name))}`;
    const clusterId = `hpc-${name}`;
    // Three pages, so the pagination faults have pages to disagree across.
    await syncedCluster(name, clusterId, users('f', 250), reason === 'QuotaExceeded' ? { credentialsSecretRef: { name: 'quota-key' } } : {});
    const before = await configMaps(name);
    simulator.setFaults(fault);
    try {
      const failed = await requestSync(name, reason);
      expect(readyOf(failed)?.status).toBe('False');
      expect(failed.status?.userCount).toBe(250);
    } finally {
      simulator.clearFaults();
    }
    const after = await configMaps(name);
    expect(after.map((cm) => cm?.metadata?.resourceVersion)).toEqual(before.map((cm) => cm?.metadata?.resourceVersion));
    expect(after.map((cm) => cm?.data)).toEqual(before.map((cm) => cm?.data));
    const events = await eventsOf(name);
    expect(events.some((e) => e.type === 'Warning' && e.reason === reason)).toBe(true);
  });
});

test('bad credentials stall with AuthenticationFailed without burning calls; a rotated Secret recovers', async () => {
  await core.createNamespacedSecret({
    namespace,
    body: { metadata: { name: 'wrong-key', labels: LENT }, stringData: { access_key_id: DEV_ACCESS_KEY.id, secret_access_key: 'not-the-secret' } },
  });
  simulator.setUsers('hpc-auth', [simulatedUser('eve', 40001)]);
  await createHpcCluster(admin, namespace, 'auth', { clusterId: 'hpc-auth', zone: 'jinan1a', endpoint: simulator.url, allowInsecureHttp: true, credentialsSecretRef: { name: 'wrong-key' } });
  const stalled = await waitForReady(admin, namespace, 'auth', 'AuthenticationFailed');
  expect(stalled.status?.conditions?.find((c) => c.type === 'Stalled')).toMatchObject({ status: 'True', reason: 'AuthenticationFailed' });
  expect(JSON.stringify(stalled.status)).not.toContain('not-the-secret');

  // A change to the Secret that leaves its keys as they are makes the operator reconcile,
  // but not call the API: nothing the failure depended on has changed.
  const calls = simulator.stats().byRetCode['1200'] ?? 0;
  const reconcilesBefore = await reconcileCount();
  await core.patchNamespacedSecret(
    { namespace, name: 'wrong-key', body: { metadata: { labels: { touched: 'yes' } } } },
    setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
  );
  await waitFor(async () => (await reconcileCount()) > reconcilesBefore, { description: 'a reconcile after the Secret update' });
  expect(simulator.stats().byRetCode['1200'] ?? 0).toBe(calls);

  await core.replaceNamespacedSecret({
    namespace,
    name: 'wrong-key',
    body: { metadata: { name: 'wrong-key', labels: LENT }, stringData: { access_key_id: DEV_ACCESS_KEY.id, secret_access_key: DEV_ACCESS_KEY.secret } },
  });
  const recovered = await waitForReady(admin, namespace, 'auth', 'Synced');
  expect(recovered.status?.conditions?.find((c) => c.type === 'Stalled')?.status).toBe('False');
  expect(recovered.status?.userCount).toBe(1);
});

test('an unknown cluster (ret_code 2100) stalls with ListUsersFailed and is not called again until the spec changes', async () => {
  await createHpcCluster(admin, namespace, 'unknown', { clusterId: 'hpc-nowhere', zone: 'jinan1a', endpoint: simulator.url, allowInsecureHttp: true, credentialsSecretRef: { name: SECRET } });
  const stalled = await waitForReady(admin, namespace, 'unknown', 'ListUsersFailed');
  expect(readyOf(stalled)?.message).toContain('ret_code 2100');
  expect(stalled.status?.conditions?.find((c) => c.type === 'Stalled')?.status).toBe('True');
  expect(stalled.status?.conditions?.find((c) => c.type === 'Reconciling')?.status).toBe('False');
  const calls = simulator.stats().byRetCode['2100'] ?? 0;
  // A sync request is a reason to try again: exactly one more call.
  await requestSync('unknown', 'ListUsersFailed');
  await waitFor(() => (simulator.stats().byRetCode['2100'] ?? 0) > calls, { description: 'the requested call' });
  expect(simulator.stats().byRetCode['2100']).toBe(calls + 1);

  simulator.setUsers('hpc-found', [simulatedUser('fay', 80001)]);
  await patchHpcCluster(admin, namespace, 'unknown', { spec: { clusterId: 'hpc-found' } });
  const fixed = await waitForReady(admin, namespace, 'unknown', 'Synced', { generation: 2 });
  expect(fixed.status?.conditions?.find((c) => c.type === 'Stalled')?.status).toBe('False');
});

test('a missing Secret is CredentialsNotFound, saying what to create', async () => {
  await createHpcCluster(admin, namespace, 'no-secret', { clusterId: 'hpc-none', zone: 'jinan1a', endpoint: simulator.url, allowInsecureHttp: true, credentialsSecretRef: { name: 'absent' } });
  const object = await waitForReady(admin, namespace, 'no-secret', 'CredentialsNotFound');
  expect(readyOf(object)?.message).toContain('Secret absent not found');
  expect(object.status?.conditions?.find((c) => c.type === 'Stalled')?.status).toBe('True');
});

test('invalid rows are skipped and reported while the rest sync', async () => {
  simulator.setFaults({ invalidRows: ['bad-username', 'uid-zero', 'uid-not-a-number', 'relative-nas'] });
  try {
    const object = await syncedCluster('skips', 'hpc-skips', [simulatedUser('good', 50001)]);
    expect(object.status?.userCount).toBe(1);
    expect(object.status?.skippedUserCount).toBe(4);
    const reasons = object.status?.skippedUsers?.map((s) => s.reason).join('\n') ?? '';
    expect(reasons).toContain('username has characters outside [A-Za-z0-9._-]');
    expect(reasons).toMatch(/uid 0/);
    expect(reasons).toMatch(/abc/);
    expect(reasons).toMatch(/absolute/);
    expect(readyOf(object)?.message).toBe('1 user synced, 4 skipped (see status.skippedUsers)');
  } finally {
    simulator.clearFaults();
  }
});

test('a mass removal is held until maxUserRemovalPercent allows it', async () => {
  await syncedCluster('removal', 'hpc-removal', users('r', 10), { maxUserRemovalPercent: 50 });
  const before = await configMaps('removal');
  simulator.setUsers('hpc-removal', users('r', 10).slice(0, 3));
  const held = await requestSync('removal', 'RemovalHeld');
  expect(readyOf(held)?.message).toContain('remove 7 of 10 users');
  expect((await configMaps('removal')).map((cm) => cm?.data)).toEqual(before.map((cm) => cm?.data));

  await patchHpcCluster(admin, namespace, 'removal', { spec: { maxUserRemovalPercent: 100 } });
  const applied = await waitForReady(admin, namespace, 'removal', 'Synced', { generation: 2 });
  expect(applied.status?.userCount).toBe(3);
});

test('a user list too large for a ConfigMap is refused and nothing is written', async () => {
  const longPath = `/public/${'x'.repeat(200)}`;
  simulator.setUsers('hpc-huge', users('h', 4000).map((u) => ({ ...u, nasMountPoint: `${longPath}/${u.username}` })));
  await createHpcCluster(admin, namespace, 'huge', { clusterId: 'hpc-huge', zone: 'jinan1a', endpoint: simulator.url, allowInsecureHttp: true, credentialsSecretRef: { name: SECRET } });
  const object = await waitForReady(admin, namespace, 'huge', 'ConfigMapTooLarge');
  expect(readyOf(object)?.message).toMatch(/ConfigMap huge-users would hold \d+ bytes/);
  expect(readyOf(object)?.message).toContain('spec.filter.searchWord');
  expect(await configMaps('huge')).toEqual([undefined, undefined]);
});

test('suspend stops API calls and writes; resuming syncs again', async () => {
  await syncedCluster('paused', 'hpc-paused', [simulatedUser('pat', 60001)], { credentialsSecretRef: { name: 'own-key' } });
  const before = await configMaps('paused');
  await patchHpcCluster(admin, namespace, 'paused', { spec: { suspend: true } });
  const suspended = await waitForReady(admin, namespace, 'paused', 'Suspended', { generation: 2 });
  expect(readyOf(suspended)?.status).toBe('True');
  simulator.addUser('hpc-paused', simulatedUser('quin', 60002));
  const calls = simulator.stats().byAccessKey[OWN_KEY.id] ?? 0;
  await requestSync('paused', 'Suspended');
  expect(simulator.stats().byAccessKey[OWN_KEY.id] ?? 0).toBe(calls);
  expect((await configMaps('paused')).map((cm) => cm?.data)).toEqual(before.map((cm) => cm?.data));

  await patchHpcCluster(admin, namespace, 'paused', { spec: { suspend: false } });
  const resumed = await waitForReady(admin, namespace, 'paused', 'Synced', { generation: 3 });
  expect(resumed.status?.userCount).toBe(2);
});

test('an edited ConfigMap is restored and a deleted one recreated, without waiting for the periodic sync', async () => {
  await syncedCluster('drift', 'hpc-drift', [simulatedUser('dora', 70001)]);
  const [usersCm, nssCm] = await configMaps('drift');
  await core.replaceNamespacedConfigMap({
    namespace,
    name: 'drift-users',
    body: { ...usersCm, data: { ...usersCm?.data, 'dora.uid': '0', 'intruder.uid': '0' } },
  });
  await waitFor(async () => {
    const current = await readConfigMap(admin, namespace, 'drift-users');
    return current?.data?.['dora.uid'] === '70001' && current.data['intruder.uid'] === undefined;
  }, { description: 'the edited ConfigMap restored' });

  await core.deleteNamespacedConfigMap({ namespace, name: 'drift-nss' });
  await waitFor(async () => {
    const current = await readConfigMap(admin, namespace, 'drift-nss');
    return current !== undefined && JSON.stringify(current.data) === JSON.stringify(nssCm?.data);
  }, { description: 'the deleted ConfigMap recreated' });
});

test('the CRD refuses plain http without allowInsecureHttp, saying what to fix', async () => {
  await expect(
    createHpcCluster(admin, namespace, 'insecure', { clusterId: 'hpc-x', zone: 'jinan1a', endpoint: 'http://127.0.0.1:1', credentialsSecretRef: { name: SECRET } }),
  ).rejects.toThrow(/endpoint must use https:\/\/ unless allowInsecureHttp is true/);
});

test('a spec the CRD accepts but the operator cannot serve gets InvalidSpec and Stalled', async () => {
  // Label values stop at 63 characters, and the ConfigMaps carry the name as a label.
  const name = `a${'b'.repeat(69)}`;
  await createHpcCluster(admin, namespace, name, { clusterId: 'hpc-long', zone: 'jinan1a', endpoint: simulator.url, allowInsecureHttp: true, credentialsSecretRef: { name: SECRET } });
  const object = await waitForReady(admin, namespace, name, 'InvalidSpec');
  expect(readyOf(object)?.message).toContain('metadata.name must be at most 63 characters');
  expect(object.status?.conditions?.find((c) => c.type === 'Stalled')?.status).toBe('True');
  expect(await configMaps(name)).toEqual([undefined, undefined]);
});

test('metrics, /healthz and /readyz describe the running operator', async () => {
  // Its own resources, so that it holds whichever tests ran before it: one synced, one whose
  // key the provider refuses (ret_code 1200).
  await syncedCluster('metered', 'hpc-metered', users('m', 3));
  await createCredentialsSecret(admin, namespace, 'metered-wrong-key', { id: DEV_ACCESS_KEY.id, secret: 'not-the-secret' });
  await createHpcCluster(admin, namespace, 'metered-refused', { clusterId: 'hpc-metered', zone: 'jinan1a', endpoint: simulator.url, allowInsecureHttp: true, credentialsSecretRef: { name: 'metered-wrong-key' } });
  await waitForReady(admin, namespace, 'metered-refused', 'AuthenticationFailed');

  const { metrics, health } = operator.manager.addresses();
  const get = async (address: string | undefined, path: string) => {
    const response = await fetch(`http://${address ?? ''}${path}`);
    return { status: response.status, text: await response.text() };
  };
  expect((await get(health, '/healthz')).status).toBe(200);
  expect((await get(health, '/readyz')).status).toBe(200);
  const text = (await get(metrics, '/metrics')).text;
  expect(text).toContain(`hpc_user_operator_cluster_users{namespace="${namespace}",name="metered"} 3`);
  expect(text).toMatch(/hpc_user_operator_provider_requests_total\{ret_code="0"\} [1-9]/);
  expect(text).toMatch(/hpc_user_operator_provider_requests_total\{ret_code="1200"\} [1-9]/);
  expect(text).toMatch(/hpc_user_operator_reconcile_total\{result="success"\} [1-9]/);
  expect(text).toMatch(/hpc_user_operator_sync_pages_count [1-9]/);
  expect(text).toContain('hpc_user_operator_leader 1');
  expect(text).toMatch(new RegExp(`hpc_user_operator_last_successful_sync_timestamp_seconds\\{namespace="${namespace}",name="metered"\\} 1\\d{9}`));
});
