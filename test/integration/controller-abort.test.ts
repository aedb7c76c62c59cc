// A running sync is cut short when its resource is deleted or its spec changes (issue 9,
// finding 4): the provider hangs the first request, and the operator's provider timeout is
// longer than any wait below, so only the abort can end that sync in time.
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import { GROUP, PLURAL, VERSION } from '../../src/api/hpccluster.js';
import { DEV_ACCESS_KEY, startSimulator, type Simulator } from '../../tools/simulator/server.js';
import { createTestNamespace, testKubeConfig } from '../../tools/harness/cluster.js';
import {
  createCredentialsSecret,
  createHpcCluster,
  installCrd,
  metricSamples,
  operatorKubeConfig,
  patchHpcCluster,
  startOperator,
  waitForReady,
  type RunningOperator,
} from '../../tools/harness/operator.js';
import { waitFor } from '../../tools/harness/wait-for.js';

let admin: KubeConfig;
let namespace: string;
let simulator: Simulator;
let operator: RunningOperator;
/** Far beyond every wait in this file: a hung request ends by the abort or not at all. */
const PROVIDER_TIMEOUT_MS = 600_000;
const WAIT_MS = 30_000;

beforeAll(async () => {
  admin = testKubeConfig();
  await installCrd(admin);
  namespace = await createTestNamespace(admin, 'abort');
  simulator = await startSimulator();
  simulator.setUsers('hpc-abort', [{ username: 'kim', uid: 62000, gid: 62000, role: 'member' }]);
  await createCredentialsSecret(admin, namespace, 'key', DEV_ACCESS_KEY);
  operator = await startOperator(await operatorKubeConfig(admin, namespace), namespace, { providerTimeoutMs: PROVIDER_TIMEOUT_MS });
});

afterAll(async () => {
  await operator?.stop();
  await simulator?.close();
});

const spec = { clusterId: 'hpc-abort', zone: 'jinan1a', endpoint: '', allowInsecureHttp: true, credentialsSecretRef: { name: 'key' } };

/** Creates `name` with the provider's next request hanging, and waits until that request hangs. */
async function createWithHungSync(name: string): Promise<void> {
  const hungBefore = simulator.stats().hung;
  simulator.setFaults({ hang: { next: 1 } });
  await createHpcCluster(admin, namespace, name, { ...spec, endpoint: simulator.url });
  await waitFor(() => simulator.stats().hung === hungBefore + 1, { timeoutMs: WAIT_MS, description: `the sync of ${name} hanging` });
}

/** reconcile_total by its result label. */
async function reconciles(): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const sample of metricSamples(await operator.metrics.registry.metrics(), 'hpc_user_operator_reconcile_total')) {
    const result = sample.labels.get('result') ?? '';
    counts[result] = (counts[result] ?? 0) + sample.value;
  }
  return counts;
}

test('a spec change aborts the running sync, which runs again for the new generation', async () => {
  await createWithHungSync('respecified');
  const before = await reconciles();
  await patchHpcCluster(admin, namespace, 'respecified', { spec: { syncInterval: '20m' } });
  const object = await waitForReady(admin, namespace, 'respecified', 'Synced', { generation: 2, timeoutMs: WAIT_MS });
  expect(object.status?.userCount).toBe(1);
  // The aborted run is no failure: nothing is counted as an error.
  expect((await reconciles()).error ?? 0).toBe(before.error ?? 0);
});

test('deleting a resource aborts its running sync', async () => {
  await createWithHungSync('deleted');
  const before = await reconciles();
  await admin
    .makeApiClient(CustomObjectsApi)
    .deleteNamespacedCustomObject({ group: GROUP, version: VERSION, namespace, plural: PLURAL, name: 'deleted' });
  // The aborted run counts nothing; the run that finds the resource gone is a success.
  await waitFor(async () => ((await reconciles()).success ?? 0) >= (before.success ?? 0) + 1, {
    timeoutMs: WAIT_MS,
    description: 'the re-run after the abort ending',
  });
  expect((await reconciles()).error ?? 0).toBe(before.error ?? 0);
});
