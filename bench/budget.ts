import { execFile } from 'node:child_process';
import { availableParallelism, loadavg } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { CustomObjectsApi } from '@kubernetes/client-node';
import { GROUP, PLURAL, VERSION, type HpcClusterObject } from '../src/api/hpccluster.js';
import { parseDuration } from '../src/api/duration.js';
import { budgetOf } from '../src/budget/plan.js';
import { validateUsers } from '../src/domain/validate.js';
import { configMapSizeProblem, renderConfigMaps } from '../src/render/configmaps.js';
import { kubectlPath } from '../tools/controlplane/build.js';
import { createTestNamespace } from '../tools/harness/cluster.js';
import { createCredentialsSecret, hpcClusterManifest, metricSamples } from '../tools/harness/operator.js';
import { startSimulator, type AccessKey, type CallRecord } from '../tools/simulator/server.js';
import { generateUsers, toWireRow } from '../tools/simulator/store.js';
import { cpuMs, formatTable, mb, procStatusKb, ReadyTimes, runCleanups, startBenchCluster, startBenchOperator } from './controller.js';

/**
 * The per-key budget at scale: 2,000 HpcClusters of 100 users on 20 access keys, the provider's
 * hour compressed twenty times (2,000 calls per 180 s per key, and 30 s intervals for the usual
 * 10 minutes). The operator runs as a child process against a control plane of the bench's
 * own; the simulator, in this process, logs every call. Measured over two windows once every
 * resource is Ready: the most calls any key made in any window, the share of resources that
 * synced within their effective interval, the operator's CPU and memory. Also: the largest
 * user list one HpcCluster holds before ConfigMapTooLarge.
 */

const CLUSTERS = 2_000;
const USERS = 100;
const KEYS = 20;
const QUOTA = 2_000;
const WINDOW_SECONDS = 180;
const INTERVAL = '30s';
const MEASURED_WINDOWS = 2;

const execFileAsync = promisify(execFile);

/** The most calls of one key inside any window of `windowMs` (a sliding window over the log). */
function maxCallsInAnyWindow(times: readonly number[], windowMs: number): number {
  let most = 0;
  let start = 0;
  for (let end = 0; end < times.length; end++) {
    while ((times[end] ?? 0) - (times[start] ?? 0) >= windowMs) start++;
    most = Math.max(most, end - start + 1);
  }
  return most;
}

/** Times grouped by a key, in the order given. */
function groupTimes(entries: readonly (readonly [string, number])[]): Map<string, number[]> {
  const groups = new Map<string, number[]>();
  for (const [key, at] of entries) {
    const times = groups.get(key);
    if (times === undefined) groups.set(key, [at]);
    else times.push(at);
  }
  return groups;
}

/** The largest generated user list whose ConfigMaps fit, by bisection. */
function largestClusterThatFits(): number {
  const rows = generateUsers(6_000, 1).map((user) => toWireRow('hpc-large', user, '2026-01-01T00:00:00Z'));
  const fits = (count: number): boolean => configMapSizeProblem(renderConfigMaps('chem-lab', validateUsers(rows.slice(0, count)).users)) === undefined;
  let low = 1;
  let high = rows.length;
  while (low < high) {
    const middle = Math.ceil((low + high) / 2);
    if (fits(middle)) low = middle;
    else high = middle - 1;
  }
  return low;
}

export async function benchBudget(): Promise<void> {
  const cleanups: (() => unknown)[] = [];
  const loadAtStart = loadavg()[0] ?? 0;
  try {
    const largest = largestClusterThatFits();
    const { workDir, controlPlane, admin } = await startBenchCluster('budget', cleanups);
    const namespace = await createTestNamespace(admin, 'bench-budget');
    const keys: AccessKey[] = Array.from({ length: KEYS }, (_, i) => ({ id: `BENCHKEY${String(i).padStart(2, '0')}`, secret: `bench-secret-${String(i)}` }));
    for (const key of keys) await createCredentialsSecret(admin, namespace, key.id.toLowerCase(), key);
    const names = Array.from({ length: CLUSTERS }, (_, i) => `c-${String(i).padStart(4, '0')}`);
    const simulator = await startSimulator({
      accessKeys: keys,
      clusters: names.map((id, i) => ({ id, users: generateUsers(USERS, i + 1) })),
      quota: { limit: QUOTA, windowSeconds: WINDOW_SECONDS },
    });
    cleanups.push(() => simulator.close());

    const { pid: operatorPid, address: operatorAddr } = await startBenchOperator(admin, namespace, workDir, `${String(QUOTA)}/${String(WINDOW_SECONDS)}s`, cleanups);
    const ready = new ReadyTimes(admin, namespace);
    cleanups.push(() => ready.stop());
    await ready.start();

    const manifests: HpcClusterObject[] = names.map((name, i) =>
      hpcClusterManifest(namespace, name, {
        clusterId: name,
        zone: 'jinan1a',
        endpoint: simulator.url,
        allowInsecureHttp: true,
        credentialsSecretRef: { name: keys[i % KEYS]?.id.toLowerCase() ?? '' },
        syncInterval: INTERVAL,
      }),
    );
    const started = performance.now();
    const applying = execFileAsync(kubectlPath(), ['--kubeconfig', controlPlane.kubeconfigPath, '--cache-dir', join(workDir, 'kubectl-cache'), 'apply', '-f', '-'], {
      maxBuffer: 64 * 1024 * 1024,
    });
    applying.child.stdin?.end(JSON.stringify({ apiVersion: 'v1', kind: 'List', items: manifests }));
    await applying;
    const allReadyAt = await ready.allReady(names, 900_000);

    // Two windows of steady state, measured from the simulator's call log.
    const windowMs = WINDOW_SECONDS * 1000;
    const cpuBefore = cpuMs(operatorPid);
    const measureFrom = Date.now();
    await sleep(MEASURED_WINDOWS * windowMs);
    const measureTo = Date.now();
    const cpuSpent = cpuMs(operatorPid) - cpuBefore;
    const calls = simulator.calls().filter((c) => c.at >= measureFrom && c.at < measureTo);

    const byKey = groupTimes(calls.map((c) => [c.accessKeyId, c.at]));
    const mostPerWindow = Math.max(...[...byKey.values()].map((times) => maxCallsInAnyWindow(times, windowMs)));
    const refused = calls.filter((c) => c.quotaExceeded).length;

    // Each resource's syncs (first pages) in the measured span, against its effective interval.
    const custom = admin.makeApiClient(CustomObjectsApi);
    const listed = (await custom.listNamespacedCustomObject({ group: GROUP, version: VERSION, namespace, plural: PLURAL })) as { items: HpcClusterObject[] };
    const effectiveMs = new Map(listed.items.map((o) => [o.metadata.name ?? '', parseDuration(o.status?.effectiveSyncInterval ?? INTERVAL) ?? 30_000]));
    const syncs = groupTimes(calls.filter((c: CallRecord) => c.offset === 0 && !c.quotaExceeded).map((c) => [c.clusterId ?? '', c.at]));
    const maxGapRatio = names.map((name) => {
      const times = [measureFrom, ...(syncs.get(name) ?? []), measureTo];
      const gaps = times.slice(1).map((t, i) => t - (times[i] ?? t));
      return Math.max(...gaps) / (effectiveMs.get(name) ?? 30_000);
    });
    const share = (limit: number) => `${((100 * maxGapRatio.filter((r) => r <= limit).length) / names.length).toFixed(1)}%`;
    const exposition = await (await fetch(`http://${operatorAddr}/metrics`)).text();
    const stretched = metricSamples(exposition, 'hpc_user_operator_key_stretched_resources').reduce((n, s) => n + s.value, 0);
    const planned = metricSamples(exposition, 'hpc_user_operator_key_planned_calls_per_hour').map((s) => s.value);

    process.stdout.write(
      [
        `budget: ${String(CLUSTERS)} HpcClusters x ${String(USERS)} users on ${String(KEYS)} access keys, syncInterval ${INTERVAL}; simulator quota`,
        `${String(QUOTA)} calls / ${String(WINDOW_SECONDS)} s per key and --provider-rate-limit ${String(QUOTA)}/${String(WINDOW_SECONDS)}s (the provider's hour, compressed 20x).`,
        `Operator: child process, --concurrency 4, against a local etcd + kube-apiserver. Measured over ${String(MEASURED_WINDOWS)} windows after all were Ready.`,
        `Machine: ${String(availableParallelism())} CPUs, 1-minute load average ${loadAtStart.toFixed(1)} at the start, ${(loadavg()[0] ?? 0).toFixed(1)} at the end.`,
        formatTable([
          ['kubectl apply -> all Ready', `${String(Math.round(allReadyAt - started))} ms`],
          [`most calls of one key in any ${String(WINDOW_SECONDS)} s window (budget ${String(budgetOf({ calls: QUOTA, windowMs }))}, quota ${String(QUOTA)})`, String(mostPerWindow)],
          ['calls answered 2500 (QuotaExceeded)', String(refused)],
          ['calls in all', String(calls.length)],
          ['planned calls/h per key (min..max, per compressed hour)', `${String(Math.round(Math.min(...planned)))}..${String(Math.round(Math.max(...planned)))}`],
          ['stretched resources', String(stretched)],
          ['resources whose every gap between syncs <= effective interval', share(1)],
          ['  <= 1.5 x effective interval', share(1.5)],
          ['operator CPU time over the measured span', `${String(cpuSpent)} ms (${((100 * cpuSpent) / (measureTo - measureFrom)).toFixed(1)}% of one core)`],
          ['operator memory: RSS now / peak (VmHWM)', `${String(mb(procStatusKb(operatorPid, 'VmRSS')))} MB / ${String(mb(procStatusKb(operatorPid, 'VmHWM')))} MB`],
          ['largest generated user list one HpcCluster holds (before ConfigMapTooLarge)', `${String(largest)} users`],
        ]),
      ].join('\n') + '\n',
    );
  } finally {
    await runCleanups('budget', cleanups);
  }
}
