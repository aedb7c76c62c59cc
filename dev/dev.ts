// npm run dev: the operator in the foreground, on a local control plane, against the provider
// simulator with a sample lab. Builds the control plane binaries if they are not cached,
// starts etcd and kube-apiserver, installs the CRD, starts the simulator with
// dev/sample-users.yaml, creates a sample HpcCluster, runs the operator with readable logs and
// its pod identity webhook, creates a sample Job whose pods claim a user by name, and prints
// what to type next. SIGINT or SIGTERM stops every process it started and exits 0.
//
// State goes to $HPC_DEV_DIR (default .local/ in the project): controlplane/ (data, logs),
// kubeconfig, bin/kubectl (the built kubectl), controlplane-build.log (go's output of a cold
// build, which shows as one progress line) and dev.json (pids, while it runs).
//
// Its processes run in process groups of their own, so a Ctrl-C at the terminal reaches this
// process only, which stops them in order: the operator, the simulator, then the control
// plane (an operator that outlives its apiserver logs every failed request on the way down).
import { spawn } from 'node:child_process';
import { copyFileSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import type { Readable } from 'node:stream';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { AdmissionregistrationV1Api, BatchV1Api, CoreV1Api, type KubeConfig, type V1Job } from '@kubernetes/client-node';
import { prettyFactory } from 'pino-pretty';
import { DEV_ACCESS_KEY } from '../tools/simulator/server.js';
import { isAlive, loadKubeConfig, startControlPlane, stopDetachedControlPlane, type ControlPlane } from '../tools/controlplane/controlplane.js';
import { ensureControlPlaneBinaries, linkKubectl, localPaths } from '../tools/controlplane/local.js';
import { createCredentialsSecret, createHpcCluster, installCrd, waitForReady, WEBHOOK_CONFIGURATION } from '../tools/harness/operator.js';
import { installWebhookConfiguration } from '../tools/harness/webhook.js';
import { waitFor } from '../tools/harness/wait-for.js';

const projectRoot = join(dirname(fileURLToPath(import.meta.url)), '..');
const guardScript = join(projectRoot, 'tools', 'controlplane', 'guard.sh');
const cliMain = join(projectRoot, 'src', 'cli', 'main.ts');
const sampleUsersFile = join(projectRoot, 'dev', 'sample-users.yaml');

const paths = { ...localPaths(), state: join(localPaths().dir, 'dev.json') };

const sample = {
  namespace: 'research',
  secret: 'shanhe-api-key',
  name: 'chem-lab',
  clusterId: 'hpc-qig9xu97',
  zone: 'jinan1a',
  syncInterval: '30s',
};
/** The operator's own namespace (its webhook's TLS Secret), as the shipped install names it. */
const operatorNamespace = 'hpc-user-operator-system';
/** A Job whose pods claim an HPC user by name: the webhook gives them the user's identity. */
const sampleJob = { name: 'analysis', user: 'zhangwei' };
/** The user the printed curl command adds: one more student in Prof. Wang's group. */
const newUser = { username: 'lihua', uid: 2022, gid: 2000, role: 'member', nasMountPoint: '/public/shanhe/lihua' };
const readyTimeoutMs = 60_000;

/** dev.json: written once everything runs, removed on exit; tests check the pids are gone after. */
export interface DevState {
  pid: number;
  /** Each process's guard (tools/controlplane/guard.sh): a guard exits only after its process. */
  guardPids: Record<'kube-apiserver' | 'etcd' | 'kube-controller-manager' | 'simulator' | 'operator', number | undefined>;
}

interface DevProcess {
  readonly name: string;
  readonly guardPid: number | undefined;
  readonly stdout: Readable;
  /** Settles once the process has exited and its output is read: the exit code (128+n for signal n). */
  readonly closed: Promise<number | null>;
  stop(): Promise<void>;
}

/**
 * Runs the CLI (`hpc-user-operator ARGS`) as a user would, under the control plane's guard,
 * which stops it if this process dies without cleaning up. Its stderr goes to ours.
 */
function startCli(name: string, args: string[]): DevProcess {
  const child = spawn('/bin/sh', [guardScript, String(process.pid), process.execPath, '--import', 'tsx', cliMain, ...args], {
    cwd: projectRoot,
    stdio: ['ignore', 'pipe', 'inherit'],
    detached: true, // its own process group: stopped by stop(), in order, not by the terminal's Ctrl-C
  });
  const closed = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  return {
    name,
    guardPid: child.pid,
    stdout: child.stdout,
    closed,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await closed;
    },
  };
}

/** Resolves with the first SIGINT or SIGTERM. */
function stopSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    // `on`, not `once`, for good: a second signal (npm passes a Ctrl-C on as well) must not
    // end this process before it has stopped its children.
    for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => resolve(signal));
  });
}

/** The pid of a dev session that still runs with this directory, if any. */
function runningSession(): number | undefined {
  try {
    const { pid } = JSON.parse(readFileSync(paths.state, 'utf8')) as DevState;
    return isAlive(pid) ? pid : undefined;
  } catch {
    return undefined;
  }
}

async function startSimulatorProcess(): Promise<{ simulator: DevProcess; url: string; userCount: number }> {
  const simulator = startCli('simulator', ['simulator', '--users', sampleUsersFile]);
  // Its first stdout line, once it listens: {"url":..., "clusters":[{"id","zone","userCount"}]}.
  const firstLine = await new Promise<string | undefined>((resolve) => {
    const lines = createInterface({ input: simulator.stdout });
    lines.once('line', resolve);
    lines.once('close', () => resolve(undefined));
  });
  if (firstLine === undefined) {
    await simulator.stop();
    throw new Error('the simulator exited before it listened');
  }
  const ready = JSON.parse(firstLine) as { url: string; clusters: { userCount: number }[] };
  return { simulator, url: ready.url, userCount: ready.clusters.reduce((sum, cluster) => sum + cluster.userCount, 0) };
}

interface OperatorAddresses {
  metrics?: string;
  health?: string;
  webhook?: string;
}

/** The operator, its JSON log lines printed through pino-pretty; resolves `started` with its addresses. */
function startOperatorProcess(): { operator: DevProcess; started: Promise<OperatorAddresses> } {
  const operator = startCli('operator', [
    'run',
    '--kubeconfig', paths.kubeconfig,
    '--metrics-addr', '127.0.0.1:0',
    '--health-addr', '127.0.0.1:0',
    '--drain-timeout', '5s',
    // The simulator listens on loopback, which a real install never allows.
    '--allow-loopback-endpoints',
    // The webhook on loopback, reached by URL (there is no Service): its certificate is for 127.0.0.1.
    '--webhook-addr', '127.0.0.1:0',
    '--webhook-namespace', operatorNamespace,
    '--webhook-cert-hosts', '127.0.0.1',
    '--webhook-cert-check-interval', '2s',
  ]);
  const pretty = prettyFactory({ translateTime: 'SYS:HH:MM:ss', ignore: 'pid,hostname,component' });
  const started = new Promise<OperatorAddresses>((resolve) => {
    createInterface({ input: operator.stdout }).on('line', (line) => {
      let entry: { msg?: unknown } & OperatorAddresses;
      try {
        entry = JSON.parse(line) as typeof entry;
      } catch {
        process.stdout.write(`${line}\n`);
        return;
      }
      if (entry.msg === 'started') resolve(entry);
      process.stdout.write(pretty(entry));
    });
  });
  return { operator, started };
}

async function createSample(admin: KubeConfig, simulatorUrl: string): Promise<void> {
  const core = admin.makeApiClient(CoreV1Api);
  await core.createNamespace({ body: { metadata: { name: sample.namespace } } });
  await core.createNamespace({ body: { metadata: { name: operatorNamespace } } });
  await createCredentialsSecret(admin, sample.namespace, sample.secret, DEV_ACCESS_KEY);
  await createHpcCluster(admin, sample.namespace, sample.name, {
    clusterId: sample.clusterId,
    zone: sample.zone,
    endpoint: simulatorUrl,
    allowInsecureHttp: true,
    credentialsSecretRef: { name: sample.secret },
    syncInterval: sample.syncInterval,
  });
}

/**
 * The shipped MutatingWebhookConfiguration, pointing at the operator's address; resolves once
 * the operator has published its CA in it, so the apiserver can call the webhook.
 */
async function installWebhook(admin: KubeConfig, address: string): Promise<void> {
  await installWebhookConfiguration(admin, address, operatorNamespace);
  const admission = admin.makeApiClient(AdmissionregistrationV1Api);
  await waitFor(async () => (await admission.readMutatingWebhookConfiguration({ name: WEBHOOK_CONFIGURATION })).webhooks?.every((w) => w.clientConfig.caBundle !== undefined), {
    timeoutMs: readyTimeoutMs,
    description: 'the webhook caBundle published by the operator',
  });
}

/** A Job whose pod template claims `sampleJob.user` of the sample HpcCluster: no uid in it. */
function sampleJobManifest(): V1Job {
  return {
    metadata: { name: sampleJob.name },
    spec: {
      backoffLimit: 0,
      template: {
        metadata: { labels: { 'hpc.shanhe.com/cluster': sample.name }, annotations: { 'hpc.shanhe.com/user': sampleJob.user } },
        spec: {
          restartPolicy: 'Never',
          containers: [{ name: 'analysis', image: 'busybox:1.37', command: ['sh', '-c', 'id && echo "$HOME"'] }],
        },
      },
    },
  };
}

function instructions(simulatorUrl: string, addresses: OperatorAddresses): string {
  const { namespace, name, clusterId } = sample;
  const quotedUser = `'${JSON.stringify(newUser)}'`;
  return `
Try it, in another terminal:
  export PATH="${dirname(paths.kubectl)}:$PATH" KUBECONFIG="${paths.kubeconfig}"
  kubectl get hpcc -A
  kubectl -n ${namespace} get hpcc ${name} -o yaml
  kubectl -n ${namespace} get cm ${name}-users -o yaml
  kubectl -n ${namespace} get cm ${name}-nss -o jsonpath='{.data.passwd}'
  kubectl -n ${namespace} get cm ${name}-nss -o jsonpath='{.data.group}'

Job ${sampleJob.name} claims user ${sampleJob.user} by name; its pod got the user's identity at admission
(no kubelet runs here, so it stays Pending: the stored pod spec is what to look at):
  kubectl -n ${namespace} get pods -l job-name=${sampleJob.name} -o jsonpath='{.items[0].spec.securityContext}'
  kubectl -n ${namespace} get pods -l job-name=${sampleJob.name} -o yaml

Add a user to the simulator, then watch it arrive (within ${sample.syncInterval}) or ask for a sync now:
  curl -X POST ${simulatorUrl}/_admin/clusters/${clusterId}/users -d ${quotedUser}
  kubectl -n ${namespace} get hpcc -w
  kubectl -n ${namespace} annotate hpcc ${name} hpc.shanhe.com/sync-requested="$(date +%s)" --overwrite

Operator metrics: http://${addresses.metrics ?? '(off)'}/metrics; webhook: https://${addresses.webhook ?? '(off)'}; simulator admin: ${simulatorUrl}/_admin/stats
Ctrl-C stops everything.
`;
}

async function main(): Promise<number> {
  const startedAt = Date.now();
  const previous = runningSession();
  if (previous !== undefined) {
    console.error(`npm run dev is already running with ${paths.dir} (pid ${String(previous)}); stop it first`);
    return 1;
  }

  const stopRequested = stopSignal();
  let signal: NodeJS.Signals | undefined;
  void stopRequested.then((received) => {
    signal = received;
    console.log(`\n${received}: stopping`);
  });
  const processes: DevProcess[] = [];
  let controlPlane: ControlPlane | undefined;
  /** `step`, unless a stop signal comes first or a started process exits: then it rejects. */
  const unlessStopped = <T>(step: Promise<T>): Promise<T> =>
    Promise.race([
      step,
      stopRequested.then((received) => Promise.reject(new Error(received))),
      ...processes.map((p) => p.closed.then((code) => Promise.reject(new Error(`the ${p.name} exited (code ${String(code)})`)))),
    ]);

  try {
    // Ctrl-C stops go too, and the build cleans up after itself; a SIGTERM to this process
    // alone lets the build finish (and be cached) first.
    await ensureControlPlaneBinaries(paths.buildLog);
    if (signal !== undefined) return 0;
    if (await stopDetachedControlPlane(paths.controlPlane)) console.log('stopped the control plane that npm run cluster:up left running');
    controlPlane = await startControlPlane({ dir: paths.controlPlane, callerStopsOnSignal: true, controllerManager: true });
    copyFileSync(controlPlane.kubeconfigPath, paths.kubeconfig);
    linkKubectl(paths);
    console.log(`control plane ready at ${controlPlane.server} (logs: ${paths.controlPlane}/*.log)`);

    const admin = loadKubeConfig(paths.kubeconfig);
    await installCrd(admin);
    const { simulator, url, userCount } = await startSimulatorProcess();
    processes.push(simulator);
    console.log(`simulator at ${url}: ${String(userCount)} users from ${relative(process.cwd(), sampleUsersFile)}`);
    await createSample(admin, url);
    console.log(`created namespace ${sample.namespace}, Secret ${sample.secret} and HpcCluster ${sample.name}; starting the operator:\n`);
    const { operator, started } = startOperatorProcess();
    processes.unshift(operator); // stopped first
    const state: DevState = {
      pid: process.pid,
      guardPids: { ...controlPlane.guardPids(), simulator: simulator.guardPid, operator: operator.guardPid },
    };
    writeFileSync(paths.state, `${JSON.stringify(state, null, 2)}\n`);

    const addresses = await unlessStopped(started);
    try {
      const cluster = await unlessStopped(waitForReady(admin, sample.namespace, sample.name, 'Synced', { timeoutMs: readyTimeoutMs }));
      const seconds = ((Date.now() - startedAt) / 1000).toFixed(1);
      const status = cluster.status;
      console.log(`\n${sample.name} is Ready: ${String(status?.userCount)} users synced, ${String(status?.skippedUserCount)} skipped (${seconds} s after start)`);
    } catch (error) {
      if (signal !== undefined) throw error;
      console.log(`\n${sample.name} is not Ready after ${String(readyTimeoutMs / 1000)} s (${(error as Error).message}); the operator's log says why`);
    }
    try {
      await unlessStopped(installWebhook(admin, addresses.webhook ?? ''));
      await admin.makeApiClient(BatchV1Api).createNamespacedJob({ namespace: sample.namespace, body: sampleJobManifest() });
      console.log(`created Job ${sampleJob.name}, whose pods claim user ${sampleJob.user} of ${sample.name}`);
    } catch (error) {
      if (signal !== undefined) throw error;
      console.log(`\nthe sample Job was not created (${(error as Error).message}); the operator's log says why`);
    }
    console.log(instructions(url, addresses));
    // Runs until a stop signal (exit 0) or until a process exits by itself (exit 1).
    return await unlessStopped(new Promise<never>(() => {}));
  } catch (error) {
    if (signal !== undefined) return 0; // the step that failed was cut short by the stop
    console.error(`npm run dev: ${(error as Error).message}; stopping`);
    return 1;
  } finally {
    for (const started of processes) await started.stop();
    await controlPlane?.stop();
    rmSync(paths.state, { force: true });
    if (signal !== undefined) console.log('stopped');
  }
}

process.exitCode = await main();
