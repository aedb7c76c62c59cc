// The Secret watch carries metadata only: the operator never receives the data of Secrets
// it does not read on purpose.
import { expect, test } from '@jest/globals';
import { CoreV1Api, type KubeConfig, type V1Secret } from '@kubernetes/client-node';
import { pino } from 'pino';
import { ResilientInformer } from '../../src/controller/informer.js';
import { cachedSecretMetadata } from '../../src/controller/cached-objects.js';
import { METADATA_ONLY_ACCEPT } from '../../src/controller/metadata-only.js';
import { createTestNamespace, kubeClientOf, testKubeConfig } from '../../tools/harness/cluster.js';
import { waitFor } from '../../tools/harness/wait-for.js';

/** A Secret informer for `namespace` as the operator builds it: metadata only. */
function metadataOnlySecrets(kubeConfig: KubeConfig, namespace: string): ResilientInformer<V1Secret> {
  return new ResilientInformer<V1Secret>({
    name: 'secrets',
    client: kubeClientOf(kubeConfig),
    path: `/api/v1/namespaces/${namespace}/secrets`,
    accept: METADATA_ONLY_ACCEPT,
    transform: cachedSecretMetadata,
    logger: pino({ level: 'silent' }),
  });
}

test('listed and watched Secrets arrive without their data', async () => {
  const kubeConfig = testKubeConfig();
  const core = kubeConfig.makeApiClient(CoreV1Api);
  const namespace = await createTestNamespace(kubeConfig, 'metadata-only');
  await core.createNamespacedSecret({ namespace, body: { metadata: { name: 'listed' }, stringData: { key: 'listed-value' } } });

  const informer = metadataOnlySecrets(kubeConfig, namespace);
  const added: V1Secret[] = [];
  informer.on('add', (secret) => added.push(secret));
  try {
    await informer.start();
    const listed = informer.get(namespace, 'listed');
    expect(listed?.metadata?.resourceVersion).toMatch(/^\d+$/);
    expect(listed?.data).toBeUndefined();

    // As `kubectl apply` leaves it: the whole Secret, data in clear, in an annotation.
    const lastApplied = JSON.stringify({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'watched' }, stringData: { key: 'watched-value' } });
    const annotations = { 'kubectl.kubernetes.io/last-applied-configuration': lastApplied, 'hpc.shanhe.com/provider-rate-limit': '5000/1h' };
    await core.createNamespacedSecret({ namespace, body: { metadata: { name: 'watched', annotations }, stringData: { key: 'watched-value' } } });
    const watched = await waitFor(() => added.find((s) => s.metadata?.name === 'watched'), { description: 'the watched Secret' });
    expect(watched.metadata?.namespace).toBe(namespace);
    expect(watched.metadata?.annotations).toEqual({ 'hpc.shanhe.com/provider-rate-limit': '5000/1h' });
    expect(watched.data).toBeUndefined();
    // Neither value, plain or as the base64 a Secret's data carries, reached this process.
    const seen = JSON.stringify([...informer.list(), ...added]);
    for (const value of ['listed-value', 'watched-value']) {
      expect(seen).not.toContain(value);
      expect(seen).not.toContain(Buffer.from(value).toString('base64'));
    }
  } finally {
    informer.stop();
  }
});

test('an empty metadata-only list syncs (the apiserver sends items: null)', async () => {
  const kubeConfig = testKubeConfig();
  const namespace = await createTestNamespace(kubeConfig, 'metadata-empty');
  const informer = metadataOnlySecrets(kubeConfig, namespace);
  try {
    await informer.start();
    expect(informer.list()).toEqual([]);
  } finally {
    informer.stop();
  }
});
