import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { KubeConfig } from '@kubernetes/client-node';
import { DEV_ACCESS_KEY, startSimulator, type Simulator } from '../tools/simulator/server.js';
import { generateUsers } from '../tools/simulator/store.js';
import { freePort, writeKubeConfigFile } from '../tools/controlplane/controlplane.js';
import { createTestNamespace } from '../tools/harness/cluster.js';
import { createCredentialsSecret, createHpcCluster } from '../tools/harness/operator.js';
import { waitFor } from '../tools/harness/wait-for.js';
import { imageNode } from '../tools/node/image-node.js';
import { benchClusterSpec, formatTable, LIFTED_PROVIDER_RATE_LIMIT, median, ReadyTimes, runCleanups, startBenchCluster, startBenchOperator } from './controller.js';

/**
 * Where a first sync's time goes, by the apiserver's own clock. HpcClusters of 100 users are
 * created one at a time (each once the one before is Ready; the first is a warm-up), and each
 * operator's requests are read back from kube-apiserver's audit log: for every step (the reads
 * before the provider call, if it makes any; each ConfigMap create; the status write), the
 * median time from the HpcCluster's create to the step's arrival at the apiserver and to its
 * completion there. What lies between one step's completion and the next one's arrival is the
 * operator's own time: the provider call, its parsing, rendering, and the HTTP client on both
 * ends.
 *
 * Set PEER_OPERATOR to the Go peer's binary (../shared/peer/bench.sh builds one into
 * .local/peer-bench/bin/hpc-peer-operator) to measure it on the same control plane, after ours.
 */

const CLUSTERS = 40;
const USERS = 100;
/** Only what the steps are: reads and writes of the resources a sync touches. */
const AUDIT_POLICY = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
- level: Metadata
  resources:
  - group: ""
    resources: ["configmaps", "secrets"]
  - group: "hpc.shanhe.com"
    resources: ["hpcclusters", "hpcclusters/status"]
- level: None
`;
const STEPS = ['reads', '-nss create', '-users create', 'status write'] as const;
type Step = (typeof STEPS)[number];

const guardScript = fileURLToPath(new URL('../tools/controlplane/guard.sh', import.meta.url));

interface AuditEvent {
  stage: string;
  verb: string;
  requestReceivedTimestamp: string;
  stageTimestamp: string;
  objectRef?: { resource?: string; subresource?: string; namespace?: string; name?: string };
}

/** Milliseconds of an audit timestamp (RFC 3339 with microseconds). */
function msOf(timestamp: string): number {
  const [whole = '', fraction = '0'] = timestamp.replace(/Z$/, '').split('.');
  return Date.parse(`${whole}Z`) + Number(`0.${fraction}`) * 1000;
}

function stepOf(event: AuditEvent): Step | undefined {
  const ref = event.objectRef ?? {};
  if (event.verb === 'get') return 'reads';
  if (ref.subresource === 'status') return 'status write';
  if (ref.resource === 'configmaps' && event.verb === 'create') return ref.name?.endsWith('-nss') === true ? '-nss create' : '-users create';
  return undefined;
}

/** Each step's [arrival, completion] in ms after its HpcCluster's create completed, per HpcCluster of `namespace` but the warm-up. */
function stepTimes(events: readonly AuditEvent[], namespace: string): Map<Step, [number, number]>[] {
  const mine = events
    .filter((event) => event.stage === 'ResponseComplete' && event.objectRef?.namespace === namespace)
    .sort((a, b) => msOf(a.requestReceivedTimestamp) - msOf(b.requestReceivedTimestamp));
  const syncs: { createdAt: number; steps: Map<Step, [number, number]> }[] = [];
  for (const event of mine) {
    const ref = event.objectRef ?? {};
    if (event.verb === 'create' && ref.resource === 'hpcclusters' && ref.subresource === undefined) {
      syncs.push({ createdAt: msOf(event.stageTimestamp), steps: new Map() });
      continue;
    }
    const current = syncs.at(-1);
    const step = stepOf(event);
    if (current === undefined || step === undefined) continue;
    const arrival = msOf(event.requestReceivedTimestamp) - current.createdAt;
    const completion = msOf(event.stageTimestamp) - current.createdAt;
    const seen = current.steps.get(step);
    current.steps.set(step, seen === undefined ? [arrival, completion] : [Math.min(seen[0], arrival), Math.max(seen[1], completion)]);
  }
  return syncs.slice(1).map((sync) => sync.steps);
}

interface Operator {
  name: string;
  start(namespace: string): Promise<() => Promise<void>>;
}

function ourOperator(admin: KubeConfig, workDir: string, cleanups: (() => unknown)[]): Operator {
  return {
    name: 'hpc-user-operator (as shipped)',
    async start(namespace) {
      const operator = await startBenchOperator(admin, namespace, workDir, LIFTED_PROVIDER_RATE_LIMIT, cleanups, { shipped: true, kubeconfigFile: `kubeconfig-${namespace}` });
      return operator.stop;
    },
  };
}

/** The Go peer as ../shared/peer/bench.sh runs it (admin identity, no client-side throttle), under the guard script. */
function peerOperator(binary: string, adminKubeconfig: string): Operator {
  return {
    name: 'Go peer',
    async start(namespace) {
      const metrics = `127.0.0.1:${String(await freePort())}`;
      const health = `127.0.0.1:${String(await freePort())}`;
      const args = ['--kubeconfig', adminKubeconfig, '--namespaces', namespace, '--concurrency', '4', '--log-level', 'warn', '--metrics-addr', metrics, '--health-addr', health, '--kube-api-qps', '-1'];
      const guard = spawn('/bin/sh', [guardScript, String(process.pid), binary, ...args], { stdio: 'ignore' });
      const exited = new Promise<void>((resolve) => guard.once('exit', () => resolve()));
      const stop = async () => {
        if (guard.exitCode === null && guard.signalCode === null) guard.kill('SIGTERM');
        await exited;
      };
      try {
        await waitFor(() => fetch(`http://${health}/readyz`).then((response) => response.ok, () => false), { timeoutMs: 60_000, description: 'the Go peer /readyz' });
      } catch (error) {
        await stop();
        throw error;
      }
      return stop;
    },
  };
}

/** Creates the HpcClusters one at a time, each once the one before is Ready; returns create→Ready times but the warm-up's. */
async function syncOneAtATime(admin: KubeConfig, namespace: string, simulator: Simulator, names: readonly string[]): Promise<number[]> {
  const ready = new ReadyTimes(admin, namespace);
  await ready.start();
  try {
    const times: number[] = [];
    for (const name of names) {
      await createHpcCluster(admin, namespace, name, benchClusterSpec(simulator.url, name));
      const created = performance.now();
      times.push((await ready.allReady([name], 60_000)) - created);
    }
    return times.slice(1);
  } finally {
    ready.stop();
  }
}

const ms = (value: number) => `${value.toFixed(1)} ms`;

function report(results: { name: string; readyMs: number[]; steps: Map<Step, [number, number]>[] }[], nodeVersion: string): string {
  const rows: [string, string][] = [];
  for (const { name, readyMs, steps } of results) {
    rows.push([`${name}: create → Ready seen by a watch (median)`, ms(median(readyMs))]);
    for (const step of STEPS) {
      const times = steps.map((sync) => sync.get(step)).filter((time) => time !== undefined);
      if (times.length === 0) continue;
      const arrival = median(times.map(([at]) => at));
      const completion = median(times.map(([, done]) => done));
      rows.push([`  ${step}: arrives → completes (median)`, `${ms(arrival)} → ${ms(completion)}`]);
    }
  }
  return [
    `timeline: ${String(CLUSTERS)} HpcClusters x ${String(USERS)} users created one at a time (+1 warm-up), each operator on its own namespace of one`,
    'local etcd + kube-apiserver; times after the HpcCluster create completed, by the apiserver audit log (reads: the first request of',
    'a sync to its last read; the Go peer creates -users before -nss, ours -nss first). Ours runs as shipped: the build on',
    `Node.js ${nodeVersion} (the image's major) with the Deployment's NODE_OPTIONS.`,
    formatTable(rows),
  ].join('\n');
}

export async function benchTimeline(): Promise<void> {
  const cleanups: (() => unknown)[] = [];
  try {
    let auditPath = '';
    const { workDir, admin } = await startBenchCluster('timeline', cleanups, {
      auditLog: (dir) => {
        const policyFile = join(dir, 'audit-policy.yaml');
        writeFileSync(policyFile, AUDIT_POLICY);
        auditPath = join(dir, 'audit.log');
        return { policyFile, path: auditPath };
      },
    });
    const names = Array.from({ length: CLUSTERS + 1 }, (_, i) => `single-${String(i)}`);
    const simulator = await startSimulator({ clusters: names.map((id, i) => ({ id, users: generateUsers(USERS, i + 1) })), quota: { limit: Number.MAX_SAFE_INTEGER, windowSeconds: 3600 } });
    cleanups.push(() => simulator.close());
    const operators = [ourOperator(admin, workDir, cleanups)];
    const peer = process.env.PEER_OPERATOR;
    if (peer !== undefined && peer !== '') {
      const adminKubeconfig = join(workDir, 'admin-kubeconfig');
      writeKubeConfigFile(admin, adminKubeconfig);
      operators.push(peerOperator(peer, adminKubeconfig));
    }
    const runs: { name: string; namespace: string; readyMs: number[] }[] = [];
    for (const operator of operators) {
      const namespace = await createTestNamespace(admin, 'timeline');
      await createCredentialsSecret(admin, namespace, 'bench-key', DEV_ACCESS_KEY);
      const stop = await operator.start(namespace);
      try {
        runs.push({ name: operator.name, namespace, readyMs: await syncOneAtATime(admin, namespace, simulator, names) });
      } finally {
        await stop();
      }
    }
    const events = readFileSync(auditPath, 'utf8')
      .split('\n')
      .filter((line) => line !== '')
      .map((line) => JSON.parse(line) as AuditEvent);
    const nodeVersion = (await imageNode()).version;
    process.stdout.write(`${report(runs.map((run) => ({ ...run, steps: stepTimes(events, run.namespace) })), nodeVersion)}\n`);
  } finally {
    await runCleanups('timeline', cleanups);
  }
}
