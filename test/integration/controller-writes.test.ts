// Writes counted where they land, at the kube-apiserver: a resync with nothing changed makes
// none, and a change makes exactly the writes it needs. apiserver_request_total has no
// namespace label, so this file has a control plane of its own: on the shared one, the other
// test files' writes would be counted too.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { CoreV1Api, PatchStrategy, setHeaderOptions, type KubeConfig } from '@kubernetes/client-node';
import { DEV_ACCESS_KEY, startSimulator, type Simulator } from '../../tools/simulator/server.js';
import { createTestNamespace } from '../../tools/harness/cluster.js';
import {
  apiserverWrites,
  createCredentialsSecret,
  createHpcCluster,
  installCrd,
  operatorKubeConfig,
  patchHpcCluster,
  startOperator,
  waitForReady,
  type RunningOperator,
} from '../../tools/harness/operator.js';
import { waitFor } from '../../tools/harness/wait-for.js';
import { useOwnControlPlane } from '../support/own-control-plane.js';

const own = useOwnControlPlane();

// In a describe block, so that its afterAll stops the operator before the control plane stops.
describe('writes at the kube-apiserver', () => {
  let admin: KubeConfig;
  let namespace: string;
  let simulator: Simulator;
  let operator: RunningOperator;
  const RESOURCES = ['configmaps', 'hpcclusters', 'events'];

  beforeAll(async () => {
    admin = own.kubeConfig;
    await installCrd(admin);
    namespace = await createTestNamespace(admin, 'writes');
    simulator = await startSimulator();
    await createCredentialsSecret(admin, namespace, 'key', DEV_ACCESS_KEY);
    operator = await startOperator(await operatorKubeConfig(admin, namespace), namespace);
    simulator.setUsers('hpc-writes', Array.from({ length: 250 }, (_, i) => ({ username: `w${i}`, uid: 10000 + i, gid: 10000 + i, role: 'member' })));
    await createHpcCluster(admin, namespace, 'counted', { clusterId: 'hpc-writes', zone: 'jinan1a', endpoint: simulator.url, allowInsecureHttp: true, credentialsSecretRef: { name: 'key' } });
    await waitForReady(admin, namespace, 'counted', 'Synced');
  });

  afterAll(async () => {
    await operator?.stop();
    await simulator?.close();
  });

  async function reconciles(): Promise<number> {
    const metric = await operator.metrics.registry.getSingleMetric('hpc_user_operator_reconcile_total')?.get();
    return metric?.values.reduce((sum, v) => sum + v.value, 0) ?? 0;
  }

  /** Runs `trigger` (`ownWrites` counted writes of the test's own) and waits until the operator has reconciled; returns the writes it caused. */
  async function writesOfSync(trigger: () => Promise<unknown>, ownWrites = 1): Promise<{ writes: number; providerRequests: number }> {
    const writesBefore = await apiserverWrites(admin, RESOURCES);
    const requestsBefore = simulator.stats().requests;
    const reconcilesBefore = await reconciles();
    await trigger();
    await waitFor(async () => (await reconciles()) > reconcilesBefore, { description: 'the reconcile' });
    return { writes: (await apiserverWrites(admin, RESOURCES)) - writesBefore - ownWrites, providerRequests: simulator.stats().requests - requestsBefore };
  }

  const requestSync = (value: string) => () =>
    patchHpcCluster(admin, namespace, 'counted', { metadata: { annotations: { 'hpc.shanhe.com/sync-requested': value } } });

  test('a resync with nothing changed upstream makes zero write requests', async () => {
    // A Secret change syncs at once; the Secret patch is not among RESOURCES.
    const touchSecret = () =>
      admin
        .makeApiClient(CoreV1Api)
        .patchNamespacedSecret({ namespace, name: 'key', body: { metadata: { annotations: { touched: 'yes' } } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
    const { writes, providerRequests } = await writesOfSync(touchSecret, 0);
    expect(providerRequests).toBe(3);
    expect(writes).toBe(0);
  });

  test('a requested resync with nothing changed makes zero write requests', async () => {
    const { writes, providerRequests } = await writesOfSync(requestSync('unchanged'));
    expect(providerRequests).toBe(3);
    expect(writes).toBe(0);
  });

  test('one user added upstream costs two ConfigMap writes, one status write and one event', async () => {
    simulator.addUser('hpc-writes', { username: 'newcomer', uid: 19999, gid: 19999, role: 'member' });
    const { writes } = await writesOfSync(requestSync('changed'));
    expect(writes).toBe(4);
  });
});
