// What the tests rely on the harness for, beyond the apiserver itself (its CRUD, conflicts,
// CRDs and validation are Kubernetes' to test): an identity from serviceAccountKubeConfig is
// a ServiceAccount that RBAC confines, not the admin (the operator-under-RBAC and tenant tests
// would pass vacuously otherwise), and as a kubeconfig file it drives the built kubectl.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { CoreV1Api, RbacAuthorizationV1Api, type KubeConfig } from '@kubernetes/client-node';
import { kubectlPath } from '../../tools/controlplane/build.js';
import { serviceAccountKubeConfig, writeKubeConfigFile } from '../../tools/controlplane/controlplane.js';
import { createTestNamespace, deleteTestNamespace, expectApiError, testKubeConfig } from '../../tools/harness/cluster.js';
import { waitFor } from '../../tools/harness/wait-for.js';

const runFile = promisify(execFile);

let kubeConfig: KubeConfig;
let core: CoreV1Api;
let namespace: string;

beforeAll(async () => {
  kubeConfig = testKubeConfig();
  core = kubeConfig.makeApiClient(CoreV1Api);
  namespace = await createTestNamespace(kubeConfig, 'controlplane');
});

afterAll(async () => {
  await deleteTestNamespace(kubeConfig, namespace);
});

describe('RBAC', () => {
  test('a ServiceAccount bound to a narrow Role is refused with 403 outside it', async () => {
    const rbac = kubeConfig.makeApiClient(RbacAuthorizationV1Api);
    await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name: 'narrow' } } });
    await rbac.createNamespacedRole({
      namespace,
      body: {
        metadata: { name: 'configmap-reader' },
        rules: [{ apiGroups: [''], resources: ['configmaps'], verbs: ['get', 'list'] }],
      },
    });
    await rbac.createNamespacedRoleBinding({
      namespace,
      body: {
        metadata: { name: 'narrow-reads-configmaps' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'configmap-reader' },
        subjects: [{ kind: 'ServiceAccount', name: 'narrow', namespace }],
      },
    });
    const otherNamespace = await createTestNamespace(kubeConfig, 'rbac-other');

    const narrow = await serviceAccountKubeConfig(kubeConfig, namespace, 'narrow');
    const narrowCore = narrow.makeApiClient(CoreV1Api);

    // Inside the Role: allowed (RBAC changes can take a moment to reach the authorizer).
    await waitFor(() => narrowCore.listNamespacedConfigMap({ namespace }), { description: 'the RoleBinding to apply' });
    // Outside it: another verb, another resource, another namespace.
    expect(
      await expectApiError(() =>
        narrowCore.createNamespacedConfigMap({ namespace, body: { metadata: { name: 'not-mine' } } }),
      ),
    ).toBe(403);
    expect(await expectApiError(() => narrowCore.listNamespacedSecret({ namespace }))).toBe(403);
    expect(await expectApiError(() => narrowCore.listNamespacedConfigMap({ namespace: otherNamespace }))).toBe(403);

    // The same identity as a kubeconfig file, for kubectl or an operator process.
    const dir = mkdtempSync(join(tmpdir(), 'hpc-narrow-'));
    try {
      const narrowKubeconfig = join(dir, 'kubeconfig');
      writeKubeConfigFile(narrow, narrowKubeconfig);
      const kubectl = (...args: string[]) => runFile(kubectlPath(), ['--kubeconfig', narrowKubeconfig, '-n', namespace, ...args]);
      expect((await kubectl('auth', 'whoami', '-o', 'jsonpath={.status.userInfo.username}')).stdout).toBe(
        `system:serviceaccount:${namespace}:narrow`,
      );
      await expect(kubectl('get', 'secrets')).rejects.toThrow(/Forbidden/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }

    await deleteTestNamespace(kubeConfig, otherNamespace);
  });
});
