import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import type { KubeConfig } from '@kubernetes/client-node';
import { GROUP, PLURAL, VERSION, type HpcClusterObject, type HpcClusterSpecInput } from '../src/api/hpccluster.js';
import { ResilientInformer } from '../src/controller/informer.js';
import { kubeAccessFromKubeConfig } from '../src/kube/access.js';
import { KubeClient } from '../src/kube/client.js';
import { SYNC_REQUESTED_ANNOTATION } from '../src/controller/sync-request.js';
import { DEV_ACCESS_KEY, startSimulator, type Simulator } from '../tools/simulator/server.js';
import { generateUsers } from '../tools/simulator/store.js';
import { kubectlPath } from '../tools/controlplane/build.js';
import { freePort, loadKubeConfig, startControlPlane, writeKubeConfigFile, type ControlPlane, type StartControlPlaneOptions } from '../tools/controlplane/controlplane.js';
import { createTestNamespace } from '../tools/harness/cluster.js';
import {
  apiserverWrites,
  createCredentialsSecret,
  hpcClusterManifest,
  installCrd,
  metricSamples,
  operatorKubeConfig,
  patchHpcCluster,
  readyOf,
} from '../tools/harness/operator.js';
import { deploymentNodeOptions, imageNode } from '../tools/node/image-node.js';
import { spawnOperator } from '../tools/harness/operator-process.js';
import { waitFor } from '../tools/harness/wait-for.js';

/**
 * The controller end to end: `hpc-user-operator run` as a child process, acting as its
 * ServiceAccount bound to deploy/rbac, against a control plane of the bench's own (etcd +
 * kube-apiserver on loopback), syncing HpcClusters from the provider simulator (in this
 * process). The operator's rate limit and the simulator's quota are lifted: the provider's
 * 2,000 calls an hour would make this a benchmark of the limiter.
 */

const SEQUENTIAL_CLUSTERS = 20;
const SEQUENTIAL_USERS = 100;
const FLEET_CLUSTERS = 100;
const FLEET_USERS = 1_000;
/** The provider's page size: a sync of N users costs at least N / 100 calls. */
const PAGE_SIZE = 100;
const CONCURRENCY = 4;
/** A call budget no bench spends: the benches measure the operator, not the provider's 2,000 calls/h. */
export const LIFTED_PROVIDER_RATE_LIMIT = '1000000/1h';
/** Longer than the bench, so no periodic sync mixes into what is measured. */
const SYNC_INTERVAL = '1h';
/** Waited after a phase completes, before the write counters are read, so trailing writes count. */
const SETTLE_MS = 2_000;
/** Polling interval of the resync's completion (provider calls, then the operator's reconcile counter). */
const RESYNC_POLL_MS = 20;
const COUNTED_RESOURCES = ['configmaps', 'hpcclusters', 'events'] as const;
type CountedResource = (typeof COUNTED_RESOURCES)[number];
type Writes = Record<CountedResource, number>;

const execFileAsync = promisify(execFile);

export interface ControllerBenchResult {
  sequential: { medianMs: number; worstMs: number; kubectlMedianMs: number };
  fleet: { allReadyMs: number; kubectlMs: number; operatorCpuMs: number; providerCalls: number; reconciles: number; writes: Writes; operatorPeakMb: number };
  resync: { ms: number; operatorCpuMs: number; providerCalls: number; reconciles: number; writes: Writes };
  operatorIdleRssMb: number;
  operatorPeakMb: number;
  /** The machine's 1-minute load average at the start and the end: wall times depend on it. */
  loadAverage: { start: number; end: number };
}

/** When each HpcCluster of a namespace was first seen Ready=True (Synced), from a watch. */
export class ReadyTimes {
  private readonly readyAt = new Map<string, number>();
  private readonly informer: ResilientInformer<HpcClusterObject>;

  constructor(admin: KubeConfig, namespace: string) {
    this.informer = new ResilientInformer<HpcClusterObject>({
      name: PLURAL,
      client: new KubeClient(kubeAccessFromKubeConfig(admin)),
      path: `/apis/${GROUP}/${VERSION}/namespaces/${namespace}/${PLURAL}`,
    });
    const record = (object: HpcClusterObject) => {
      const name = object.metadata.name ?? '';
      const ready = readyOf(object);
      if (ready?.status === 'True' && ready.reason === 'Synced' && !this.readyAt.has(name)) this.readyAt.set(name, performance.now());
    };
    this.informer.on('add', record);
    this.informer.on('update', record);
  }

  start(): Promise<void> {
    return this.informer.start();
  }

  stop(): void {
    this.informer.stop();
  }

  /** Waits until all of `names` have been seen Ready; returns when the last of them was. */
  allReady(names: readonly string[], timeoutMs: number): Promise<number> {
    return waitFor(() => names.every((name) => this.readyAt.has(name)) && Math.max(...names.map((name) => this.readyAt.get(name) ?? 0)), {
      timeoutMs,
      // Only how soon the wait notices: the times themselves are taken when the event arrives.
      intervalMs: 5,
      description: `${String(names.length)} HpcCluster(s) Ready`,
    });
  }
}

export const mb = (kilobytes: number) => Math.round(kilobytes / 1024);

/** A memory figure of a process from /proc/<pid>/status, in kB. */
export function procStatusKb(pid: number, field: 'VmHWM' | 'VmRSS'): number {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(readFileSync(`/proc/${String(pid)}/status`, 'utf8'));
  if (!match?.[1]) throw new Error(`no ${field} in /proc/${String(pid)}/status`);
  return Number(match[1]);
}

/**
 * CPU time a process has used, all threads, user + system, in ms: what the operator itself
 * spent, apart from the wall time, which the other processes on the machine share.
 */
export function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${String(pid)}/stat`, 'utf8');
  // After the command name (in parentheses, may hold spaces) come fields 3, 4, ...:
  // utime and stime are fields 14 and 15, in USER_HZ ticks (100 a second on Linux).
  const fields = stat.slice(stat.lastIndexOf(') ') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

async function writesByResource(admin: KubeConfig): Promise<Writes> {
  const counts = await Promise.all(COUNTED_RESOURCES.map((resource) => apiserverWrites(admin, [resource])));
  return { configmaps: counts[0] ?? 0, hpcclusters: counts[1] ?? 0, events: counts[2] ?? 0 };
}

/** The writes between two snapshots, without the bench's own `ownHpcClusterWrites`. */
function operatorWrites(before: Writes, after: Writes, ownHpcClusterWrites: number): Writes {
  return {
    configmaps: after.configmaps - before.configmaps,
    hpcclusters: after.hpcclusters - before.hpcclusters - ownHpcClusterWrites,
    events: after.events - before.events,
  };
}

const totalOf = (writes: Writes) => writes.configmaps + writes.hpcclusters + writes.events;
export const median = (values: readonly number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? NaN;

async function operatorReconciles(metricsUrl: string): Promise<number> {
  const response = await fetch(metricsUrl);
  if (!response.ok) throw new Error(`GET ${metricsUrl}: HTTP ${String(response.status)}`);
  return metricSamples(await response.text(), 'hpc_user_operator_reconcile_total').reduce((sum, sample) => sum + sample.value, 0);
}

interface Bench {
  admin: KubeConfig;
  namespace: string;
  simulator: Simulator;
  ready: ReadyTimes;
  metricsUrl: string;
  operatorPid: number;
  /** `kubectl apply -f -` of `manifest`, as the admin; resolves when kubectl exits. */
  apply(manifest: object): Promise<void>;
}

/** A bench HpcCluster's spec: simulated cluster `clusterId` at `endpoint`, the bench's Secret, no periodic sync while measured. */
export function benchClusterSpec(endpoint: string, clusterId: string): HpcClusterSpecInput {
  return { clusterId, zone: 'jinan1a', endpoint, allowInsecureHttp: true, credentialsSecretRef: { name: 'bench-key' }, syncInterval: SYNC_INTERVAL };
}

function clusterManifest(bench: Bench, name: string, clusterId: string): HpcClusterObject {
  return hpcClusterManifest(bench.namespace, name, benchClusterSpec(bench.simulator.url, clusterId));
}

/** One HpcCluster at a time, each applied once the previous one is Ready. The first is a warm-up. */
async function benchSequential(bench: Bench): Promise<ControllerBenchResult['sequential']> {
  const applyToReady: number[] = [];
  const kubectl: number[] = [];
  for (let i = 0; i <= SEQUENTIAL_CLUSTERS; i++) {
    const name = `single-${String(i)}`;
    const started = performance.now();
    await bench.apply(clusterManifest(bench, name, name));
    const applied = performance.now();
    const readyAt = await bench.ready.allReady([name], 60_000);
    if (i === 0) continue;
    applyToReady.push(readyAt - started);
    kubectl.push(applied - started);
  }
  return { medianMs: median(applyToReady), worstMs: Math.max(...applyToReady), kubectlMedianMs: median(kubectl) };
}

/** Every fleet HpcCluster in one `kubectl apply` (a List), until all are Ready. */
async function benchFleet(bench: Bench, names: readonly string[]): Promise<ControllerBenchResult['fleet']> {
  const writesBefore = await writesByResource(bench.admin);
  const callsBefore = bench.simulator.stats().requests;
  const reconcilesBefore = await operatorReconciles(bench.metricsUrl);
  const cpuBefore = cpuMs(bench.operatorPid);
  const started = performance.now();
  await bench.apply({ apiVersion: 'v1', kind: 'List', items: names.map((name) => clusterManifest(bench, name, name)) });
  const kubectlMs = performance.now() - started;
  const allReadyAt = await bench.ready.allReady(names, 300_000);
  const operatorCpuMs = cpuMs(bench.operatorPid) - cpuBefore;
  await sleep(SETTLE_MS);
  return {
    allReadyMs: allReadyAt - started,
    kubectlMs,
    operatorCpuMs,
    providerCalls: bench.simulator.stats().requests - callsBefore,
    reconciles: (await operatorReconciles(bench.metricsUrl)) - reconcilesBefore,
    // kubectl's creates are the bench's own.
    writes: operatorWrites(writesBefore, await writesByResource(bench.admin), names.length),
    operatorPeakMb: mb(procStatusKb(bench.operatorPid, 'VmHWM')),
  };
}

/**
 * A sync of every fleet HpcCluster requested at once by annotation, nothing changed upstream.
 * Done when every sync has called the provider and the operator has counted every reconcile.
 */
async function benchResync(bench: Bench, names: readonly string[]): Promise<ControllerBenchResult['resync']> {
  const writesBefore = await writesByResource(bench.admin);
  const callsBefore = bench.simulator.stats().requests;
  const reconcilesBefore = await operatorReconciles(bench.metricsUrl);
  const minimumCalls = names.length * (FLEET_USERS / PAGE_SIZE);
  const cpuBefore = cpuMs(bench.operatorPid);
  const started = performance.now();
  const annotation = { metadata: { annotations: { [SYNC_REQUESTED_ANNOTATION]: `bench-${String(Date.now())}` } } };
  await Promise.all(names.map((name) => patchHpcCluster(bench.admin, bench.namespace, name, annotation)));
  await waitFor(
    // The provider count is free to read; the operator's /metrics is scraped only once it is reached.
    async () => bench.simulator.stats().requests - callsBefore >= minimumCalls && (await operatorReconciles(bench.metricsUrl)) - reconcilesBefore >= names.length,
    { timeoutMs: 300_000, intervalMs: RESYNC_POLL_MS, description: 'the requested resyncs' },
  );
  const ms = performance.now() - started;
  const operatorCpuMs = cpuMs(bench.operatorPid) - cpuBefore;
  await sleep(SETTLE_MS);
  return {
    ms,
    operatorCpuMs,
    providerCalls: bench.simulator.stats().requests - callsBefore,
    reconciles: (await operatorReconciles(bench.metricsUrl)) - reconcilesBefore,
    // The annotation patches are the bench's own.
    writes: operatorWrites(writesBefore, await writesByResource(bench.admin), names.length),
  };
}

export function formatTable(rows: readonly [string, string][]): string {
  const width = Math.max(...rows.map(([label]) => label.length));
  return rows.map(([label, value]) => `  ${label.padEnd(width)}  ${value}`).join('\n');
}

const ms = (value: number) => `${String(Math.round(value))} ms`;
const writesText = (writes: Writes) =>
  `${String(totalOf(writes))} (configmaps ${String(writes.configmaps)}, hpcclusters ${String(writes.hpcclusters)}, events ${String(writes.events)})`;

function report(result: ControllerBenchResult): string {
  const { sequential, fleet, resync } = result;
  return [
    `controller: hpc-user-operator run as a child process (--concurrency ${String(CONCURRENCY)}, --log-level warn), acting as a`,
    `ServiceAccount bound to deploy/rbac, against a local etcd + kube-apiserver; provider simulator in the bench process.`,
    `Provider limits lifted (--provider-rate-limit ${LIFTED_PROVIDER_RATE_LIMIT}, simulator quota unlimited): the provider's 2,000 calls/h is not measured.`,
    `Memory of the node process itself (/proc/<pid>/status), which runs under the tsx loader as in the tests: compiled JS would need less.`,
    `Ready = condition Ready=True reason Synced, seen by a watch (event time, no polling interval); resync completion polled every ${String(RESYNC_POLL_MS)} ms.`,
    `Writes: kube-apiserver apiserver_request_total, verbs POST/PUT/PATCH/DELETE/APPLY, counted ${String(SETTLE_MS / 1000)} s after completion;`,
    `hpcclusters (status included) without the bench's own creates/annotation patches.`,
    `Machine: ${String(availableParallelism())} CPUs, 1-minute load average ${result.loadAverage.start.toFixed(1)} at the start, ${result.loadAverage.end.toFixed(1)} at the end.`,
    formatTable([
      [`kubectl apply -> Ready, ${String(SEQUENTIAL_CLUSTERS)} clusters x ${String(SEQUENTIAL_USERS)} users one at a time: median`, ms(sequential.medianMs)],
      ['  worst', ms(sequential.worstMs)],
      ['  of which kubectl apply itself (median)', ms(sequential.kubectlMedianMs)],
      [`${String(FLEET_CLUSTERS)} clusters x ${String(FLEET_USERS)} users applied at once: all Ready`, ms(fleet.allReadyMs)],
      ['  of which kubectl apply itself', ms(fleet.kubectlMs)],
      ['  operator CPU time meanwhile', ms(fleet.operatorCpuMs)],
      [`  provider calls (minimum ${String(FLEET_CLUSTERS * (FLEET_USERS / PAGE_SIZE))})`, String(fleet.providerCalls)],
      ['  reconciles', String(fleet.reconciles)],
      ['  kube-apiserver writes', writesText(fleet.writes)],
      ['  operator peak memory (VmHWM) so far', `${String(fleet.operatorPeakMb)} MB`],
      [`full resync of the ${String(FLEET_CLUSTERS)}, no upstream change: time`, ms(resync.ms)],
      ['  operator CPU time meanwhile', ms(resync.operatorCpuMs)],
      ['  provider calls', String(resync.providerCalls)],
      ['  reconciles', String(resync.reconciles)],
      ['  kube-apiserver writes (goal 0)', writesText(resync.writes)],
      ['operator memory: RSS idle after start', `${String(result.operatorIdleRssMb)} MB`],
      ['  peak (VmHWM) over the whole run', `${String(result.operatorPeakMb)} MB`],
    ]),
  ].join('\n');
}

/**
 * `hpc-user-operator run` as a bench runs it: a child process acting as `namespace`'s
 * ServiceAccount, --concurrency 4, --log-level warn, metrics and health on one known port;
 * resolves once /readyz answers (its caches are synced and it reconciles at once).
 * `webhook`: also serve the pod identity webhook at `addr` with certificates for 127.0.0.1 in
 * `namespace` (installed there, its ServiceAccount bound cluster-wide as the default install is).
 * `shipped`: run the build on the image's Node.js major with the Deployment's NODE_OPTIONS, as
 * the image does.
 */
export async function startBenchOperator(
  admin: KubeConfig,
  namespace: string,
  workDir: string,
  providerRateLimit: string,
  cleanups: (() => unknown)[],
  {
    webhook,
    watch = namespace,
    kubeconfigFile = 'operator-kubeconfig',
    shipped = false,
  }: { webhook?: { addr: string }; watch?: string; kubeconfigFile?: string; shipped?: boolean } = {},
): Promise<{ pid: number; address: string; stop: () => Promise<void> }> {
  const kubeconfig = join(workDir, kubeconfigFile);
  if (!existsSync(kubeconfig)) {
    const identity = webhook === undefined ? operatorKubeConfig(admin, namespace) : operatorKubeConfig(admin, namespace, 'cluster', { webhook: true });
    writeKubeConfigFile(await identity, kubeconfig);
  }
  // At --log-level warn the operator does not log its addresses: give it a known port.
  const address = `127.0.0.1:${String(await freePort())}`;
  const operator = spawnOperator([
    '--kubeconfig', kubeconfig,
    '--allow-loopback-endpoints',
    '--namespaces', watch,
    '--concurrency', String(CONCURRENCY),
    '--log-level', 'warn',
    '--provider-rate-limit', providerRateLimit,
    '--metrics-addr', address,
    '--health-addr', address,
    ...(webhook === undefined
      ? []
      : ['--webhook-addr', webhook.addr, '--webhook-namespace', namespace, '--webhook-cert-hosts', '127.0.0.1', '--webhook-cert-check-interval', '1s']),
  ], shipped ? { shipped: { node: (await imageNode()).path, nodeOptions: deploymentNodeOptions() } } : {});
  cleanups.push(() => operator.stop());
  const pid = await operator.pid();
  await Promise.race([
    waitFor(() => fetch(`http://${address}/readyz`).then((response) => response.ok), { timeoutMs: 60_000, description: 'operator /readyz' }),
    operator.exited.then((code) => {
      throw new Error(`the operator exited (status ${String(code)}): ${JSON.stringify(operator.logs.slice(-5))}`);
    }),
  ]);
  return { pid, address, stop: () => operator.stop() };
}

/**
 * What every bench starts from: a work directory and a local control plane with the CRD, as
 * `admin`; each registered in `cleanups`, so runCleanups undoes them however the bench ends.
 */
export async function startBenchCluster(
  bench: string,
  cleanups: (() => unknown)[],
  options: { auditLog?: (workDir: string) => StartControlPlaneOptions['auditLog'] } = {},
): Promise<{ workDir: string; controlPlane: ControlPlane; admin: KubeConfig }> {
  const workDir = mkdtempSync(join(tmpdir(), `hpc-bench-${bench}-`));
  cleanups.push(() => rmSync(workDir, { recursive: true, force: true }));
  const auditLog = options.auditLog?.(workDir);
  const controlPlane = await startControlPlane(auditLog === undefined ? {} : { auditLog });
  cleanups.push(() => controlPlane.stop());
  const admin = loadKubeConfig(controlPlane.kubeconfigPath);
  await installCrd(admin);
  return { workDir, controlPlane, admin };
}

/** Undoes a bench's set-up in reverse order, each step by its own handle; a failed step is reported, the rest still run. */
export async function runCleanups(bench: string, cleanups: (() => unknown)[]): Promise<void> {
  for (const cleanup of cleanups.reverse()) {
    try {
      await cleanup();
    } catch (error) {
      process.stderr.write(`${bench} bench cleanup: ${String(error)}\n`);
    }
  }
}

/** Runs the three controller measurements; prints and returns the numbers. */
export async function benchController(): Promise<ControllerBenchResult> {
  // Undone in reverse order, each by its own handle, however the bench ends.
  const cleanups: (() => unknown)[] = [];
  const loadAtStart = loadavg()[0] ?? 0;
  try {
    const { workDir, controlPlane, admin } = await startBenchCluster('controller', cleanups);
    const namespace = await createTestNamespace(admin, 'bench');
    await createCredentialsSecret(admin, namespace, 'bench-key', DEV_ACCESS_KEY);

    const sequentialNames = Array.from({ length: SEQUENTIAL_CLUSTERS + 1 }, (_, i) => `single-${String(i)}`);
    const fleetNames = Array.from({ length: FLEET_CLUSTERS }, (_, i) => `fleet-${String(i)}`);
    // Each HpcCluster reads the simulated cluster of its own name.
    const simulator = await startSimulator({
      clusters: [
        ...sequentialNames.map((id, i) => ({ id, users: generateUsers(SEQUENTIAL_USERS, i + 1) })),
        ...fleetNames.map((id, i) => ({ id, users: generateUsers(FLEET_USERS, 1_000 + i) })),
      ],
      quota: { limit: Number.MAX_SAFE_INTEGER, windowSeconds: 3600 },
    });
    cleanups.push(() => simulator.close());

    const { pid: operatorPid, address: operatorAddr } = await startBenchOperator(admin, namespace, workDir, LIFTED_PROVIDER_RATE_LIMIT, cleanups);
    const operatorIdleRssMb = mb(procStatusKb(operatorPid, 'VmRSS'));

    const ready = new ReadyTimes(admin, namespace);
    cleanups.push(() => ready.stop());
    await ready.start();
    const cacheDir = join(workDir, 'kubectl-cache');
    const bench: Bench = {
      admin,
      namespace,
      simulator,
      ready,
      metricsUrl: `http://${operatorAddr}/metrics`,
      operatorPid,
      async apply(manifest) {
        const applying = execFileAsync(kubectlPath(), ['--kubeconfig', controlPlane.kubeconfigPath, '--cache-dir', cacheDir, 'apply', '-f', '-']);
        applying.child.stdin?.end(JSON.stringify(manifest));
        await applying;
      },
    };

    const sequential = await benchSequential(bench);
    const fleet = await benchFleet(bench, fleetNames);
    const resync = await benchResync(bench, fleetNames);
    const result: ControllerBenchResult = {
      sequential,
      fleet,
      resync,
      operatorIdleRssMb,
      operatorPeakMb: mb(procStatusKb(operatorPid, 'VmHWM')),
      loadAverage: { start: loadAtStart, end: loadavg()[0] ?? 0 },
    };
    process.stdout.write(`${report(result)}\n`);
    return result;
  } finally {
    await runCleanups('controller', cleanups);
  }
}
