import { availableParallelism, loadavg } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { AdmissionregistrationV1Api, CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import fetch from 'node-fetch';
import { DEV_ACCESS_KEY, startSimulator } from '../tools/simulator/server.js';
import { generateUsers, type SimulatedUser } from '../tools/simulator/store.js';
import { freePort } from '../tools/controlplane/controlplane.js';
import { createTestNamespace } from '../tools/harness/cluster.js';
import { createCredentialsSecret, createHpcCluster, metricSamples, WEBHOOK_CONFIGURATION, type MetricSample } from '../tools/harness/operator.js';
import { installWebhookConfiguration } from '../tools/harness/webhook.js';
import { waitFor } from '../tools/harness/wait-for.js';
import { deploymentNodeOptions, imageNode } from '../tools/node/image-node.js';
import { formatTable, LIFTED_PROVIDER_RATE_LIMIT, mb, procStatusKb, ReadyTimes, runCleanups, startBenchCluster, startBenchOperator } from './controller.js';

/**
 * Admission latency of the pod identity webhook: `hpc-user-operator run --webhook-addr` as a
 * child process serving the real kube-apiserver over verified TLS (the shipped
 * MutatingWebhookConfiguration, reached by URL), with HpcClusters of 1,000 users each synced
 * into its caches. Pods claiming a random user of a random HpcCluster are created one after
 * the other; latency is read three ways: inside the webhook (the operator's own histogram), at
 * the kube-apiserver (its admission webhook histogram) and end to end (the create round-trip).
 * First with 10 HpcClusters cached, then with 100: the answer is a map lookup, so it should not
 * grow. Then the operator's memory with the webhook on and off, each a fresh process on the
 * same 100 synced HpcClusters.
 */

const USERS = 1_000;
const FEW_CLUSTERS = 10;
const MANY_CLUSTERS = 100;
const PODS = 500;
const WARM_UP_PODS = 20;
/** Waited before memory is read, so start-up garbage has been collected as it would be idle. */
const SETTLE_MS = 5_000;
const WEBHOOK_NAME = 'pod-identity.hpc.shanhe.com';

interface Latency {
  p50Ms: number;
  p99Ms: number;
  meanMs: number;
}

interface Round {
  clusters: number;
  endToEnd: Latency;
  /** From the kube-apiserver's histogram, whose smallest bucket is 5 ms. */
  apiserver: Latency & { underFiveMs: number };
  webhook: Latency;
  refused: number;
}

export interface WebhookBenchResult {
  rounds: Round[];
  rss: { webhookOffMb: number; webhookOnMb: number; webhookOnAfterAdmissionsMb: number; webhookOnPeakMb: number };
  loadAverage: { start: number; end: number };
}

const quantile = (sorted: readonly number[], q: number): number => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] ?? NaN;

/** A histogram's cumulative buckets (le -> count), its sum and count, added over label sets. */
interface Histogram {
  buckets: Map<number, number>;
  sum: number;
  count: number;
}

function histogramOf(exposition: string, name: string, matches: (sample: MetricSample) => boolean = () => true): Histogram {
  const buckets = new Map<number, number>();
  for (const sample of metricSamples(exposition, `${name}_bucket`).filter(matches)) {
    const le = Number(sample.labels.get('le') === '+Inf' ? Infinity : sample.labels.get('le'));
    buckets.set(le, (buckets.get(le) ?? 0) + sample.value);
  }
  const total = (suffix: string) => metricSamples(exposition, `${name}_${suffix}`).filter(matches).reduce((sum, s) => sum + s.value, 0);
  return { buckets, sum: total('sum'), count: total('count') };
}

function difference(after: Histogram, before: Histogram): Histogram {
  const buckets = new Map([...after.buckets].map(([le, count]) => [le, count - (before.buckets.get(le) ?? 0)]));
  return { buckets, sum: after.sum - before.sum, count: after.count - before.count };
}

/** The q-quantile in ms, interpolated linearly inside its bucket as Prometheus's histogram_quantile does. */
function histogramQuantileMs(histogram: Histogram, q: number): number {
  const bounds = [...histogram.buckets.keys()].sort((a, b) => a - b);
  const rank = q * histogram.count;
  let lower = 0;
  let below = 0;
  for (const le of bounds) {
    const count = histogram.buckets.get(le) ?? 0;
    if (count >= rank) {
      if (le === Infinity) return lower * 1000;
      return (lower + ((le - lower) * (rank - below)) / Math.max(count - below, 1)) * 1000;
    }
    lower = le;
    below = count;
  }
  return NaN;
}

const latencyOf = (histogram: Histogram): Latency => ({
  p50Ms: histogramQuantileMs(histogram, 0.5),
  p99Ms: histogramQuantileMs(histogram, 0.99),
  meanMs: (histogram.sum / Math.max(histogram.count, 1)) * 1000,
});

async function scrape(url: string, init?: object): Promise<string> {
  const response = await fetch(url, init);
  if (!response.ok) throw new Error(`GET ${url}: HTTP ${String(response.status)}`);
  return response.text();
}

interface Setup {
  admin: KubeConfig;
  namespace: string;
  /** Every HpcCluster's users, by the HpcCluster's name. */
  users: Map<string, SimulatedUser[]>;
  operatorMetricsUrl: string;
}

/** `PODS` pods, one after the other, each claiming a random user of one of `clusters`. */
async function measureRound(setup: Setup, clusters: readonly string[], round: number): Promise<Round> {
  const core = setup.admin.makeApiClient(CoreV1Api);
  const apiserverMetrics = async () => {
    const server = setup.admin.getCurrentCluster()?.server ?? '';
    const text = await scrape(`${server}/metrics`, await setup.admin.applyToFetchOptions({}));
    return histogramOf(text, 'apiserver_admission_webhook_admission_duration_seconds', (s) => s.labels.get('name') === WEBHOOK_NAME && s.labels.get('operation') === 'CREATE');
  };
  const webhookMetrics = async () => histogramOf(await scrape(setup.operatorMetricsUrl), 'hpc_user_operator_webhook_admission_duration_seconds');
  let created = 0;
  const createOne = async (): Promise<boolean> => {
    const cluster = clusters[Math.floor(Math.random() * clusters.length)] ?? '';
    const users = setup.users.get(cluster) ?? [];
    const user = users[Math.floor(Math.random() * users.length)];
    try {
      await core.createNamespacedPod({
        namespace: setup.namespace,
        body: {
          metadata: { name: `r${String(round)}-${String(++created)}`, labels: { 'hpc.shanhe.com/cluster': cluster }, annotations: { 'hpc.shanhe.com/user': user?.username ?? '' } },
          spec: { containers: [{ name: 'main', image: 'busybox', command: ['id'] }] },
        },
      });
      return true;
    } catch {
      return false;
    }
  };
  for (let i = 0; i < WARM_UP_PODS; i++) await createOne();

  const apiserverBefore = await apiserverMetrics();
  const webhookBefore = await webhookMetrics();
  const roundTrips: number[] = [];
  let refused = 0;
  for (let i = 0; i < PODS; i++) {
    const started = performance.now();
    const admitted = await createOne();
    roundTrips.push(performance.now() - started);
    if (!admitted) refused += 1;
  }
  const apiserver = difference(await apiserverMetrics(), apiserverBefore);
  const webhook = difference(await webhookMetrics(), webhookBefore);
  const sorted = [...roundTrips].sort((a, b) => a - b);
  return {
    clusters: clusters.length,
    endToEnd: { p50Ms: quantile(sorted, 0.5), p99Ms: quantile(sorted, 0.99), meanMs: roundTrips.reduce((a, b) => a + b, 0) / roundTrips.length },
    apiserver: { ...latencyOf(apiserver), underFiveMs: (apiserver.buckets.get(0.005) ?? 0) / Math.max(apiserver.count, 1) },
    webhook: latencyOf(webhook),
    refused,
  };
}

const msText = (value: number) => `${value < 10 ? value.toFixed(2) : String(Math.round(value))} ms`;
const latencyText = (latency: Latency) => `p50 ${msText(latency.p50Ms)}, p99 ${msText(latency.p99Ms)}, mean ${msText(latency.meanMs)}`;

function report(result: WebhookBenchResult, nodeVersion: string): string {
  const rows: [string, string][] = [];
  for (const round of result.rounds) {
    rows.push([`${String(PODS)} pod creations, ${String(round.clusters)} HpcClusters x ${String(USERS)} users cached`, `${String(round.refused)} refused`]);
    rows.push(['  inside the webhook (operator histogram)', latencyText(round.webhook)]);
    rows.push(['  at the kube-apiserver (its webhook histogram)', `${latencyText(round.apiserver)}; ${(round.apiserver.underFiveMs * 100).toFixed(1)}% under 5 ms`]);
    rows.push(['  end to end (pod create round-trip)', latencyText(round.endToEnd)]);
  }
  const { rss } = result;
  rows.push([`operator RSS, fresh process, ${String(MANY_CLUSTERS)} synced HpcClusters cached: webhook off`, `${String(rss.webhookOffMb)} MB`]);
  rows.push(['  webhook on', `${String(rss.webhookOnMb)} MB`]);
  rows.push([`  webhook on, after the ${String(2 * (PODS + WARM_UP_PODS))} admissions above (another process)`, `${String(rss.webhookOnAfterAdmissionsMb)} MB (peak VmHWM ${String(rss.webhookOnPeakMb)} MB)`]);
  return [
    `webhook: hpc-user-operator run --webhook-addr as a child process (--log-level warn), called by a local kube-apiserver over`,
    `verified TLS through the shipped MutatingWebhookConfiguration (by URL); pods created one at a time, each claiming a random`,
    `user of a random HpcCluster; ${String(WARM_UP_PODS)} warm-up creations first. Quantiles of the two histograms are interpolated inside`,
    `their buckets (as histogram_quantile does); the apiserver's smallest bucket is 5 ms. Memory: /proc/<pid>/status VmRSS,`,
    `${String(SETTLE_MS / 1000)} s after /readyz. The operator runs as the image runs it: dist/cli/main.js on Node.js ${nodeVersion},`,
    `NODE_OPTIONS=${deploymentNodeOptions()} from deploy/manager/deployment.yaml.`,
    `Machine: ${String(availableParallelism())} CPUs, 1-minute load average ${result.loadAverage.start.toFixed(2)} at the start, ${result.loadAverage.end.toFixed(2)} at the end.`,
    formatTable(rows),
  ].join('\n');
}

/** Creates `names` HpcClusters, each reading the simulated cluster of its own name, and waits until all are Ready. */
async function createClusters(admin: KubeConfig, namespace: string, simulatorUrl: string, ready: ReadyTimes, names: readonly string[]): Promise<void> {
  for (const name of names) {
    await createHpcCluster(admin, namespace, name, {
      clusterId: name,
      zone: 'jinan1a',
      endpoint: simulatorUrl,
      allowInsecureHttp: true,
      credentialsSecretRef: { name: 'bench-key' },
      syncInterval: '1h',
    });
  }
  await ready.allReady(names, 300_000);
}

export async function benchWebhook(): Promise<WebhookBenchResult> {
  const cleanups: (() => unknown)[] = [];
  const loadAtStart = loadavg()[0] ?? 0;
  try {
    const { workDir, admin } = await startBenchCluster('webhook', cleanups);
    const namespace = await createTestNamespace(admin, 'bench');
    const operatorNamespace = await createTestNamespace(admin, 'operator');
    await createCredentialsSecret(admin, namespace, 'bench-key', DEV_ACCESS_KEY);

    const names = Array.from({ length: MANY_CLUSTERS }, (_, i) => `lab-${String(i)}`);
    const users = new Map(names.map((name, i) => [name, generateUsers(USERS, 5_000 + i)]));
    const simulator = await startSimulator({
      clusters: names.map((id) => ({ id, users: users.get(id) ?? [] })),
      quota: { limit: Number.MAX_SAFE_INTEGER, windowSeconds: 3600 },
    });
    cleanups.push(() => simulator.close());
    const ready = new ReadyTimes(admin, namespace);
    cleanups.push(() => ready.stop());
    await ready.start();

    const start = async (webhook: boolean) => {
      const addr = `127.0.0.1:${String(await freePort())}`;
      const operator = await startBenchOperator(admin, operatorNamespace, workDir, LIFTED_PROVIDER_RATE_LIMIT, cleanups, {
        watch: namespace,
        shipped: true,
        ...(webhook ? { webhook: { addr } } : {}),
      });
      return { ...operator, webhookAddr: addr };
    };

    // Latency, with 10 and then 100 HpcClusters cached.
    const measured = await start(true);
    await installWebhookConfiguration(admin, measured.webhookAddr, operatorNamespace);
    const admission = admin.makeApiClient(AdmissionregistrationV1Api);
    await waitFor(async () => (await admission.readMutatingWebhookConfiguration({ name: WEBHOOK_CONFIGURATION })).webhooks?.every((w) => w.clientConfig.caBundle !== undefined), {
      timeoutMs: 60_000,
      description: 'the caBundle published',
    });
    const setup: Setup = { admin, namespace, users, operatorMetricsUrl: `http://${measured.address}/metrics` };
    await createClusters(admin, namespace, simulator.url, ready, names.slice(0, FEW_CLUSTERS));
    const few = await measureRound(setup, names.slice(0, FEW_CLUSTERS), 1);
    await createClusters(admin, namespace, simulator.url, ready, names.slice(FEW_CLUSTERS));
    const many = await measureRound(setup, names, 2);
    const afterAdmissions = mb(procStatusKb(measured.pid, 'VmRSS'));
    const peak = mb(procStatusKb(measured.pid, 'VmHWM'));
    await measured.stop();

    // Memory on and off: fresh processes on the same synced HpcClusters (nothing to sync at start).
    const idleRss = async (webhook: boolean) => {
      const operator = await start(webhook);
      await sleep(SETTLE_MS);
      const rss = mb(procStatusKb(operator.pid, 'VmRSS'));
      await operator.stop();
      return rss;
    };
    const webhookOffMb = await idleRss(false);
    const webhookOnMb = await idleRss(true);

    const result: WebhookBenchResult = {
      rounds: [few, many],
      rss: { webhookOffMb, webhookOnMb, webhookOnAfterAdmissionsMb: afterAdmissions, webhookOnPeakMb: peak },
      loadAverage: { start: loadAtStart, end: loadavg()[0] ?? 0 },
    };
    process.stdout.write(`${report(result, (await imageNode()).version)}\n`);
    return result;
  } finally {
    await runCleanups('webhook', cleanups);
  }
}
