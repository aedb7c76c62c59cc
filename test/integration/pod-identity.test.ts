// Pods that run as HPC users, end to end: a control plane of this file's own with a real
// kube-controller-manager (Jobs, Deployments, garbage collection), the operator as the shipped
// ServiceAccount serving the webhook over TLS it manages itself, the shipped
// MutatingWebhookConfiguration (reached by URL) and, for the guards, the shipped policies.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { AppsV1Api, BatchV1Api, CoreV1Api, CustomObjectsApi, RbacAuthorizationV1Api, type KubeConfig, type V1Pod, type V1PodSpec } from '@kubernetes/client-node';
import { DEV_ACCESS_KEY, startSimulator, type Simulator } from '../../tools/simulator/server.js';
import { simulatedUser, type SimulatedUser } from '../../tools/simulator/store.js';
import type { HpcClusterSpecInput } from '../../src/api/hpccluster.js';
import { serviceAccountKubeConfig } from '../../tools/controlplane/controlplane.js';
import { apiStatusCode, createTestNamespace } from '../../tools/harness/cluster.js';
import {
  createCredentialsSecret,
  createHpcCluster,
  installCrd,
  operatorKubeConfig,
  patchHpcCluster,
  readConfigMap,
  readHpcCluster,
  startOperator,
  syncedCluster as syncedClusterIn,
  waitForReady,
  type RunningOperator,
} from '../../tools/harness/operator.js';
import { installAdmissionPolicies, installWebhookConfiguration } from '../../tools/harness/webhook.js';
import { waitFor } from '../../tools/harness/wait-for.js';
import { useOwnControlPlane } from '../support/own-control-plane.js';

const own = useOwnControlPlane({ controllerManager: true });
let admin: KubeConfig;
let core: CoreV1Api;
let operatorNamespace: string;
let research: string;
let other: string;
let simulator: Simulator;
let operator: RunningOperator;
/** A tenant of `research`: may write pods and ConfigMaps there, nothing else. */
let tenant: CoreV1Api;

/** The users of these tests share group 30000 unless they say otherwise. */
const user = (username: string, uid: number, over: Partial<SimulatedUser> = {}): SimulatedUser => simulatedUser(username, uid, { gid: 30000, ...over });

/** A new HpcCluster in `namespace` on simulator cluster `clusterId`, waited until it first synced. */
const syncedCluster = (namespace: string, name: string, clusterId: string, seed: SimulatedUser[], spec: Partial<HpcClusterSpecInput> = {}) =>
  syncedClusterIn(admin, simulator, { namespace, name, clusterId, secret: 'shanhe-api-key' }, seed, spec);

async function admissions(): Promise<number> {
  const metric = await operator.metrics.registry.getSingleMetric('hpc_user_operator_webhook_admissions_total')?.get();
  return metric?.values.reduce((sum, v) => sum + v.value, 0) ?? 0;
}

let pods = 0;
function podManifest(claim: { cluster?: string; user?: string; annotations?: Record<string, string> }, spec: Partial<V1PodSpec> = {}): V1Pod {
  return {
    metadata: {
      name: `pod-${String(++pods)}`,
      ...(claim.cluster === undefined ? {} : { labels: { 'hpc.shanhe.com/cluster': claim.cluster } }),
      annotations: { ...(claim.user === undefined ? {} : { 'hpc.shanhe.com/user': claim.user }), ...claim.annotations },
    },
    spec: { containers: [{ name: 'main', image: 'busybox', command: ['id'] }], ...spec },
  };
}

const createPod = (pod: V1Pod, namespace = research, client = core) => client.createNamespacedPod({ namespace, body: pod });

/** The message of a refused create, as `kubectl apply` would print it. */
async function refusal(pod: V1Pod, namespace = research): Promise<string> {
  try {
    await createPod(pod, namespace);
  } catch (error) {
    const body = (error as { body?: unknown }).body;
    return `${String(apiStatusCode(error))} ${typeof body === 'string' ? (JSON.parse(body) as { message: string }).message : String(body)}`;
  }
  throw new Error('the pod was admitted, but a refusal was expected');
}

beforeAll(async () => {
  admin = own.kubeConfig;
  core = admin.makeApiClient(CoreV1Api);
  await installCrd(admin);
  operatorNamespace = await createTestNamespace(admin, 'operator');
  research = await createTestNamespace(admin, 'research');
  other = await createTestNamespace(admin, 'other');
  simulator = await startSimulator({ accessKeys: [DEV_ACCESS_KEY] });
  for (const namespace of [research, other]) await createCredentialsSecret(admin, namespace, 'shanhe-api-key', DEV_ACCESS_KEY);
  const kubeConfig = await operatorKubeConfig(admin, operatorNamespace, 'cluster', { webhook: true });
  operator = await startOperator(kubeConfig, [research, other], { webhook: { namespace: operatorNamespace } });
  await installWebhookConfiguration(admin, operator.manager.addresses().webhook ?? '', operatorNamespace);

  const rbac = admin.makeApiClient(RbacAuthorizationV1Api);
  await core.createNamespacedServiceAccount({ namespace: research, body: { metadata: { name: 'tenant' } } });
  await rbac.createNamespacedRole({
    namespace: research,
    body: { metadata: { name: 'tenant' }, rules: [{ apiGroups: [''], resources: ['pods', 'configmaps'], verbs: ['get', 'list', 'create', 'update', 'patch', 'delete'] }] },
  });
  await rbac.createNamespacedRoleBinding({
    namespace: research,
    body: { metadata: { name: 'tenant' }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'tenant' }, subjects: [{ kind: 'ServiceAccount', name: 'tenant', namespace: research }] },
  });
  tenant = (await serviceAccountKubeConfig(admin, research, 'tenant')).makeApiClient(CoreV1Api);

  await syncedCluster(research, 'chem-lab', 'hpc-chem', [user('ann', 30001), user('ben', 30000), user('bad:name', 30002)]);
  await syncedCluster(other, 'physics', 'hpc-physics', [user('pia', 40001, { gid: 40001 })]);
  // The apiserver has the webhook's caBundle once a labelled pod is admitted over verified TLS.
  await waitFor(
    async () => {
      const name = `probe-${String(++pods)}`;
      try {
        await core.createNamespacedPod({ namespace: research, body: { ...podManifest({ cluster: 'chem-lab', user: 'ann' }), metadata: { name, labels: { 'hpc.shanhe.com/cluster': 'chem-lab' }, annotations: { 'hpc.shanhe.com/user': 'ann' } } } });
        return true;
      } catch {
        return false;
      }
    },
    { timeoutMs: 30_000, description: 'the webhook admits a pod over TLS' },
  );
});

afterAll(async () => {
  await operator?.stop();
  await simulator?.close();
});

describe('a pod that claims a user', () => {
  test('a bare pod gets every injected field and the stamp', async () => {
    const pod = await createPod(podManifest({ cluster: 'chem-lab', user: 'ann' }, { initContainers: [{ name: 'setup', image: 'busybox' }] }));
    expect(pod.metadata?.annotations?.['hpc.shanhe.com/identity']).toBe('chem-lab/ann:30001:30000');
    expect(pod.spec?.securityContext).toEqual({ runAsUser: 30001, runAsGroup: 30000, runAsNonRoot: true, supplementalGroups: [30000] });
    expect(pod.spec?.volumes).toEqual([{ name: 'hpc-nss', configMap: { name: 'chem-lab-nss', defaultMode: 420 } }]);
    for (const container of [...(pod.spec?.containers ?? []), ...(pod.spec?.initContainers ?? [])]) {
      expect(container.env).toEqual([
        { name: 'HOME', value: '/public/shanhe/ann' },
        { name: 'USER', value: 'ann' },
        { name: 'LOGNAME', value: 'ann' },
      ]);
      expect(container.volumeMounts).toEqual([
        { name: 'hpc-nss', mountPath: '/etc/passwd', subPath: 'passwd', readOnly: true },
        { name: 'hpc-nss', mountPath: '/etc/group', subPath: 'group', readOnly: true },
      ]);
    }
  });

  test('a pod that already runs as the user keeps its own securityContext there', async () => {
    const pod = await createPod(podManifest({ cluster: 'chem-lab', user: 'ann' }, { securityContext: { runAsUser: 30001, runAsGroup: 30000, supplementalGroups: [7] } }));
    expect(pod.spec?.securityContext).toEqual({ runAsUser: 30001, runAsGroup: 30000, supplementalGroups: [7], runAsNonRoot: true });
  });

  test('fs-group on request; no name files with nss "false"', async () => {
    const pod = await createPod(podManifest({ cluster: 'chem-lab', user: 'ann', annotations: { 'hpc.shanhe.com/fs-group': 'true', 'hpc.shanhe.com/nss': 'false' } }));
    expect(pod.spec?.securityContext?.fsGroup).toBe(30000);
    expect(pod.spec?.volumes).toBeUndefined();
    expect(pod.spec?.containers[0]?.volumeMounts).toBeUndefined();
  });

  test('the NAS home from a PersistentVolumeClaim or an NFS export', async () => {
    await syncedCluster(research, 'pvc-home', 'hpc-chem', [user('ann', 30001), user('ben', 30000), user('bad:name', 30002)], {
      podIdentity: { home: { persistentVolumeClaim: { claimName: 'chem-nas' } } },
    });
    await syncedCluster(research, 'nfs-home', 'hpc-chem', [user('ann', 30001), user('ben', 30000), user('bad:name', 30002)], {
      podIdentity: { home: { nfs: { server: 'nas.example.internal', path: '/export' } } },
    });
    const withClaim = await createPod(podManifest({ cluster: 'pvc-home', user: 'ben', annotations: { 'hpc.shanhe.com/nss': 'false' } }));
    expect(withClaim.spec?.volumes).toEqual([{ name: 'hpc-home', persistentVolumeClaim: { claimName: 'chem-nas' } }]);
    expect(withClaim.spec?.containers[0]?.volumeMounts).toEqual([{ name: 'hpc-home', mountPath: '/public/shanhe/ben', subPath: 'public/shanhe/ben' }]);
    const withNfs = await createPod(podManifest({ cluster: 'nfs-home', user: 'ben', annotations: { 'hpc.shanhe.com/nss': 'false' } }));
    expect(withNfs.spec?.volumes).toEqual([{ name: 'hpc-home', nfs: { server: 'nas.example.internal', path: '/export' } }]);
  });

  test('a pod without the label never reaches the webhook', async () => {
    const before = await admissions();
    const unlabelled = await createPod(podManifest({ user: 'ann' }));
    expect(unlabelled.spec?.securityContext).toEqual({});
    expect(await admissions()).toBe(before);
    await createPod(podManifest({ cluster: 'chem-lab', user: 'ann' }));
    expect(await admissions()).toBe(before + 1);
  });
});

describe('refusals name the fix', () => {
  test.each([
    ['pod', { securityContext: { runAsUser: 1234 } }, 'spec.securityContext.runAsUser is 1234, but the pod runs as user ann (uid 30001, gid 30000)'],
    ['container', { containers: [{ name: 'main', image: 'busybox', securityContext: { runAsGroup: 5 } }] }, 'spec.containers[0] (container main).securityContext.runAsGroup is 5'],
    ['init container', { initContainers: [{ name: 'setup', image: 'busybox', securityContext: { runAsUser: 30000 } }] }, 'spec.initContainers[0] (init container setup).securityContext.runAsUser is 30000'],
    ['root', { containers: [{ name: 'main', image: 'busybox', securityContext: { runAsUser: 0 } }] }, 'securityContext.runAsUser is 0 (root)'],
  ])('a different uid or gid at %s level', async (_level, spec, message) => {
    const text = await refusal(podManifest({ cluster: 'chem-lab', user: 'ann' }, spec));
    expect(text).toContain('admission webhook "pod-identity.hpc.shanhe.com" denied the request');
    expect(text).toContain(message);
  });

  test('kubectl debug with another uid is refused; without one it is admitted', async () => {
    const pod = await createPod(podManifest({ cluster: 'chem-lab', user: 'ann' }));
    const name = pod.metadata?.name ?? '';
    const withDebug = (securityContext: object) => ({ ...pod, spec: { ...pod.spec, containers: pod.spec?.containers ?? [], ephemeralContainers: [{ name: 'debug', image: 'busybox', securityContext }] } });
    await expect(core.replaceNamespacedPodEphemeralcontainers({ namespace: research, name, body: withDebug({ runAsUser: 0 }) })).rejects.toMatchObject({
      body: expect.stringContaining('spec.ephemeralContainers[0] (ephemeral container debug).securityContext.runAsUser is 0 (root)'),
    });
    const debugged = await core.replaceNamespacedPodEphemeralcontainers({ namespace: research, name, body: withDebug({}) });
    expect(debugged.spec?.ephemeralContainers?.map((c) => c.name)).toEqual(['debug']);
  });

  test('an unknown HpcCluster, one that never synced, an unknown user, a skipped user', async () => {
    expect(await refusal(podManifest({ cluster: 'nope', user: 'ann' }))).toContain(`names HpcCluster ${research}/nope, which does not exist in this namespace`);
    await createHpcCluster(admin, research, 'dormant', { clusterId: 'hpc-chem', zone: 'jinan1a', credentialsSecretRef: { name: 'shanhe-api-key' }, suspend: true });
    await waitForReady(admin, research, 'dormant', 'Suspended');
    expect(await refusal(podManifest({ cluster: 'dormant', user: 'ann' }))).toContain(`HpcCluster ${research}/dormant has not synced its users yet`);
    expect(await refusal(podManifest({ cluster: 'chem-lab', user: 'zed' }))).toContain('user "zed" (annotation hpc.shanhe.com/user) is not a user of');
    expect(await refusal(podManifest({ cluster: 'chem-lab', user: 'bad:name' }))).toContain('was skipped at the last sync: username has characters outside');
  });

  test("a user of another namespace's HpcCluster cannot be claimed", async () => {
    expect(await refusal(podManifest({ cluster: 'physics', user: 'pia' }))).toContain(`HpcCluster ${research}/physics, which does not exist in this namespace`);
    const theirs = await createPod(podManifest({ cluster: 'physics', user: 'pia' }), other);
    expect(theirs.spec?.securityContext?.runAsUser).toBe(40001);
  });

  test('a user removed upstream after the sync can no longer be claimed', async () => {
    await syncedCluster(research, 'shrinking', 'hpc-shrinking', [user('cat', 30011), user('dan', 30012), user('eve', 30013)]);
    expect((await createPod(podManifest({ cluster: 'shrinking', user: 'dan' }))).spec?.securityContext?.runAsUser).toBe(30012);
    simulator.removeUser('hpc-shrinking', 'dan');
    await patchHpcCluster(admin, research, 'shrinking', { metadata: { annotations: { 'hpc.shanhe.com/sync-requested': 'dan-left' } } });
    await waitFor(async () => (await readHpcCluster(admin, research, 'shrinking')).status?.userCount === 2, { description: 'dan removed' });
    await waitFor(async () => (await refusal(podManifest({ cluster: 'shrinking', user: 'dan' }))).includes('user "dan" (annotation hpc.shanhe.com/user) is not a user'), {
      description: 'dan refused',
    });
  });
});

describe('controllers create the pods', () => {
  const template = (user: string) => ({
    metadata: { labels: { 'hpc.shanhe.com/cluster': 'chem-lab', app: `as-${user}` }, annotations: { 'hpc.shanhe.com/user': user } },
    spec: { restartPolicy: 'Never', containers: [{ name: 'main', image: 'busybox', command: ['id'] }] },
  });
  const podsOf = async (app: string) => (await core.listNamespacedPod({ namespace: research, labelSelector: `app=${app}` })).items;

  test("a Job's pods run as the user", async () => {
    await admin.makeApiClient(BatchV1Api).createNamespacedJob({ namespace: research, body: { metadata: { name: 'as-ann' }, spec: { backoffLimit: 0, template: template('ann') } } });
    const [pod] = await waitFor(async () => ((await podsOf('as-ann')).length > 0 ? podsOf('as-ann') : undefined), { description: "the Job's pod" });
    expect(pod?.spec?.securityContext).toMatchObject({ runAsUser: 30001, runAsGroup: 30000, runAsNonRoot: true });
    expect(pod?.metadata?.annotations?.['hpc.shanhe.com/identity']).toBe('chem-lab/ann:30001:30000');
  });

  test("a Deployment's pods run as the user", async () => {
    const { spec } = template('ben');
    await admin.makeApiClient(AppsV1Api).createNamespacedDeployment({
      namespace: research,
      body: { metadata: { name: 'as-ben' }, spec: { replicas: 2, selector: { matchLabels: { app: 'as-ben' } }, template: { ...template('ben'), spec: { ...spec, restartPolicy: 'Always' } } } },
    });
    const running = await waitFor(async () => ((await podsOf('as-ben')).length === 2 ? podsOf('as-ben') : undefined), { description: "the Deployment's 2 pods" });
    for (const pod of running) expect(pod.spec?.securityContext).toMatchObject({ runAsUser: 30000, runAsGroup: 30000 });
  });

  test('a Job claiming an unknown user gets FailedCreate events that say why', async () => {
    await admin.makeApiClient(BatchV1Api).createNamespacedJob({ namespace: research, body: { metadata: { name: 'as-zed' }, spec: { backoffLimit: 0, template: template('zed') } } });
    const event = await waitFor(
      async () => (await core.listNamespacedEvent({ namespace: research, fieldSelector: 'involvedObject.name=as-zed' })).items.find((e) => e.reason === 'FailedCreate'),
      { description: 'a FailedCreate event' },
    );
    expect(event.message).toContain('user "zed" (annotation hpc.shanhe.com/user) is not a user of');
    expect(await podsOf('as-zed')).toEqual([]);
  });

  test('garbage collection removes the ConfigMaps with their HpcCluster', async () => {
    await syncedCluster(research, 'short-lived', 'hpc-chem', [user('ann', 30001), user('ben', 30000)]);
    expect(await readConfigMap(admin, research, 'short-lived-users')).toBeDefined();
    await admin.makeApiClient(CustomObjectsApi).deleteNamespacedCustomObject({
      group: 'hpc.shanhe.com',
      version: 'v1alpha1',
      namespace: research,
      plural: 'hpcclusters',
      name: 'short-lived',
    });
    // The collector learns of new resource types (the CRD came after it started) on its periodic
    // discovery, every 30 s, so this can take a while on a loaded machine.
    await waitFor(async () => (await readConfigMap(admin, research, 'short-lived-users')) === undefined && (await readConfigMap(admin, research, 'short-lived-nss')) === undefined, {
      timeoutMs: 150_000,
      description: 'both ConfigMaps collected',
    });
  }, 200_000);
});

describe('what tenants can write changes nothing', () => {
  /** Ann's claim, created as the tenant: the uid admitted, or the refusal's message. */
  async function claimAnn(): Promise<number | string> {
    try {
      return (await createPod(podManifest({ cluster: 'chem-lab', user: 'ann' }), research, tenant)).spec?.securityContext?.runAsUser ?? 'no uid';
    } catch (error) {
      return String((error as { body?: unknown }).body);
    }
  }

  /**
   * Claims ann until a refusal says `reason`, recording every outcome: until the webhook's
   * cache has the forgery, pods are still admitted, with the real uid.
   */
  async function claimUntilRefused(reason: string, outcomes: (number | string)[]): Promise<void> {
    await waitFor(
      async () => {
        const outcome = await claimAnn();
        outcomes.push(outcome);
        return typeof outcome === 'string' && outcome.includes(reason);
      },
      { description: `a refusal saying "${reason}"` },
    );
  }

  /**
   * Suspends or resumes chem-lab. While it is suspended the operator writes nothing, so a
   * forgery stands until the test resumes it: no race between the tenant's write and the repair.
   */
  async function setSuspended(suspend: boolean): Promise<void> {
    await patchHpcCluster(admin, research, 'chem-lab', { spec: { suspend } });
    const { generation } = (await readHpcCluster(admin, research, 'chem-lab')).metadata;
    await waitForReady(admin, research, 'chem-lab', suspend ? 'Suspended' : 'Synced', generation === undefined ? {} : { generation });
  }

  const forgedUsersJson = (real: string | undefined): string => {
    const forged = (real ?? '').replace('"uid": 30001', '"uid": 31337');
    expect(forged).toContain('31337');
    return forged;
  };

  test('an edited -users ConfigMap never gives a pod the forged uid, and is repaired', async () => {
    await setSuspended(true);
    const cm = await tenant.readNamespacedConfigMap({ namespace: research, name: 'chem-lab-users' });
    const edited = await tenant.replaceNamespacedConfigMap({
      namespace: research,
      name: 'chem-lab-users',
      body: { ...cm, data: { ...cm.data, 'users.json': forgedUsersJson(cm.data?.['users.json']), 'ann.uid': '31337' } },
    });
    // Claims are answered from the list status vouches for, which the edit does not change.
    const outcomes: (number | string)[] = [];
    for (let claim = 0; claim < 5; claim++) outcomes.push(await claimAnn());
    await setSuspended(false);
    // Repaired by the resumed sync, and ann still admitted with the real uid.
    await waitFor(
      async () => {
        const now = await readConfigMap(admin, research, 'chem-lab-users');
        return now?.metadata?.resourceVersion !== edited.metadata?.resourceVersion && now?.data?.['users.json']?.includes('"uid": 30001') === true;
      },
      { description: 'chem-lab-users repaired' },
    );
    outcomes.push(await claimAnn());
    expect(outcomes).toEqual([30001, 30001, 30001, 30001, 30001, 30001]);
  });

  test('a look-alike -users ConfigMap in place of the real one is not believed', async () => {
    await setSuspended(true);
    const real = await tenant.readNamespacedConfigMap({ namespace: research, name: 'chem-lab-users' });
    await tenant.deleteNamespacedConfigMap({ namespace: research, name: 'chem-lab-users' });
    const outcomes: (number | string)[] = [];
    await claimUntilRefused('chem-lab is missing', outcomes);
    // Same name, labels and annotations, no ownerReference (a tenant cannot make the HpcCluster control it).
    await tenant.createNamespacedConfigMap({
      namespace: research,
      body: { metadata: { name: 'chem-lab-users', labels: real.metadata?.labels, annotations: real.metadata?.annotations }, data: { ...real.data, 'users.json': forgedUsersJson(real.data?.['users.json']) } },
    });
    await claimUntilRefused('chem-lab-users was altered or replaced', outcomes);
    expect(outcomes.filter((o) => typeof o === 'number' && o !== 30001)).toEqual([]);
    // The operator never adopts the look-alike: it recreates its own once the forgery is gone.
    await tenant.deleteNamespacedConfigMap({ namespace: research, name: 'chem-lab-users' });
    await setSuspended(false);
    await waitFor(async () => (await readConfigMap(admin, research, 'chem-lab-users'))?.metadata?.ownerReferences?.length === 1, { description: 'chem-lab-users recreated' });
    expect(await waitFor(async () => {
      const outcome = await claimAnn();
      return typeof outcome === 'number' ? outcome : undefined;
    }, { description: 'ann admitted again' })).toBe(30001);
  });
});

describe('the shipped admission policies', () => {
  beforeAll(async () => {
    await installAdmissionPolicies(admin, operatorNamespace);
    // Each policy takes effect when the apiserver has loaded it: probe each with a write it refuses.
    const refused = (description: string, write: () => Promise<unknown>) =>
      waitFor(
        () =>
          write().then(
            () => false,
            (error: unknown) => apiStatusCode(error) === 403 || apiStatusCode(error) === 422,
          ),
        { timeoutMs: 30_000, description },
      );
    await refused('the ConfigMap policy enforced', async () =>
      tenant.replaceNamespacedConfigMap({ namespace: research, name: 'chem-lab-users', body: await tenant.readNamespacedConfigMap({ namespace: research, name: 'chem-lab-users' }) }),
    );
    await refused('the status policy enforced', async () => {
      const object = await readHpcCluster(admin, research, 'chem-lab');
      return admin.makeApiClient(CustomObjectsApi).replaceNamespacedCustomObjectStatus({ group: 'hpc.shanhe.com', version: 'v1alpha1', namespace: research, plural: 'hpcclusters', name: 'chem-lab', body: object });
    });
    await refused('the pod policy enforced', () => createPod(podManifest({ cluster: 'chem-lab', user: 'ann' }), operatorNamespace));
  });

  test('a tenant cannot edit or label a ConfigMap as the operator does', async () => {
    const cm = await tenant.readNamespacedConfigMap({ namespace: research, name: 'chem-lab-users' });
    await expect(tenant.replaceNamespacedConfigMap({ namespace: research, name: 'chem-lab-users', body: { ...cm, data: { ...cm.data, 'ann.uid': '0' } } })).rejects.toMatchObject({
      body: expect.stringContaining('is managed by hpc-user-operator'),
    });
    await expect(
      tenant.createNamespacedConfigMap({ namespace: research, body: { metadata: { name: 'decoy', labels: { 'app.kubernetes.io/managed-by': 'hpc-user-operator' } }, data: {} } }),
    ).rejects.toMatchObject({ body: expect.stringContaining('is managed by hpc-user-operator') });
  });

  test('nobody but the operator writes an HpcCluster status', async () => {
    const object = await readHpcCluster(admin, research, 'chem-lab');
    await expect(
      admin.makeApiClient(CustomObjectsApi).replaceNamespacedCustomObjectStatus({
        group: 'hpc.shanhe.com',
        version: 'v1alpha1',
        namespace: research,
        plural: 'hpcclusters',
        name: 'chem-lab',
        body: { ...object, status: { ...object.status, usersDigest: '0'.repeat(64) } },
      }),
    ).rejects.toMatchObject({ body: expect.stringContaining('written by hpc-user-operator only') });
  });

  test('a claim that the webhook did not stamp is refused, and a claim never changes', async () => {
    // The operator's own namespace is left out of the webhook: a claim there goes unstamped.
    expect(await refusal(podManifest({ cluster: 'chem-lab', user: 'ann' }), operatorNamespace)).toContain('does not run as the identity the hpc-user-operator webhook stamped');
    const pod = await createPod(podManifest({ cluster: 'chem-lab', user: 'ann' }));
    await expect(
      core.replaceNamespacedPod({ namespace: research, name: pod.metadata?.name ?? '', body: { ...pod, metadata: { ...pod.metadata, annotations: { ...pod.metadata?.annotations, 'hpc.shanhe.com/user': 'ben' } } } }),
    ).rejects.toMatchObject({ body: expect.stringContaining('cannot change once it is created') });
  });
});
