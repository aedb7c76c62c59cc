// The operator as real processes: leader election between two replicas, a replica killed
// outright, and SIGTERM draining in-flight work.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { CoordinationV1Api, type KubeConfig } from '@kubernetes/client-node';
import { DEV_ACCESS_KEY, startSimulator, type Simulator } from '../../tools/simulator/server.js';
import { writeKubeConfigFile } from '../../tools/controlplane/controlplane.js';
import { createTestNamespace, testKubeConfig } from '../../tools/harness/cluster.js';
import { createCredentialsSecret, createHpcCluster, installCrd, operatorKubeConfig, patchHpcCluster, readHpcCluster, waitForReady } from '../../tools/harness/operator.js';
import { spawnOperator, type OperatorProcess } from '../../tools/harness/operator-process.js';
import { waitFor } from '../../tools/harness/wait-for.js';

let admin: KubeConfig;
let namespace: string;
let simulator: Simulator;
let workDir: string;
let kubeconfigFile: string;
const started: OperatorProcess[] = [];

beforeAll(async () => {
  admin = testKubeConfig();
  await installCrd(admin);
  namespace = await createTestNamespace(admin, 'procs');
  simulator = await startSimulator();
  await createCredentialsSecret(admin, namespace, 'key', DEV_ACCESS_KEY);
  workDir = mkdtempSync(join(tmpdir(), 'hpc-operator-test-'));
  kubeconfigFile = join(workDir, 'kubeconfig');
  writeKubeConfigFile(await operatorKubeConfig(admin, namespace), kubeconfigFile);
});

afterAll(async () => {
  await Promise.all(started.map((p) => p.stop()));
  await simulator?.close();
  rmSync(workDir, { recursive: true, force: true });
});

function operator(extra: string[] = []): OperatorProcess {
  const replica = spawnOperator([
    '--kubeconfig', kubeconfigFile,
    '--namespaces', namespace,
    '--metrics-addr', '127.0.0.1:0',
    '--health-addr', '127.0.0.1:0',
    '--drain-timeout', '20s',
    '--allow-loopback-endpoints',
    ...extra,
  ]);
  started.push(replica);
  return replica;
}

const leaderElection = (lease: string): string[] => ['--leader-elect', '--leader-election-namespace', namespace, '--leader-election-id', lease];
const isLeading = (line: { msg?: string }) => line.msg === 'leading: reconciling';
const reconciled = (name: string) => (l: { msg?: string; name?: unknown }) => l.msg === 'reconciled' && l.name === name;
const reconciledBy = (p: OperatorProcess, name: string) => p.logs.filter(reconciled(name)).length;

async function cluster(name: string, clusterId: string, usernames: string[]) {
  simulator.setUsers(clusterId, usernames.map((username, i) => ({ username, uid: 50000 + i, gid: 50000 + i, role: 'member' })));
  await createHpcCluster(admin, namespace, name, { clusterId, zone: 'jinan1a', endpoint: simulator.url, allowInsecureHttp: true, credentialsSecretRef: { name: 'key' } });
  return waitForReady(admin, namespace, name, 'Synced', { timeoutMs: 60_000 });
}

test('of two replicas only the leader writes, and the other takes over when the leader is killed', async () => {
  const first = operator(leaderElection('failover'));
  const second = operator(leaderElection('failover'));
  await waitFor(() => first.logs.some(isLeading) || second.logs.some(isLeading), { timeoutMs: 60_000, description: 'a leader' });
  const [leader, follower] = first.logs.some(isLeading) ? [first, second] : [second, first];
  await follower.waitForLog((l) => l.msg === 'caches synced', 'the follower caches synced');

  await cluster('elected', 'hpc-elected', ['ada', 'bea']);
  // The status is written before the log line reaches this process: wait for the line.
  await leader.waitForLog(reconciled('elected'), 'the leader reconciling');
  expect(reconciledBy(follower, 'elected')).toBe(0);
  expect(follower.logs.some(isLeading)).toBe(false);

  await leader.signal('SIGKILL');
  // The guard reports its child's death by SIGKILL as 128 + 9.
  expect(await leader.exited).toBe(137);
  await follower.waitForLog(isLeading, 'the follower taking over after the lease expires', 60_000);
  await cluster('after-failover', 'hpc-failover', ['cid']);
  await follower.waitForLog(reconciled('after-failover'), 'the new leader reconciling');
  await follower.stop();
});

test('SIGTERM finishes the in-flight sync, releases the lease and exits 0', async () => {
  const replica = operator(leaderElection('draining'));
  await replica.waitForLog(isLeading, 'leadership');
  await cluster('draining', 'hpc-draining', ['dee']);

  // A slow provider keeps the next sync in flight while SIGTERM arrives.
  simulator.addUser('hpc-draining', { username: 'eli', uid: 50010, gid: 50010, role: 'member' });
  simulator.setFaults({ latencyMs: 1_500 });
  const requestsBefore = simulator.stats().requests;
  try {
    await patchHpcCluster(admin, namespace, 'draining', { metadata: { annotations: { 'hpc.shanhe.com/sync-requested': 'drain' } } });
    await waitFor(() => simulator.stats().requests > requestsBefore, { description: 'the sync reaching the provider' });
    await replica.signal('SIGTERM');
    expect(await replica.exited).toBe(0);
  } finally {
    simulator.clearFaults();
  }
  const object = await readHpcCluster(admin, namespace, 'draining');
  expect(object.status?.users?.map((u) => u.username)).toEqual(['dee', 'eli']);
  const lease = await admin.makeApiClient(CoordinationV1Api).readNamespacedLease({ namespace, name: 'draining' });
  expect(lease.spec?.holderIdentity ?? '').toBe('');
});
