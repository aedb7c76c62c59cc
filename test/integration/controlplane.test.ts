// The shared control plane behaves like a real cluster where operators break: core objects,
// CRDs with schema validation and a status subresource, optimistic concurrency, RBAC, and
// kubectl apply.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import {
  ApiException,
  ApiextensionsV1Api,
  CoreV1Api,
  CustomObjectsApi,
  RbacAuthorizationV1Api,
  type KubeConfig,
  type V1CustomResourceDefinition,
} from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { kubectlPath } from '../../tools/controlplane/build.js';
import { serviceAccountKubeConfig, writeKubeConfigFile } from '../../tools/controlplane/controlplane.js';
import { createTestNamespace, deleteTestNamespace, expectApiError, testKubeConfig, testKubeconfigPath } from '../../tools/harness/cluster.js';
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

describe('core objects', () => {
  test('a ConfigMap and a Secret read back as written', async () => {
    await core.createNamespacedConfigMap({
      namespace,
      body: { metadata: { name: 'settings' }, data: { 'home.root': '/nas/home' } },
    });
    await core.createNamespacedSecret({
      namespace,
      body: { metadata: { name: 'credentials' }, stringData: { accessKey: 'AK-test' } },
    });

    const configMap = await core.readNamespacedConfigMap({ namespace, name: 'settings' });
    expect(configMap.data).toEqual({ 'home.root': '/nas/home' });
    const secret = await core.readNamespacedSecret({ namespace, name: 'credentials' });
    expect(secret.data).toEqual({ accessKey: Buffer.from('AK-test').toString('base64') });
  });

  test('an update from a stale copy is refused with 409 Conflict', async () => {
    const created = await core.createNamespacedConfigMap({
      namespace,
      body: { metadata: { name: 'contended' }, data: { writer: 'nobody' } },
    });
    await core.replaceNamespacedConfigMap({
      namespace,
      name: 'contended',
      body: { ...created, data: { writer: 'first' } },
    });

    // `created` still carries the resourceVersion from before the first update.
    const error = await core
      .replaceNamespacedConfigMap({ namespace, name: 'contended', body: { ...created, data: { writer: 'second' } } })
      .then(
        () => undefined,
        (failure: unknown) => failure,
      );
    expect(error).toBeInstanceOf(ApiException);
    const apiError = error as ApiException<string>;
    expect(apiError.code).toBe(409);
    expect((JSON.parse(apiError.body) as { reason?: string }).reason).toBe('Conflict');
    const stored = await core.readNamespacedConfigMap({ namespace, name: 'contended' });
    expect(stored.data).toEqual({ writer: 'first' });
  });
});

describe('a custom resource', () => {
  const group = 'controlplane-test.hpc-user-operator.io';
  const plural = 'widgets';
  const version = 'v1';
  const crd: V1CustomResourceDefinition = {
    metadata: { name: `${plural}.${group}` },
    spec: {
      group,
      scope: 'Namespaced',
      names: { plural, singular: 'widget', kind: 'Widget', listKind: 'WidgetList' },
      versions: [
        {
          name: version,
          served: true,
          storage: true,
          subresources: { status: {} },
          schema: {
            openAPIV3Schema: {
              type: 'object',
              properties: {
                spec: {
                  type: 'object',
                  required: ['size'],
                  properties: { size: { type: 'integer', minimum: 1 } },
                },
                status: { type: 'object', properties: { phase: { type: 'string' } } },
              },
            },
          },
        },
      ],
    },
  };
  let customObjects: CustomObjectsApi;

  interface Widget {
    metadata: { name: string; resourceVersion?: string };
    spec: { size: number };
    status?: { phase?: string };
  }

  beforeAll(async () => {
    customObjects = kubeConfig.makeApiClient(CustomObjectsApi);
    const extensions = kubeConfig.makeApiClient(ApiextensionsV1Api);
    await extensions.createCustomResourceDefinition({ body: crd });
    await waitFor(
      async () => {
        const stored = await extensions.readCustomResourceDefinition({ name: crd.metadata?.name ?? '' });
        return stored.status?.conditions?.some((condition) => condition.type === 'Established' && condition.status === 'True');
      },
      { description: 'the CRD to be established' },
    );
  });

  // The namespace is only known once the suite runs, so it is added per call.
  const widgets = { group, version, plural };

  test('is created, read and updated, with status only through the status subresource', async () => {
    const target = { ...widgets, namespace };
    await customObjects.createNamespacedCustomObject({
      ...target,
      body: { apiVersion: `${group}/${version}`, kind: 'Widget', metadata: { name: 'w1' }, spec: { size: 1 } },
    });

    const read = (await customObjects.getNamespacedCustomObject({ ...target, name: 'w1' })) as Widget;
    expect(read.spec).toEqual({ size: 1 });

    // A status written through the main resource is dropped.
    const updated = (await customObjects.replaceNamespacedCustomObject({
      ...target,
      name: 'w1',
      body: { ...read, spec: { size: 3 }, status: { phase: 'Ignored' } },
    })) as Widget;
    expect(updated.spec).toEqual({ size: 3 });
    expect(updated.status).toBeUndefined();

    // A spec written through the status subresource is dropped.
    const withStatus = (await customObjects.replaceNamespacedCustomObjectStatus({
      ...target,
      name: 'w1',
      body: { ...updated, spec: { size: 99 }, status: { phase: 'Ready' } },
    })) as Widget;
    expect(withStatus.status).toEqual({ phase: 'Ready' });
    expect(withStatus.spec).toEqual({ size: 3 });

    const final = (await customObjects.getNamespacedCustomObject({ ...target, name: 'w1' })) as Widget;
    expect(final).toMatchObject({ spec: { size: 3 }, status: { phase: 'Ready' } });
  });

  test('is validated against the CRD schema', async () => {
    const code = await expectApiError(() =>
      customObjects.createNamespacedCustomObject({
        ...widgets,
        namespace,
        body: { apiVersion: `${group}/${version}`, kind: 'Widget', metadata: { name: 'w0' }, spec: { size: 0 } },
      }),
    );
    expect(code).toBe(422);
  });

  afterAll(async () => {
    await kubeConfig.makeApiClient(ApiextensionsV1Api).deleteCustomResourceDefinition({ name: crd.metadata?.name ?? '' });
  });
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

describe('kubectl', () => {
  test('kubectl apply -f creates and then updates what the manifest describes', async () => {
    const manifestDir = mkdtempSync(join(tmpdir(), 'hpc-manifest-'));
    const manifest = join(manifestDir, 'configmap.yaml');
    const configMap = (value: string) => ({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'applied', namespace },
      data: { value },
    });
    const apply = () => runFile(kubectlPath(), ['--kubeconfig', testKubeconfigPath(), 'apply', '-f', manifest]);
    try {
      writeFileSync(manifest, stringify(configMap('one')));
      expect((await apply()).stdout).toContain('configmap/applied created');
      writeFileSync(manifest, stringify(configMap('two')));
      expect((await apply()).stdout).toContain('configmap/applied configured');
    } finally {
      rmSync(manifestDir, { recursive: true, force: true });
    }

    const stored = await core.readNamespacedConfigMap({ namespace, name: 'applied' });
    expect(stored.data).toEqual({ value: 'two' });
  });
});
