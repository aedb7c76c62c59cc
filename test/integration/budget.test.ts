// The per-key call budget end to end (SPEC "When it syncs"): the operator as a process,
// the simulator with a low quota, an hour compressed into three minutes (2,000 calls per
// 180 s, and 30 s intervals for the usual 10 minutes).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import { GROUP, PLURAL, VERSION, type HpcClusterObject } from '../../src/api/hpccluster.js';
import { SYNC_REQUESTED_ANNOTATION } from '../../src/controller/plan.js';
import { startSimulator, type AccessKey, type Simulator } from '../../tools/simulator/server.js';
import { generateUsers } from '../../tools/simulator/store.js';
import { freePort, writeKubeConfigFile } from '../../tools/controlplane/controlplane.js';
import { createTestNamespace, testKubeConfig } from '../../tools/harness/cluster.js';
import {
  createCredentialsSecret,
  hpcClusterManifest,
  installCrd,
  metricSamples,
  operatorKubeConfig,
  patchHpcCluster,
  readyOf,
  waitForReady,
} from '../../tools/harness/operator.js';
import { spawnOperator, type OperatorProcess } from '../../tools/harness/operator-process.js';
import { waitFor } from '../../tools/harness/wait-for.js';

/** An hour of the provider, compressed twenty times. */
const WINDOW_SECONDS = 180;
const QUOTA = 2000;
const INTERVAL = '30s';
const INTERVAL_MS = 30_000;

let admin: KubeConfig;
let namespace: string;
let simulator: Simulator;
let workDir: string;
let kubeconfigFile: string;
const started: OperatorProcess[] = [];
const keys: AccessKey[] = ['SPENT', 'FRESH', 'SHARED', 'RESTART'].map((id) => ({ id: `${id}KEYID`, secret: `${id.toLowerCase()}-secret` }));
const [spentKey, freshKey, sharedKey, restartKey] = keys as [AccessKey, AccessKey, AccessKey, AccessKey];

beforeAll(async () => {
  admin = testKubeConfig();
  await installCrd(admin);
  namespace = await createTestNamespace(admin, 'budget');
  simulator = await startSimulator({ accessKeys: keys, quota: { limit: QUOTA, windowSeconds: WINDOW_SECONDS } });
  for (const key of keys) await createCredentialsSecret(admin, namespace, key.id.toLowerCase(), key);
  workDir = mkdtempSync(join(tmpdir(), 'hpc-budget-test-'));
  kubeconfigFile = join(workDir, 'kubeconfig');
  writeKubeConfigFile(await operatorKubeConfig(admin, namespace), kubeconfigFile);
});

afterAll(async () => {
  await Promise.all(started.map((p) => p.stop()));
  await simulator?.close();
  rmSync(workDir, { recursive: true, force: true });
});

async function operator(rate = `${String(QUOTA)}/${String(WINDOW_SECONDS)}s`): Promise<{ process: OperatorProcess; metrics: () => Promise<string> }> {
  const address = `127.0.0.1:${String(await freePort())}`;
  const replica = spawnOperator([
    '--kubeconfig', kubeconfigFile,
    '--namespaces', namespace,
    '--metrics-addr', address,
    '--health-addr', '127.0.0.1:0',
    '--provider-rate-limit', rate,
    '--allow-loopback-endpoints',
  ]);
  started.push(replica);
  await replica.waitForLog((l) => l.msg === 'leading: reconciling', 'the operator leading');
  return { process: replica, metrics: async () => (await fetch(`http://${address}/metrics`)).text() };
}

/** Creates `count` HpcClusters `prefix-i` on `key`'s Secret, each reading a simulated cluster of `users` users. */
async function createClusters(prefix: string, count: number, key: AccessKey, users: number): Promise<string[]> {
  const custom = admin.makeApiClient(CustomObjectsApi);
  const names = Array.from({ length: count }, (_, i) => `${prefix}-${String(i)}`);
  for (const [i, name] of names.entries()) {
    simulator.setUsers(`hpc-${name}`, generateUsers(users, i + 1));
    const manifest = hpcClusterManifest(namespace, name, {
      clusterId: `hpc-${name}`,
      zone: 'jinan1a',
      endpoint: simulator.url,
      allowInsecureHttp: true,
      credentialsSecretRef: { name: key.id.toLowerCase() },
      syncInterval: INTERVAL,
    });
    await custom.createNamespacedCustomObject({ group: GROUP, version: VERSION, namespace, plural: PLURAL, body: manifest });
  }
  return names;
}

/** Deletes the HpcClusters a test made, so their syncs do not weigh on the next test. */
async function deleteClusters(names: readonly string[]): Promise<void> {
  const custom = admin.makeApiClient(CustomObjectsApi);
  for (const name of names) await custom.deleteNamespacedCustomObject({ group: GROUP, version: VERSION, namespace, plural: PLURAL, name });
}

/** Syncs of `name` the simulator has seen: its first-page calls that were answered. */
const syncsOf = (name: string): number => simulator.calls().filter((c) => c.clusterId === `hpc-${name}` && c.offset === 0 && !c.quotaExceeded).length;

const sample = (exposition: string, metric: string, key?: string): number[] =>
  metricSamples(exposition, metric)
    .filter((s) => key === undefined || s.labels.get('key') === key)
    .map((s) => s.value);

/** The HpcClusters of the namespace by name, in one list call. */
async function listClusters(): Promise<Map<string, HpcClusterObject>> {
  const custom = admin.makeApiClient(CustomObjectsApi);
  const list = (await custom.listNamespacedCustomObject({ group: GROUP, version: VERSION, namespace, plural: PLURAL })) as { items: HpcClusterObject[] };
  return new Map(list.items.map((object) => [object.metadata.name ?? '', object]));
}

/** Waits until every one of `names` passes `check`. */
async function waitForAll(names: readonly string[], check: (object: HpcClusterObject) => boolean, description: string, timeoutMs: number): Promise<void> {
  await waitFor(
    async () => {
      const objects = await listClusters();
      return names.every((name) => {
        const object = objects.get(name);
        return object !== undefined && check(object);
      });
    },
    { timeoutMs, intervalMs: 2_000, description: `${String(names.length)} HpcClusters ${description}` },
  );
}

const allSynced = (names: readonly string[], timeoutMs: number): Promise<void> =>
  waitForAll(names, (object) => readyOf(object)?.reason === 'Synced', 'Synced', timeoutMs);

test('a resource on a fresh key is Ready promptly while four wait on a spent key', async () => {
  // 4 calls an hour per key: one sync each, then nothing for half an hour.
  const { process: replica } = await operator('4/1h');
  const waiting = await createClusters('spent', 4, spentKey, 10);
  try {
    await waitFor(() => waiting.some((name) => syncsOf(name) === 1) && waiting, { description: 'one sync on the spent key' });
    // Every other sync of the key is deferred; asking again for the one that synced adds a fourth.
    const synced = waiting.find((name) => syncsOf(name) === 1) ?? '';
    await patchHpcCluster(admin, namespace, synced, { metadata: { annotations: { [SYNC_REQUESTED_ANNOTATION]: 'again' } } });
    await replica.waitForLog((l) => l.msg === 'sync deferred' && l.name === synced, 'the repeated sync deferred');

    const fresh = await createClusters('fresh', 1, freshKey, 10);
    waiting.push(...fresh);
    await waitForReady(admin, namespace, fresh[0] ?? '', 'Synced', { timeoutMs: 15_000 });
    expect(simulator.calls().filter((c) => c.accessKeyId === spentKey.id)).toHaveLength(1);
  } finally {
    await replica.stop();
    await deleteClusters(waiting);
  }
});

test('40 resources of 10 pages on one key settle into a stretched plan the provider never refuses', async () => {
  simulator.resetStats();
  const { process: replica, metrics } = await operator();
  const names = await createClusters('shared', 40, sharedKey, 1000);
  try {
    await allSynced(names, 180_000);
    // 2,400 calls a window asked for, 1,710 planned for periodic syncs: 10 × 180 s / 42.75 = 42.1 s.
    // Each status says so from the resource's first sync after the plan saw every page count.
    await waitForAll(names, (object) => object.status?.effectiveSyncInterval === '43s', 'with effectiveSyncInterval 43s', 180_000);
    const exposition = await metrics();
    const [label] = metricSamples(exposition, 'hpc_user_operator_key_resources').filter((s) => s.value === 40).map((s) => s.labels.get('key'));
    expect(label).toMatch(/^[0-9a-f]{12}$/);
    expect(exposition).not.toContain(sharedKey.id);
    expect(sample(exposition, 'hpc_user_operator_key_stretched_resources', label)).toEqual([40]);
    const [planned] = sample(exposition, 'hpc_user_operator_key_planned_calls_per_hour', label);
    const [budget] = sample(exposition, 'hpc_user_operator_key_budget_calls_per_hour', label);
    expect(planned).toBeLessThanOrEqual((budget ?? 0) * 0.9);

    // Every resource keeps syncing at its stretched interval.
    const first = new Map(names.map((name) => [name, syncsOf(name)]));
    await waitFor(() => names.every((name) => syncsOf(name) > (first.get(name) ?? 0)), {
      timeoutMs: 180_000,
      intervalMs: 1_000,
      description: 'every resource synced again',
    });

    // A sync request on a stretched resource goes through before its next periodic sync.
    const requested = names[7] ?? '';
    const before = syncsOf(requested);
    await patchHpcCluster(admin, namespace, requested, { metadata: { annotations: { [SYNC_REQUESTED_ANNOTATION]: 'now' } } });
    await waitFor(() => syncsOf(requested) > before, { timeoutMs: 20_000, description: 'the requested sync' });
    expect(simulator.calls().filter((c) => c.quotaExceeded)).toEqual([]);
  } finally {
    await replica.stop();
    await deleteClusters(names);
  }
}, 480_000);

test('a restart spreads the syncs of 200 current resources over their interval', async () => {
  simulator.resetStats();
  const { process: first } = await operator();
  const names = await createClusters('restart', 200, restartKey, 5);
  try {
    await restartSpreads(first, names);
  } finally {
    await deleteClusters(names);
  }
}, 480_000);

async function restartSpreads(first: OperatorProcess, names: readonly string[]): Promise<void> {
  await allSynced(names, 180_000);
  // Their status now says when they synced, and says it only about hourly (zero writes):
  // once an interval has passed every resource looks overdue to a naive rule.
  const syncedAt = Date.now();
  await waitFor(() => Date.now() > syncedAt + INTERVAL_MS && names.every((name) => syncsOf(name) >= 2), {
    timeoutMs: 120_000,
    intervalMs: 1_000,
    description: 'a periodic sync of each after their first',
  });
  await first.stop();

  simulator.resetStats();
  const { process: second } = await operator();
  const leadingAt = Date.now();
  await waitFor(() => names.every((name) => syncsOf(name) >= 1), { timeoutMs: 120_000, intervalMs: 1_000, description: 'every resource synced after the restart' });
  await second.stop();
  // The first sync of each resource after the restart, per tenth of the interval.
  const firstCall = new Map<string, number>();
  for (const call of simulator.calls()) if (call.clusterId !== undefined && !firstCall.has(call.clusterId)) firstCall.set(call.clusterId, call.at);
  const perTenth = new Array<number>(10).fill(0);
  for (const at of firstCall.values()) perTenth[Math.min(9, Math.max(0, Math.floor(((at - leadingAt) / INTERVAL_MS) * 10)))]! += 1;
  // Evenly spread: 20 a tenth. A burst would put them all in the first.
  expect(Math.max(...perTenth)).toBeLessThanOrEqual(50);
  expect(perTenth.filter((count) => count > 0).length).toBeGreaterThanOrEqual(8);
}
