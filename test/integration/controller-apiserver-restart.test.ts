// The operator outlives a kube-apiserver restart: resources created afterwards still
// reconcile. This file starts a control plane of its own, since restarting the shared one
// would break the tests beside it.
import { afterAll, beforeAll, test } from '@jest/globals';
import type { KubeConfig } from '@kubernetes/client-node';
import { DEV_ACCESS_KEY, startSimulator, type Simulator } from '../../tools/simulator/server.js';
import { createTestNamespace } from '../../tools/harness/cluster.js';
import { useOwnControlPlane } from '../support/own-control-plane.js';
import { createCredentialsSecret, createHpcCluster, installCrd, operatorKubeConfig, startOperator, waitForReady, type RunningOperator } from '../../tools/harness/operator.js';

const own = useOwnControlPlane();
let admin: KubeConfig;
let namespace: string;
let simulator: Simulator;
let operator: RunningOperator;

beforeAll(async () => {
  admin = own.kubeConfig;
  await installCrd(admin);
  namespace = await createTestNamespace(admin, 'restart');
  simulator = await startSimulator();
  simulator.setUsers('hpc-before', [{ username: 'ida', uid: 61000, gid: 61000, role: 'member' }]);
  simulator.setUsers('hpc-after', [{ username: 'jon', uid: 61001, gid: 61001, role: 'member' }]);
  await createCredentialsSecret(admin, namespace, 'key', DEV_ACCESS_KEY);
  operator = await startOperator(await operatorKubeConfig(admin, namespace), namespace);
});

afterAll(async () => {
  await operator?.stop();
  await simulator?.close();
});

const spec = (clusterId: string) => ({ clusterId, zone: 'jinan1a', endpoint: simulator.url, allowInsecureHttp: true, credentialsSecretRef: { name: 'key' } });

test('resources created after a kube-apiserver restart still reconcile', async () => {
  await createHpcCluster(admin, namespace, 'before', spec('hpc-before'));
  await waitForReady(admin, namespace, 'before', 'Synced');
  await own.controlPlane.restartApiServer();
  await createHpcCluster(admin, namespace, 'after', spec('hpc-after'));
  // The informers back off up to 30 s between attempts while the apiserver is down.
  await waitForReady(admin, namespace, 'after', 'Synced', { timeoutMs: 90_000 });
});
