import { execFile } from 'node:child_process';
import { availableParallelism, loadavg } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { kubectlPath } from '../tools/controlplane/build.js';
import { writeKubeConfigFile } from '../tools/controlplane/controlplane.js';
import { createTestNamespace } from '../tools/harness/cluster.js';
import { apiserverWrites, createCredentialsSecret, hpcClusterManifest, operatorKubeConfig } from '../tools/harness/operator.js';
import { deploymentNodeOptions, imageNode } from '../tools/node/image-node.js';
import { DEV_ACCESS_KEY, startSimulator } from '../tools/simulator/server.js';
import { generateUsers } from '../tools/simulator/store.js';
import { cpuMs, formatTable, LIFTED_PROVIDER_RATE_LIMIT, mb, procStatusKb, ReadyTimes, runCleanups, startBenchCluster, startBenchOperator } from './controller.js';

/**
 * One install at the scale issue 12 names: 2,000 HpcClusters of 100 users and 100 of 1,000,
 * spread over 20 namespaces, watched by one operator run as shipped (the build, on the image's
 * Node.js major, with the Deployment's NODE_OPTIONS). All applied at once until every one is
 * Ready; then the operator restarts and settles for 15 s. Provider limits lifted, as in the
 * controller bench.
 */

const GROUPS = [
  { prefix: 's', clusters: 2_000, users: 100 },
  { prefix: 'l', clusters: 100, users: 1_000 },
] as const;
const NAMESPACES = 20;
/** kubectl applies running at once, one namespace's List each. */
const APPLIERS = 4;
const SYNC_INTERVAL = '1h';
const READY_TIMEOUT_MS = 30 * 60_000;
const SETTLE_AFTER_RESTART_MS = 15_000;
const MEMORY_GOAL_MB = 256;
const COUNTED_RESOURCES = ['configmaps', 'hpcclusters', 'events'];

const execFileAsync = promisify(execFile);

export async function benchScale(): Promise<void> {
  const cleanups: (() => unknown)[] = [];
  const loadAtStart = loadavg();
  try {
    const { workDir, controlPlane, admin } = await startBenchCluster('scale', cleanups);
    const namespaces: string[] = [];
    for (let i = 0; i < NAMESPACES; i++) {
      const namespace = await createTestNamespace(admin, 'bench-scale');
      await createCredentialsSecret(admin, namespace, 'bench-key', DEV_ACCESS_KEY);
      namespaces.push(namespace);
    }
    // Each HpcCluster reads the simulated cluster of its own name; names are unique across namespaces.
    const clusters = GROUPS.flatMap(({ prefix, clusters: count, users }) =>
      Array.from({ length: count }, (_, i) => ({ name: `${prefix}-${String(i).padStart(4, '0')}`, users })),
    ).map((cluster, i) => ({ ...cluster, namespace: namespaces[i % NAMESPACES] ?? '', seed: i + 1 }));
    const simulator = await startSimulator({
      clusters: clusters.map(({ name, users, seed }) => ({ id: name, users: generateUsers(users, seed) })),
      quota: { limit: Number.MAX_SAFE_INTEGER, windowSeconds: 3600 },
    });
    cleanups.push(() => simulator.close());

    // One ServiceAccount bound cluster-wide, as the default install; startBenchOperator reuses the file.
    writeKubeConfigFile(await operatorKubeConfig(admin, namespaces[0] ?? '', 'cluster'), join(workDir, 'operator-kubeconfig'));
    const startOperator = () => startBenchOperator(admin, namespaces[0] ?? '', workDir, LIFTED_PROVIDER_RATE_LIMIT, cleanups, { watch: namespaces.join(','), shipped: true });
    const first = await startOperator();
    const readyTimes = namespaces.map((namespace) => new ReadyTimes(admin, namespace));
    for (const ready of readyTimes) {
      cleanups.push(() => ready.stop());
      await ready.start();
    }

    const started = performance.now();
    const pending = [...namespaces];
    await Promise.all(
      Array.from({ length: APPLIERS }, async () => {
        for (let namespace = pending.shift(); namespace !== undefined; namespace = pending.shift()) {
          const items = clusters
            .filter((cluster) => cluster.namespace === namespace)
            .map(({ name }) =>
              hpcClusterManifest(namespace, name, {
                clusterId: name,
                zone: 'jinan1a',
                endpoint: simulator.url,
                allowInsecureHttp: true,
                credentialsSecretRef: { name: 'bench-key' },
                syncInterval: SYNC_INTERVAL,
              }),
            );
          const applying = execFileAsync(kubectlPath(), ['--kubeconfig', controlPlane.kubeconfigPath, '--cache-dir', join(workDir, 'kubectl-cache'), 'apply', '-f', '-'], {
            maxBuffer: 16 * 1024 * 1024,
          });
          applying.child.stdin?.end(JSON.stringify({ apiVersion: 'v1', kind: 'List', items }));
          await applying;
        }
      }),
    );
    const appliedMs = performance.now() - started;
    const readyAt = await Promise.all(
      readyTimes.map((ready, i) => ready.allReady(clusters.filter((cluster) => cluster.namespace === namespaces[i]).map(({ name }) => name), READY_TIMEOUT_MS)),
    );
    const allReadyMs = Math.max(...readyAt) - started;
    const syncCalls = simulator.stats().requests;
    const sync = { peakKb: procStatusKb(first.pid, 'VmHWM'), cpuMs: cpuMs(first.pid) };

    await first.stop();
    const writesBefore = await apiserverWrites(admin, COUNTED_RESOURCES);
    const restarted = performance.now();
    const second = await startOperator();
    const restartReadyMs = performance.now() - restarted;
    await sleep(SETTLE_AFTER_RESTART_MS);
    const restart = { peakKb: procStatusKb(second.pid, 'VmHWM'), rssKb: procStatusKb(second.pid, 'VmRSS'), cpuMs: cpuMs(second.pid) };
    const restartWrites = (await apiserverWrites(admin, COUNTED_RESOURCES)) - writesBefore;
    const peakMb = mb(Math.max(sync.peakKb, restart.peakKb));
    const load = (values: number[]) => values.map((value) => value.toFixed(2)).join(' ');

    process.stdout.write(
      [
        `scale: ${GROUPS.map((g) => `${String(g.clusters)} HpcClusters x ${String(g.users)} users`).join(' + ')} in ${String(NAMESPACES)} namespaces, one operator`,
        `(dist/cli/main.js run on Node.js ${(await imageNode()).version}, the image's major, NODE_OPTIONS=${deploymentNodeOptions()} from deploy/manager/deployment.yaml,`,
        `--concurrency 4, syncInterval ${SYNC_INTERVAL}),`,
        `one simulator in the bench process, provider limits lifted (--provider-rate-limit ${LIFTED_PROVIDER_RATE_LIMIT}, simulator quota unlimited);`,
        `applied by ${String(APPLIERS)} concurrent kubectl applies (one List per namespace); then the operator restarted and settled ${String(SETTLE_AFTER_RESTART_MS / 1000)} s.`,
        `Machine: ${String(availableParallelism())} CPUs, load average (1/5/15 min) ${load(loadAtStart)} at the start, ${load(loadavg())} at the end.`,
        formatTable([
          [`apply -> all ${String(clusters.length)} Ready (Synced)`, `${String(Math.round(allReadyMs))} ms`],
          ['  of which the kubectl applies', `${String(Math.round(appliedMs))} ms`],
          ['  provider calls', String(syncCalls)],
          ['  operator CPU (utime+stime), start to all Ready', `${(sync.cpuMs / 1000).toFixed(1)} s`],
          ['  operator peak RSS (VmHWM)', `${String(mb(sync.peakKb))} MB`],
          ['restart: start -> /readyz', `${String(Math.round(restartReadyMs))} ms`],
          [`  operator peak RSS (VmHWM), ${String(SETTLE_AFTER_RESTART_MS / 1000)} s after /readyz`, `${String(mb(restart.peakKb))} MB`],
          [`  operator RSS ${String(SETTLE_AFTER_RESTART_MS / 1000)} s after /readyz`, `${String(mb(restart.rssKb))} MB`],
          ['  operator CPU (utime+stime)', `${(restart.cpuMs / 1000).toFixed(1)} s`],
          ['  provider calls', String(simulator.stats().requests - syncCalls)],
          ['  kube-apiserver writes (configmaps, hpcclusters, events)', String(restartWrites)],
          [`peak RSS under ${String(MEMORY_GOAL_MB)} MiB`, `${peakMb < MEMORY_GOAL_MB ? 'yes' : 'no'} (${String(peakMb)} MB)`],
        ]),
      ].join('\n') + '\n',
    );
  } finally {
    await runCleanups('scale', cleanups);
  }
}
