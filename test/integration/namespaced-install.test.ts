// The namespaced install (deploy/namespaced), rendered by kubectl's kustomize as users render
// it: the operator's rules are bound only in the namespaces it watches, and, applied to the
// real apiserver and run under exactly those bindings, it syncs there and can read no Secret
// anywhere else.
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { CoreV1Api, CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import { parseAllDocuments, stringify } from 'yaml';
import { GROUP, PLURAL, VERSION } from '../../src/api/hpccluster.js';
import { serviceAccountKubeConfig } from '../../tools/controlplane/controlplane.js';
import { createTestNamespace, expectApiError, testKubeConfig } from '../../tools/harness/cluster.js';
import { createCredentialsSecret, createHpcCluster, installCrd, startOperator, waitForReady, type RunningOperator } from '../../tools/harness/operator.js';
import { DEV_ACCESS_KEY, startSimulator, type Simulator } from '../../tools/simulator/server.js';
import { kubectl } from '../support/tools.js';

interface Manifest {
  kind: string;
  metadata: { name: string; namespace?: string };
  roleRef?: { kind: string; name: string };
  subjects?: { kind: string; name: string; namespace?: string }[];
  rules?: { resources?: string[] }[];
  spec?: { template: { spec: { containers: { args: string[] }[] } } };
}

const root = fileURLToPath(new URL('../..', import.meta.url));
const OPERATOR_RULES = 'hpc-user-operator';
const render = async (): Promise<string> => (await kubectl(['kustomize', '--load-restrictor=LoadRestrictionsNone', join(root, 'deploy/namespaced')])).stdout;
const manifestsOf = (text: string): Manifest[] => parseAllDocuments(text).map((document) => document.toJS() as Manifest);
const watchedOf = (manifests: Manifest[]): string[] => {
  const args = manifests.find((m) => m.kind === 'Deployment')?.spec?.template.spec.containers[0]?.args ?? [];
  return args.filter((arg) => arg.startsWith('--namespaces=')).flatMap((arg) => arg.slice('--namespaces='.length).split(','));
};

let admin: KubeConfig;
let simulator: Simulator;
let operator: RunningOperator | undefined;

beforeAll(async () => {
  admin = testKubeConfig();
  await installCrd(admin);
  simulator = await startSimulator({ accessKeys: [DEV_ACCESS_KEY], clusters: [{ id: 'hpc-namespaced', users: [{ username: 'ann', uid: 5001, gid: 5001, role: 'member' }] }] });
});

afterAll(async () => {
  await operator?.stop();
  await simulator?.close();
});

test('the operator\'s rules are bound only in the namespaces its Deployment watches, and nothing cluster-wide reads a Secret', async () => {
  const manifests = manifestsOf(await render());
  const bindings = manifests.filter((m) => m.roleRef?.name === OPERATOR_RULES);
  expect(bindings.map((m) => m.kind)).toEqual(['RoleBinding']);
  expect(bindings.map((m) => m.metadata.namespace)).toEqual(watchedOf(manifests));
  expect(watchedOf(manifests)).toEqual(['research']);
  expect(bindings[0]?.subjects).toEqual([{ kind: 'ServiceAccount', name: 'hpc-user-operator', namespace: 'hpc-user-operator-system' }]);
  // What is still bound cluster-wide (the webhook's own configuration) reads no Secret.
  for (const binding of manifests.filter((m) => m.kind === 'ClusterRoleBinding')) {
    const role = manifests.find((m) => m.kind === 'ClusterRole' && m.metadata.name === binding.roleRef?.name);
    expect(role?.rules?.flatMap((rule) => rule.resources ?? [])).not.toContain('secrets');
  }
});

test('applied as rendered, it syncs in its watched namespace and can read no Secret elsewhere', async () => {
  const install = await createTestNamespace(admin, 'ns-install');
  const watched = await createTestNamespace(admin, 'ns-watched');
  const elsewhere = await createTestNamespace(admin, 'ns-elsewhere');
  // The install as rendered, into this test's namespaces: its ServiceAccount and every binding of it.
  const text = (await render()).replaceAll('hpc-user-operator-system', install).replaceAll('research', watched);
  const rbac = manifestsOf(text).filter((m) => ['ServiceAccount', 'Role', 'RoleBinding'].includes(m.kind) || (m.kind === 'ClusterRole' && m.metadata.name === OPERATOR_RULES));
  await kubectl(['apply', '--server-side', '--force-conflicts', '-f', '-'], { input: rbac.map((m) => stringify(m)).join('---\n') });
  const asOperator = await serviceAccountKubeConfig(admin, install, 'hpc-user-operator');

  await createCredentialsSecret(admin, watched, 'key', DEV_ACCESS_KEY);
  await createCredentialsSecret(admin, elsewhere, 'key', DEV_ACCESS_KEY);
  operator = await startOperator(asOperator, watchedOf(manifestsOf(text)));
  const spec = { clusterId: 'hpc-namespaced', zone: 'jinan1a', endpoint: simulator.url, allowInsecureHttp: true, credentialsSecretRef: { name: 'key' } };
  await createHpcCluster(admin, watched, 'lab', spec);
  const synced = await waitForReady(admin, watched, 'lab', 'Synced');
  expect(synced.status?.userCount).toBe(1);

  const core = asOperator.makeApiClient(CoreV1Api);
  expect((await core.readNamespacedSecret({ namespace: watched, name: 'key' })).metadata?.name).toBe('key');
  expect(await expectApiError(() => core.readNamespacedSecret({ namespace: elsewhere, name: 'key' }))).toBe(403);
  expect(await expectApiError(() => core.listSecretForAllNamespaces())).toBe(403);
  expect(await expectApiError(() => core.listNamespacedSecret({ namespace: install }))).toBe(403);
  const custom = asOperator.makeApiClient(CustomObjectsApi);
  expect(await expectApiError(() => custom.listNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: elsewhere, plural: PLURAL }))).toBe(403);
  expect(await expectApiError(() => core.createNamespacedConfigMap({ namespace: elsewhere, body: { metadata: { name: 'lab-users' } } }))).toBe(403);
});
