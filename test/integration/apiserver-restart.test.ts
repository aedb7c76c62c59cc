// A watch survives a restart of the kube-apiserver process. This file starts a control plane
// of its own: restarting the shared one would break the tests running beside it.
import { expect, test } from '@jest/globals';
import { CoreV1Api, makeInformer, type V1ConfigMap } from '@kubernetes/client-node';
import { useOwnControlPlane } from '../support/own-control-plane.js';
import { createTestNamespace } from '../../tools/harness/cluster.js';
import { waitFor } from '../../tools/harness/wait-for.js';

const own = useOwnControlPlane();

test('an informer restarted on error sees objects created after a kube-apiserver restart', async () => {
  const { controlPlane, kubeConfig } = own;
  const namespace = await createTestNamespace(kubeConfig, 'restart');
  const core = kubeConfig.makeApiClient(CoreV1Api);
  const informer = makeInformer(kubeConfig, `/api/v1/namespaces/${namespace}/configmaps`, () =>
    core.listNamespacedConfigMap({ namespace }),
  );
  const added = new Set<string>();
  let errors = 0;
  let stopping = false;
  informer.on('add', (configMap: V1ConfigMap) => added.add(configMap.metadata?.name ?? ''));
  // client-node's informer stops for good on a connection error; restarting it is the
  // caller's job. It resumes from the last resourceVersion it saw (or re-lists on 410).
  informer.on('error', () => {
    errors++;
    if (!stopping) setTimeout(() => void informer.start(), 250);
  });
  await informer.start();

  try {
    await core.createNamespacedConfigMap({ namespace, body: { metadata: { name: 'before-restart' } } });
    await waitFor(() => added.has('before-restart'), { description: 'the informer to see before-restart' });

    await controlPlane.restartApiServer();
    await core.createNamespacedConfigMap({ namespace, body: { metadata: { name: 'after-restart' } } });
    await waitFor(() => added.has('after-restart'), {
      timeoutMs: 60_000,
      description: 'the informer to see after-restart',
    });

    expect(errors).toBeGreaterThan(0);
    expect(informer.list(namespace).map((configMap) => configMap.metadata?.name).sort()).toEqual([
      'after-restart',
      'before-restart',
    ]);
  } finally {
    stopping = true;
    await informer.stop();
  }
});
