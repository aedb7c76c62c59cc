// The per-key call budget end to end (SPEC "When it syncs"): the operator as a process, the
// simulator with a low quota, an hour compressed 25 times (2,000 calls per 144 s) and 30 s
// intervals (the shortest spec.syncInterval allows) for the usual 10 minutes. Each scenario
// has a namespace, simulator, keys and operator of its own, so they run at the same time.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { CoreV1Api, CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import { GROUP, PLURAL, VERSION, type HpcClusterObject } from '../../src/api/hpccluster.js';
import { PROVIDER_RATE_LIMIT_ANNOTATION } from '../../src/budget/declared-rate.js';
import { SYNC_REQUESTED_ANNOTATION } from '../../src/controller/sync-request.js';
import { accessKeyIdentity } from '../../src/provider/key-identity.js';
import { startSimulator, type AccessKey, type Simulator } from '../../tools/simulator/server.js';
import type { QuotaConfig } from '../../tools/simulator/quota.js';
import { generateUsers } from '../../tools/simulator/store.js';
import { kubectlPath } from '../../tools/controlplane/build.js';
import { freePort, writeKubeConfigFile } from '../../tools/controlplane/controlplane.js';
import { createTestNamespace, testKubeConfig, testKubeconfigPath } from '../../tools/harness/cluster.js';
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

/** An hour of the provider, compressed 25 times. */
const HOUR: QuotaConfig = { limit: 2000, windowSeconds: 144 };
const HOUR_RATE = `${String(HOUR.limit)}/${String(HOUR.windowSeconds)}s`;
const INTERVAL = '30s';
const INTERVAL_MS = 30_000;

let admin: KubeConfig;
let workDir: string;
const operators: OperatorProcess[] = [];
const simulators: Simulator[] = [];

beforeAll(async () => {
  admin = testKubeConfig();
  await installCrd(admin);
  workDir = mkdtempSync(join(tmpdir(), 'hpc-budget-test-'));
});

afterAll(async () => {
  await Promise.all(operators.map((p) => p.stop()));
  await Promise.all(simulators.map((s) => s.close()));
  rmSync(workDir, { recursive: true, force: true });
});

const accessKey = (id: string): AccessKey => ({ id: `${id}KEYID`, secret: `${id.toLowerCase()}-secret` });
const secretOf = (key: AccessKey): string => key.id.toLowerCase();

/** One scenario's namespace, simulator (its quota per key), credentials Secrets and operators. */
async function scenario(prefix: string, quota: QuotaConfig, keys: { key: AccessKey; annotations?: Record<string, string> }[]) {
  const namespace = await createTestNamespace(admin, prefix);
  const simulator = await startSimulator({ accessKeys: keys.map((k) => k.key), quota });
  simulators.push(simulator);
  for (const { key, annotations } of keys) await createCredentialsSecret(admin, namespace, secretOf(key), key, annotations);
  const kubeconfigFile = join(workDir, `${namespace}.kubeconfig`);
  writeKubeConfigFile(await operatorKubeConfig(admin, namespace), kubeconfigFile);
  const custom = admin.makeApiClient(CustomObjectsApi);

  /** The operator on this namespace with `--provider-rate-limit rate`, once it leads. */
  async function operator(rate: string): Promise<{ process: OperatorProcess; metrics: () => Promise<string> }> {
    const address = `127.0.0.1:${String(await freePort())}`;
    const replica = spawnOperator([
      '--kubeconfig', kubeconfigFile,
      '--namespaces', namespace,
      '--metrics-addr', address,
      '--health-addr', '127.0.0.1:0',
      '--provider-rate-limit', rate,
      '--allow-loopback-endpoints',
    ]);
    operators.push(replica);
    await replica.waitForLog((l) => l.msg === 'leading: reconciling', 'the operator leading');
    return { process: replica, metrics: async () => (await fetch(`http://${address}/metrics`)).text() };
  }

  /** Creates `count` HpcClusters `prefix-i` on `key`'s Secret, each reading a simulated cluster of `users` users. */
  async function createClusters(clusterPrefix: string, count: number, key: AccessKey, users: number): Promise<string[]> {
    const names = Array.from({ length: count }, (_, i) => `${clusterPrefix}-${String(i)}`);
    const create = async (name: string, i: number): Promise<void> => {
      simulator.setUsers(`hpc-${name}`, generateUsers(users, i + 1));
      const manifest = hpcClusterManifest(namespace, name, {
        clusterId: `hpc-${name}`,
        zone: 'jinan1a',
        endpoint: simulator.url,
        allowInsecureHttp: true,
        credentialsSecretRef: { name: secretOf(key) },
        syncInterval: INTERVAL,
      });
      await custom.createNamespacedCustomObject({ group: GROUP, version: VERSION, namespace, plural: PLURAL, body: manifest });
    };
    // Twenty at a time: a few round trips, not hundreds.
    for (let start = 0; start < count; start += 20) await Promise.all(names.slice(start, start + 20).map((name, i) => create(name, start + i)));
    return names;
  }

  /** Syncs of `name` the simulator has seen: its first-page calls that were answered. */
  const syncsOf = (name: string): number => simulator.calls().filter((c) => c.clusterId === `hpc-${name}` && c.offset === 0 && !c.quotaExceeded).length;

  /** The HpcClusters of the namespace by name, in one list call. */
  async function clusters(): Promise<Map<string, HpcClusterObject>> {
    const list = (await custom.listNamespacedCustomObject({ group: GROUP, version: VERSION, namespace, plural: PLURAL })) as { items: HpcClusterObject[] };
    return new Map(list.items.map((object) => [object.metadata.name ?? '', object]));
  }

  /**
   * Waits until every one of `names` passes `check`. Every 3 s: a list of HpcClusters with
   * hundreds of users in status each is megabytes for the apiserver to send.
   */
  async function waitForAll(names: readonly string[], check: (object: HpcClusterObject) => boolean, description: string, timeoutMs = 120_000): Promise<void> {
    await waitFor(
      async () => {
        const objects = await clusters();
        return names.every((name) => {
          const object = objects.get(name);
          return object !== undefined && check(object);
        });
      },
      { timeoutMs, intervalMs: 3_000, description: `${String(names.length)} HpcClusters ${description}` },
    );
  }

  /** The short label of `key` on this simulator, as metrics show it. */
  const labelOf = (key: AccessKey): string => accessKeyIdentity(simulator.url, key.id, key.secret).short;

  return { namespace, simulator, operator, createClusters, syncsOf, clusters, waitForAll, labelOf };
}

const synced = (object: HpcClusterObject): boolean => readyOf(object)?.reason === 'Synced';

const sample = (exposition: string, metric: string, label: string): number[] =>
  metricSamples(exposition, metric)
    .filter((s) => s.labels.get('key') === label)
    .map((s) => s.value);

test.concurrent('a resource on a fresh key is Ready promptly while four wait on a spent key', async () => {
  const spentKey = accessKey('SPENT');
  const freshKey = accessKey('FRESH');
  const s = await scenario('spent', HOUR, [{ key: spentKey }, { key: freshKey }]);
  // 4 calls an hour per key: one sync each, then nothing for half an hour.
  const { process: replica } = await s.operator('4/1h');
  const waiting = await s.createClusters('spent', 4, spentKey, 10);
  await waitFor(() => waiting.some((name) => s.syncsOf(name) === 1) && waiting, { description: 'one sync on the spent key' });
  // Every other sync of the key is deferred; asking again for the one that synced adds a fourth.
  const once = waiting.find((name) => s.syncsOf(name) === 1) ?? '';
  await patchHpcCluster(admin, s.namespace, once, { metadata: { annotations: { [SYNC_REQUESTED_ANNOTATION]: 'again' } } });
  await replica.waitForLog((l) => l.msg === 'sync deferred' && l.name === once, 'the repeated sync deferred');

  const [fresh] = await s.createClusters('fresh', 1, freshKey, 10);
  await waitForReady(admin, s.namespace, fresh ?? '', 'Synced', { timeoutMs: 15_000 });
  expect(s.simulator.calls().filter((c) => c.accessKeyId === spentKey.id)).toHaveLength(1);
  await replica.stop();
});

test.concurrent('40 resources of 10 pages on one key settle into a stretched plan the provider never refuses', async () => {
  const sharedKey = accessKey('SHARED');
  const s = await scenario('shared', HOUR, [{ key: sharedKey }]);
  const { process: replica, metrics } = await s.operator(HOUR_RATE);
  const names = await s.createClusters('shared', 40, sharedKey, 1000);
  // 40 × 10 pages every 30 s ask for 1,920 calls a window, more than the 1,710 planned for
  // periodic syncs; each gets 42.75 calls a window: 10 × 144 s / 42.75 = 33.7 s, so 34 s.
  // Each status says so from the resource's first sync after the plan saw every page count.
  const stretched = (object: HpcClusterObject): boolean => synced(object) && object.status?.effectiveSyncInterval === '34s';

  // Every resource keeps syncing at its stretched interval: one more sync after its status says so.
  const syncsWhenStretched = new Map<string, number>();
  const everySyncsAgain = waitFor(
    async () => {
      const objects = await s.clusters();
      for (const name of names) {
        const object = objects.get(name);
        if (!syncsWhenStretched.has(name) && object !== undefined && stretched(object)) syncsWhenStretched.set(name, s.syncsOf(name));
      }
      return names.every((name) => s.syncsOf(name) > (syncsWhenStretched.get(name) ?? Infinity));
    },
    { timeoutMs: 200_000, intervalMs: 3_000, description: 'every resource stretched to 34s, then synced again' },
  );

  // A sync request on a stretched resource goes through before its next periodic sync, which
  // is at least half an interval (17 s) after the last one.
  const requested = names[7] ?? '';
  const requestedSync = (async () => {
    await waitFor(() => syncsWhenStretched.has(requested), { timeoutMs: 200_000, intervalMs: 1_000, description: `${requested} stretched` });
    const before = s.syncsOf(requested);
    await waitFor(() => s.syncsOf(requested) > before, { timeoutMs: 60_000, intervalMs: 200, description: `a periodic sync of ${requested}` });
    const after = s.syncsOf(requested);
    await patchHpcCluster(admin, s.namespace, requested, { metadata: { annotations: { [SYNC_REQUESTED_ANNOTATION]: 'now' } } });
    await waitFor(() => s.syncsOf(requested) > after, { timeoutMs: 15_000, intervalMs: 200, description: 'the requested sync' });
  })();
  await Promise.all([everySyncsAgain, requestedSync]);

  // `kubectl get -o wide` shows it, printed by the apiserver from the CRD's columns.
  const { stdout } = await promisify(execFile)(kubectlPath(), ['--kubeconfig', testKubeconfigPath(), 'get', 'hpcc', '-n', s.namespace, '-o', 'wide']);
  const [header = '', ...rows] = stdout.trim().split('\n');
  const column = header.indexOf('EFFECTIVE INTERVAL');
  expect(column).toBeGreaterThan(0);
  expect(rows).toHaveLength(40);
  for (const row of rows) expect(row.slice(column).split(/\s+/)[0]).toBe('34s');

  const exposition = await metrics();
  const label = s.labelOf(sharedKey);
  expect(label).toMatch(/^[0-9a-f]{12}$/);
  expect(exposition).not.toContain(sharedKey.id);
  expect(sample(exposition, 'hpc_user_operator_key_resources', label)).toEqual([40]);
  expect(sample(exposition, 'hpc_user_operator_key_stretched_resources', label)).toEqual([40]);
  const [planned] = sample(exposition, 'hpc_user_operator_key_planned_calls_per_hour', label);
  const [budget] = sample(exposition, 'hpc_user_operator_key_budget_calls_per_hour', label);
  // 1,900 a window (2,000 less 5%), 25 windows an hour.
  expect(budget).toBe(1900 * 25);
  expect(planned).toBeLessThanOrEqual(1900 * 25 * 0.9);
  expect(s.simulator.calls().filter((c) => c.quotaExceeded)).toEqual([]);
  await replica.stop();
}, 300_000);

test.concurrent('a QuotaExceeded answer pauses every resource on the key until the end of the window', async () => {
  // The provider gives the key 3 calls per 40 s; the operator believes it has 2,000 in them.
  const windowMs = 40_000;
  const key = accessKey('SPENDER');
  const s = await scenario('quota', { limit: 3, windowSeconds: windowMs / 1000 }, [{ key }]);
  const { process: replica } = await s.operator(`2000/${String(windowMs / 1000)}s`);
  await s.createClusters('early', 4, key, 10);
  // Three sync; the fourth is answered 2500.
  await waitFor(() => s.simulator.calls().some((c) => c.quotaExceeded), { description: 'a call answered 2500' });
  const windowStart = s.simulator.calls()[0]?.at ?? 0;
  const refusedAt = s.simulator.calls().find((c) => c.quotaExceeded)?.at ?? 0;

  // A resource created now has never met the 2500, and still waits with its key, saying so.
  const [late = ''] = await s.createClusters('late', 1, key, 10);
  const waiting = await waitForReady(admin, s.namespace, late, 'QuotaExceeded');
  expect(readyOf(waiting)?.message).toContain('every resource on it waits until');
  expect(readyOf(waiting)?.message).toContain(s.labelOf(key));

  // Nobody calls until the window ends (by the operator's record, which began a moment
  // before the simulator's); then the key's resources sync again.
  await waitFor(() => s.simulator.calls().some((c) => c.at >= windowStart + windowMs && !c.quotaExceeded), {
    timeoutMs: 2 * windowMs,
    intervalMs: 500,
    description: 'a call answered after the window',
  });
  const duringPause = s.simulator.calls().filter((c) => c.at > refusedAt && c.at < windowStart + windowMs - 1_000);
  expect(duringPause).toEqual([]);
  // In the first window three of the early ones synced (the fourth met the 2500); by now it has synced too.
  const answeredInFirstWindow = s.simulator.calls().filter((c) => c.at < windowStart + windowMs && !c.quotaExceeded);
  expect(new Set(answeredInFirstWindow.map((c) => c.clusterId)).size).toBe(3);
  await replica.stop();
}, 300_000);

test.concurrent("a key whose Secret declares a larger rate is planned with it; one that declares nonsense says so", async () => {
  // The provider gave MORE 10,000 calls per 600 s; the operator's default is 600 (a window
  // that long gives the default bucket a burst of 28, so the first syncs do not wait long).
  const defaultKey = accessKey('DEFAULT');
  const moreKey = accessKey('MORE');
  const badKey = accessKey('BAD');
  const s = await scenario('declared', { limit: 10_000, windowSeconds: 600 }, [
    { key: defaultKey },
    { key: moreKey, annotations: { [PROVIDER_RATE_LIMIT_ANNOTATION]: '10000/600s' } },
    { key: badKey, annotations: { [PROVIDER_RATE_LIMIT_ANNOTATION]: 'lots' } },
  ]);
  const { process: replica, metrics } = await s.operator('600/600s');
  // 8 × 5 pages every 30 s: 800 calls a window. The default budget plans 513 for periodic
  // syncs (570 less 10%), so the default key stretches them to 5 × 600 s / 64.1 = 47 s; the
  // declared one plans 8,550 and stretches nothing.
  const onDefault = await s.createClusters('default', 8, defaultKey, 500);
  const onMore = await s.createClusters('more', 8, moreKey, 500);
  const [onBad] = await s.createClusters('bad', 1, badKey, 10);

  await s.waitForAll(onMore, synced, 'on the declared key Synced');
  // Two more syncs of each after all had synced once: the first of them ran with every page count known, and ended.
  const base = new Map(onMore.map((name) => [name, s.syncsOf(name)]));
  await waitFor(() => onMore.every((name) => s.syncsOf(name) >= (base.get(name) ?? 0) + 2), {
    timeoutMs: 120_000,
    intervalMs: 1_000,
    description: 'two more syncs of each resource on the declared key',
  });
  await s.waitForAll(onDefault, (object) => synced(object) && object.status?.effectiveSyncInterval === '47s', 'on the default key stretched to 47s', 180_000);
  const objects = await s.clusters();
  for (const name of onMore) expect(objects.get(name)?.status?.effectiveSyncInterval).toBeUndefined();

  const exposition = await metrics();
  // Per hour: 9,500 and 570 a window, 6 windows an hour.
  expect(sample(exposition, 'hpc_user_operator_key_budget_calls_per_hour', s.labelOf(moreKey))).toEqual([9500 * 6]);
  expect(sample(exposition, 'hpc_user_operator_key_stretched_resources', s.labelOf(moreKey))).toEqual([0]);
  expect(sample(exposition, 'hpc_user_operator_key_budget_calls_per_hour', s.labelOf(defaultKey))).toEqual([570 * 6]);
  expect(sample(exposition, 'hpc_user_operator_key_stretched_resources', s.labelOf(defaultKey))).toEqual([8]);
  expect(s.simulator.calls().filter((c) => c.quotaExceeded)).toEqual([]);

  // The value that is no rate: the default applies, Ready says why, and a Warning said it once.
  const problem = `Secret ${secretOf(badKey)}: annotation ${PROVIDER_RATE_LIMIT_ANNOTATION} "lots" is not calls per duration`;
  expect(sample(exposition, 'hpc_user_operator_key_budget_calls_per_hour', s.labelOf(badKey))).toEqual([570 * 6]);
  const bad = objects.get(onBad ?? '');
  expect(bad === undefined ? undefined : readyOf(bad)).toMatchObject({ reason: 'Synced', message: expect.stringContaining(problem) });
  const events = await admin.makeApiClient(CoreV1Api).listNamespacedEvent({ namespace: s.namespace, fieldSelector: `involvedObject.name=${onBad ?? ''}` });
  const warnings = events.items.filter((e) => e.reason === 'InvalidProviderRateLimit');
  expect(warnings).toHaveLength(1);
  expect(warnings[0]).toMatchObject({ type: 'Warning', message: expect.stringContaining(problem) });
  await replica.stop();
}, 300_000);

test.concurrent('a restart spreads the syncs of 200 current resources over their interval', async () => {
  const restartKey = accessKey('RESTART');
  const s = await scenario('restart', HOUR, [{ key: restartKey }]);
  const { process: first } = await s.operator(HOUR_RATE);
  const names = await s.createClusters('restart', 200, restartKey, 5);
  await s.waitForAll(names, synced, 'Synced');
  // Their status now says when they synced, and says it only about hourly (zero writes):
  // once an interval has passed every resource looks overdue to a naive rule.
  const syncedAt = Date.now();
  await waitFor(() => Date.now() > syncedAt + INTERVAL_MS && names.every((name) => s.syncsOf(name) >= 2), {
    timeoutMs: 120_000,
    intervalMs: 1_000,
    description: 'a periodic sync of each after their first',
  });
  await first.stop();

  s.simulator.resetStats();
  const { process: second } = await s.operator(HOUR_RATE);
  const leadingAt = Date.now();
  await waitFor(() => names.every((name) => s.syncsOf(name) >= 1), { timeoutMs: 120_000, intervalMs: 1_000, description: 'every resource synced after the restart' });
  await second.stop();
  // The first sync of each resource after the restart, per tenth of the interval: per minute
  // of the usual 10-minute interval.
  const firstCall = new Map<string, number>();
  for (const call of s.simulator.calls()) if (call.clusterId !== undefined && !firstCall.has(call.clusterId)) firstCall.set(call.clusterId, call.at);
  const perTenth = new Array<number>(10).fill(0);
  for (const at of firstCall.values()) perTenth[Math.min(9, Math.max(0, Math.floor(((at - leadingAt) / INTERVAL_MS) * 10)))]! += 1;
  // Evenly spread: 20 a tenth. A burst would put them all in the first.
  expect(Math.max(...perTenth)).toBeLessThanOrEqual(50);
  expect(perTenth.filter((count) => count > 0).length).toBeGreaterThanOrEqual(8);
}, 300_000);
