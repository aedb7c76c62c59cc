// The operator outlives a kube-apiserver restart: resources created afterwards still
// reconcile, and /healthz tells of the outage while it lasts. This file starts a control
// plane of its own, since stopping the shared one would break the tests beside it.
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import type { KubeConfig } from '@kubernetes/client-node';
import fetch from 'node-fetch';
import { DEV_ACCESS_KEY, startSimulator, type Simulator } from '../../tools/simulator/server.js';
import { createTestNamespace } from '../../tools/harness/cluster.js';
import { waitFor } from '../../tools/harness/wait-for.js';
import { useOwnControlPlane } from '../support/own-control-plane.js';
import { createCredentialsSecret, createHpcCluster, installCrd, operatorKubeConfig, startOperator, waitForReady, type RunningOperator } from '../../tools/harness/operator.js';

const own = useOwnControlPlane();
let admin: KubeConfig;
let namespace: string;
let simulator: Simulator;
let operator: RunningOperator;
/** Short, so that the outage below outlasts it. */
const UNWATCHED_LIMIT_MS = 3_000;

beforeAll(async () => {
  admin = own.kubeConfig;
  await installCrd(admin);
  namespace = await createTestNamespace(admin, 'restart');
  simulator = await startSimulator();
  simulator.setUsers('hpc-before', [{ username: 'ida', uid: 61000, gid: 61000, role: 'member' }]);
  simulator.setUsers('hpc-after', [{ username: 'jon', uid: 61001, gid: 61001, role: 'member' }]);
  await createCredentialsSecret(admin, namespace, 'key', DEV_ACCESS_KEY);
  operator = await startOperator(await operatorKubeConfig(admin, namespace), namespace, { unwatchedLimitMs: UNWATCHED_LIMIT_MS });
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

async function probe(path: '/healthz' | '/readyz'): Promise<{ status: number; body: string }> {
  const response = await fetch(`http://${operator.manager.addresses().health ?? ''}${path}`);
  return { status: response.status, body: await response.text() };
}

test('/healthz fails while the informers cannot watch for longer than the limit, and recovers; /readyz stays ready', async () => {
  // Healthy first: the informers may still be backing off from the restart above.
  await waitFor(async () => (await probe('/healthz')).status === 200, { timeoutMs: 90_000, description: '/healthz healthy before the outage' });
  expect(await probe('/healthz')).toEqual({ status: 200, body: 'ok\n' });
  await own.controlPlane.stopApiServer();
  try {
    const unhealthy = await waitFor(
      async () => {
        const answer = await probe('/healthz');
        const stale = ['hpcclusters', 'configmaps', 'secrets'].every((cache) => answer.body.includes(`- ${cache}: `));
        return answer.status === 503 && stale ? answer : undefined;
      },
      { timeoutMs: 30_000, description: '/healthz unhealthy while the kube-apiserver is down' },
    );
    expect(unhealthy.body).toMatch(/^unhealthy:\n(- (hpcclusters|configmaps|secrets): no open watch for \d+ s \(limit 3 s\)\n){3}$/);
    expect((await probe('/readyz')).status).toBe(200);
  } finally {
    await own.controlPlane.startApiServer();
  }
  // The informers back off up to 30 s between attempts while the apiserver is down.
  await waitFor(async () => (await probe('/healthz')).status === 200, { timeoutMs: 90_000, description: '/healthz healthy again' });
}, 300_000);
