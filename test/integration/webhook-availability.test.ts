// The webhook keeps answering, with the right identity, while what serves it changes: the
// leader lease moving from one replica to the other, a rolling update replacing the replicas
// one at a time, the replica's watches on the apiserver cut and re-established, the
// operator-managed certificate rotating (serving certificate and CA), and a certificate the
// install provides (cert-manager) renewed in its Secret. Pods that claim a user are created
// back to back all along; not one may be refused. And a replica whose caches are not synced
// answers "not ready, retry", never an identity. A control plane of this file's own (the
// webhook configuration is cluster-wide); the real kube-apiserver calls the replicas over
// verified TLS through a TCP balancer that stands in for the webhook Service.
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { afterAll, afterEach, beforeAll, expect, test } from '@jest/globals';
import { AdmissionregistrationV1Api, CoordinationV1Api, CoreV1Api, RbacAuthorizationV1Api, type KubeConfig } from '@kubernetes/client-node';
import fetch from 'node-fetch';
import { DEV_ACCESS_KEY, startSimulator, type Simulator } from '../../tools/simulator/server.js';
import { simulatedUser } from '../../tools/simulator/store.js';
import { freePort, writeKubeConfigFile } from '../../tools/controlplane/controlplane.js';
import { apiStatusCode, createTestNamespace } from '../../tools/harness/cluster.js';
import {
  createCredentialsSecret,
  createHpcCluster,
  installCrd,
  metricSamples,
  operatorKubeConfig,
  patchHpcCluster,
  startOperator,
  WEBHOOK_CONFIGURATION,
  WEBHOOK_SECRET,
  type RunningOperator,
  type TestWebhookOptions,
} from '../../tools/harness/operator.js';
import { spawnOperator, type OperatorProcess } from '../../tools/harness/operator-process.js';
import { installWebhookConfiguration } from '../../tools/harness/webhook.js';
import { waitFor } from '../../tools/harness/wait-for.js';
import { useOwnControlPlane } from '../support/own-control-plane.js';
import { apiServerAddress, TcpProxy } from '../support/tcp-proxy.js';
import { NOT_READY_MESSAGE } from '../../src/webhook/admission.js';
import { createCa, createServing, type IssuedCa } from '../../src/webhook/certificates.js';

const own = useOwnControlPlane();
let admin: KubeConfig;
let core: CoreV1Api;
let research: string;
let simulator: Simulator;
/** The "Service": each new connection goes to the next replica in `backends`. */
let service: TcpProxy;
let backends: { host: string; port: number }[] = [];
let started: RunningOperator[] = [];
/** Replicas run as processes of their own, each stopped by its own pid. */
let processes: OperatorProcess[] = [];
/** Their kubeconfig files. */
let workDir: string;
const ANN_UID = 30001;

beforeAll(async () => {
  admin = own.kubeConfig;
  core = admin.makeApiClient(CoreV1Api);
  await installCrd(admin);
  research = await createTestNamespace(admin, 'research');
  simulator = await startSimulator({ accessKeys: [DEV_ACCESS_KEY] });
  await createCredentialsSecret(admin, research, 'shanhe-api-key', DEV_ACCESS_KEY);
  // Synced by whichever operator a test starts; webhookAnswering() waits for that.
  simulator.setUsers('hpc-chem', [simulatedUser('ann', ANN_UID, { gid: 30000 })]);
  await createSimulatedCluster('chem-lab', 'hpc-chem');
  let next = 0;
  service = await TcpProxy.start(() => (backends.length === 0 ? undefined : backends[next++ % backends.length]));
  workDir = mkdtempSync(join(tmpdir(), 'hpc-webhook-availability-'));
}, 120_000);

afterEach(async () => {
  for (const creator of creators) await creator.stop();
  creators = [];
  for (const operator of started) await operator.stop();
  started = [];
  for (const replica of processes) await replica.stop();
  processes = [];
  backends = [];
});

afterAll(async () => {
  await service?.close();
  await simulator?.close();
  if (workDir !== undefined) rmSync(workDir, { recursive: true, force: true });
});

const addressOf = (operator: RunningOperator): { host: string; port: number } => {
  const address = operator.manager.addresses().webhook ?? '';
  const port = address.slice(address.lastIndexOf(':') + 1);
  return { host: address.slice(0, address.lastIndexOf(':')), port: Number(port) };
};

/**
 * Replicas of an operator installed in a namespace of its own, serving the webhook behind the
 * service; `apiServer`: they reach the kube-apiserver through this proxy; `leaderElection`
 * false: a lone replica that leads without a Lease.
 */
async function startReplicas(
  identities: string[],
  webhook: Omit<TestWebhookOptions, 'namespace'> = {},
  { apiServer, leaderElection = true }: { apiServer?: TcpProxy; leaderElection?: boolean } = {},
): Promise<{ namespace: string; replicas: RunningOperator[] }> {
  const namespace = await createTestNamespace(admin, 'operator');
  const own = await operatorKubeConfig(admin, namespace, 'cluster', { webhook: true });
  const kubeConfig = apiServer === undefined ? own : apiServer.kubeConfigThrough(own);
  await installWebhookConfiguration(admin, `127.0.0.1:${String(service.port)}`, namespace);
  const replicas: RunningOperator[] = [];
  for (const identity of identities) {
    // The first namespace holds the Lease (the shipped Role grants it in the operator's own).
    const replica = await startOperator(kubeConfig, [namespace, research], { leaderElection, identity, webhook: { namespace, ...webhook } });
    started.push(replica);
    replicas.push(replica);
  }
  backends = replicas.map(addressOf);
  return { namespace, replicas };
}

let pods = 0;
const claim = (cluster: string, user: string) => ({
  metadata: { name: `pod-${String(++pods)}`, labels: { 'hpc.shanhe.com/cluster': cluster }, annotations: { 'hpc.shanhe.com/user': user } },
  spec: { containers: [{ name: 'main', image: 'busybox', command: ['id'] }] },
});

type Outcome = { uid: number | undefined } | { refused: string };

/** A refused creation as `<code> <the apiserver's message>`. */
function refusalOf(error: unknown): string {
  const body = (error as { body?: unknown }).body;
  let message = typeof body === 'string' ? body : String(error);
  try {
    message = (JSON.parse(message) as { message?: string }).message ?? message;
  } catch {
    // Not a Status: the text as it came.
  }
  return `${String(apiStatusCode(error))} ${message}`;
}

/**
 * Creates pods that claim ann, two at a time, until stopped, and records each outcome. A short
 * pause between creations keeps the number of stored pods modest on a shared machine.
 */
/** An HpcCluster in `research` on the test's simulator and credentials. */
async function createSimulatedCluster(name: string, clusterId: string): Promise<void> {
  await createHpcCluster(admin, research, name, {
    clusterId,
    zone: 'jinan1a',
    endpoint: simulator.url,
    allowInsecureHttp: true,
    credentialsSecretRef: { name: 'shanhe-api-key' },
  });
}

function keepCreatingPods() {
  const outcomes: Outcome[] = [];
  let running = true;
  const worker = async () => {
    while (running) {
      outcomes.push(await createClaiming('chem-lab', 'ann'));
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  };
  const workers = [worker(), worker()];
  const creating = {
    admitted: () => outcomes.filter((o) => 'uid' in o).length,
    /** What went wrong so far, for a timeout's message. */
    refusals: () => outcomes.flatMap((o) => ('refused' in o ? [o.refused] : [])),
    async stop(): Promise<Outcome[]> {
      running = false;
      await Promise.all(workers);
      return outcomes;
    },
  };
  creators.push(creating);
  return creating;
}

/** Every pod creator a test started, stopped after it whatever its outcome. */
let creators: { stop(): Promise<unknown> }[] = [];

/** A labelled pod is admitted as ann: chem-lab synced, the apiserver has the caBundle and reaches a replica. */
async function webhookAnswering(): Promise<void> {
  await waitFor(
    async () => {
      const outcome = await createClaiming('chem-lab', 'ann');
      return 'uid' in outcome && outcome.uid === ANN_UID;
    },
    { timeoutMs: 60_000, description: 'the webhook admitting a pod over TLS' },
  );
}

/** Creates a pod claiming `user` of `cluster`: the uid it got, or why it was refused. */
async function createClaiming(cluster: string, user: string): Promise<Outcome> {
  try {
    const pod = await core.createNamespacedPod({ namespace: research, body: claim(cluster, user) });
    return { uid: pod.spec?.securityContext?.runAsUser };
  } catch (error) {
    return { refused: refusalOf(error) };
  }
}

/** Waits until `count` more pods than now are admitted, saying what was refused if they are not. */
async function admittedMore(creating: ReturnType<typeof keepCreatingPods>, count: number, description: string): Promise<void> {
  const from = creating.admitted();
  await waitFor(() => creating.admitted() >= from + count, { timeoutMs: 60_000, description }).catch((error: unknown) => {
    throw new Error(`${String(error)}; refusals: ${creating.refusals().slice(-3).join(' | ')}`);
  });
}

/** A counter of an in-process replica, summed over its labels. */
async function counterOf(replica: RunningOperator, name: string): Promise<number> {
  const metric = await replica.metrics.registry.getSingleMetric(name)?.get();
  return metric?.values.reduce((sum, v) => sum + v.value, 0) ?? 0;
}

const admissionsOf = (replica: RunningOperator) => counterOf(replica, 'hpc_user_operator_webhook_admissions_total');

test('the webhook keeps answering with the right identity while the leader lease moves', async () => {
  const { namespace, replicas } = await startReplicas(['replica-a', 'replica-b']);
  await webhookAnswering();
  const coordination = admin.makeApiClient(CoordinationV1Api);
  const holder = async () => (await coordination.readNamespacedLease({ namespace, name: 'hpc-user-operator' })).spec?.holderIdentity;
  const leaderIdentity = await waitFor(holder, { description: 'a leader' });
  const leaderIndex = leaderIdentity === 'replica-a' ? 0 : 1;
  const [leader, follower] = [replicas[leaderIndex], replicas[1 - leaderIndex]];
  if (leader === undefined || follower === undefined) throw new Error('two replicas expected');

  const creating = keepCreatingPods();
  await admittedMore(creating, 10, '10 pods admitted');
  // What a pod deletion does: the endpoints controller takes the replica out of the Service
  // (the preStop pause lets that happen first), then it gets SIGTERM and releases the lease.
  backends = [addressOf(follower)];
  const followerBefore = await admissionsOf(follower);
  await leader.stop();
  await waitFor(async () => (await holder()) === (leaderIdentity === 'replica-a' ? 'replica-b' : 'replica-a'), { description: 'the follower leading' });
  await admittedMore(creating, 10, '10 more pods admitted after the handover');
  const outcomes = await creating.stop();

  expect(outcomes.filter((o) => 'refused' in o)).toEqual([]);
  expect(outcomes.filter((o) => 'uid' in o && o.uid !== ANN_UID)).toEqual([]);
  // The follower answered across the handover, and its metric shows it was leader afterwards.
  expect(await admissionsOf(follower)).toBeGreaterThanOrEqual(followerBefore + 10);
  const leading = await follower.metrics.registry.getSingleMetric('hpc_user_operator_leader')?.get();
  expect(leading?.values[0]?.value).toBe(1);
}, 180_000);

/** The certificate a replica serves now, read off a TLS handshake as the apiserver sees it. */
function servedCertificate(address: { host: string; port: number }): Promise<X509Certificate> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: address.host, port: address.port, rejectUnauthorized: false }, () => {
      const certificate = socket.getPeerX509Certificate();
      socket.destroy();
      if (certificate === undefined) reject(new Error('no certificate served'));
      else resolve(certificate);
    });
    socket.once('error', reject);
  });
}

const caBundleCertificates = async (): Promise<X509Certificate[]> => {
  const configuration = await admin.makeApiClient(AdmissionregistrationV1Api).readMutatingWebhookConfiguration({ name: WEBHOOK_CONFIGURATION });
  const bundle = Buffer.from(configuration.webhooks?.[0]?.clientConfig.caBundle ?? '', 'base64').toString('utf8');
  return (bundle.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []).map((pem) => new X509Certificate(pem));
};

test('the operator-managed certificate and its CA rotate with zero failed admissions', async () => {
  // Serving certificates of 20 s renewed 15 s before their end (every 5 s); the CA (80 s) is
  // renewed 60 s before its end, 20 s after it was made, and signs after a 3.3 s overlap.
  const { replicas } = await startReplicas(['rotating'], { validityMs: 20_000, renewBeforeMs: 15_000, checkIntervalMs: 500 });
  const [replica] = replicas;
  if (replica === undefined) throw new Error('one replica expected');
  await webhookAnswering();
  const [firstCa, ...others] = await caBundleCertificates();
  if (firstCa === undefined) throw new Error('no caBundle');
  expect(others).toEqual([]);

  const creating = keepCreatingPods();
  const served = new Set<string>();
  const fromNewCa = await waitFor(
    async () => {
      const certificate = await servedCertificate(addressOf(replica));
      served.add(certificate.fingerprint256);
      return certificate.checkIssued(firstCa) ? undefined : certificate;
    },
    { timeoutMs: 90_000, intervalMs: 250, description: 'a serving certificate from a new CA' },
  );
  await admittedMore(creating, 10, '10 more pods admitted after the CA rotation');
  const outcomes = await creating.stop();

  // The apiserver trusts the new CA through the caBundle, next to the old one until it expires.
  const bundle = await caBundleCertificates();
  expect(bundle.some((ca) => fromNewCa.checkIssued(ca) && ca.fingerprint256 !== firstCa.fingerprint256)).toBe(true);
  // Serving certificates renewed from the first CA, then one from the new CA.
  expect(served.size).toBeGreaterThanOrEqual(3);
  expect(outcomes.filter((o) => 'refused' in o)).toEqual([]);
  expect(outcomes.filter((o) => 'uid' in o && o.uid !== ANN_UID)).toEqual([]);
  expect(outcomes.length).toBeGreaterThan(20);
}, 180_000);

/** The operator's install in a namespace of its own, for replicas run as processes. */
async function installForProcesses(scope: 'namespace' | 'cluster' = 'cluster'): Promise<{ namespace: string; kubeconfigFile: string }> {
  const namespace = await createTestNamespace(admin, 'operator');
  const kubeconfigFile = join(workDir, `${namespace}.kubeconfig`);
  writeKubeConfigFile(await operatorKubeConfig(admin, namespace, scope, { webhook: true }), kubeconfigFile);
  await installWebhookConfiguration(admin, `127.0.0.1:${String(service.port)}`, namespace);
  return { namespace, kubeconfigFile };
}

interface ProcessReplica {
  process: OperatorProcess;
  webhook: { host: string; port: number };
  /** host:port of /readyz and /metrics. */
  health: string;
}

/**
 * A replica as a Deployment's pod runs it: `hpc-user-operator run` in a process of its own,
 * electing a leader on the install's Lease and serving the webhook (`extra` flags added).
 */
async function spawnReplica(install: { namespace: string; kubeconfigFile: string }, extra: string[] = []): Promise<ProcessReplica> {
  const webhookPort = await freePort();
  const health = `127.0.0.1:${String(await freePort())}`;
  const replica = spawnOperator([
    '--kubeconfig', install.kubeconfigFile,
    '--namespaces', research,
    '--leader-elect',
    '--leader-election-namespace', install.namespace,
    '--allow-loopback-endpoints',
    '--metrics-addr', health,
    '--health-addr', health,
    '--webhook-addr', `127.0.0.1:${String(webhookPort)}`,
    '--webhook-namespace', install.namespace,
    '--webhook-cert-hosts', '127.0.0.1',
    '--webhook-cert-check-interval', '1s',
    ...extra,
  ]);
  processes.push(replica);
  return { process: replica, webhook: { host: '127.0.0.1', port: webhookPort }, health };
}

const isReady = async (replica: ProcessReplica): Promise<boolean> => {
  try {
    return (await fetch(`http://${replica.health}/readyz`)).ok;
  } catch {
    return false;
  }
};

/** Waits, as a readiness probe does, until the replica is ready for traffic. */
async function ready(replica: ProcessReplica): Promise<ProcessReplica> {
  await waitFor(() => isReady(replica), { timeoutMs: 90_000, description: 'the replica ready (/readyz)' });
  return replica;
}

async function processAdmissions(replica: ProcessReplica): Promise<number> {
  const text = await (await fetch(`http://${replica.health}/metrics`)).text();
  return metricSamples(text, 'hpc_user_operator_webhook_admissions_total').reduce((sum, sample) => sum + sample.value, 0);
}

test('the webhook keeps answering with the right identity through a rolling update', async () => {
  const install = await installForProcesses();
  const old = [await spawnReplica(install), await spawnReplica(install)];
  await Promise.all(old.map(ready));
  backends = old.map((replica) => replica.webhook);
  await webhookAnswering();

  const creating = keepCreatingPods();
  await admittedMore(creating, 10, '10 pods admitted before the update');
  const replaced: ProcessReplica[] = [];
  let admittedAtLastExit = 0;
  for (const [index, outgoing] of old.entries()) {
    // One at a time (maxUnavailable 0, maxSurge 1): the new replica joins the Service once ready...
    const incoming = await ready(await spawnReplica(install));
    replaced.push(incoming);
    backends = [...replaced.map((r) => r.webhook), ...old.slice(index + 1).map((r) => r.webhook)];
    // ...the old one leaves it (its preStop pause), then gets SIGTERM by its own pid and exits cleanly.
    await outgoing.process.signal('SIGTERM');
    expect(await outgoing.process.exited).toBe(0);
    admittedAtLastExit = creating.admitted();
    await admittedMore(creating, 10, `10 more pods admitted after replica ${String(index + 1)} was replaced`);
  }
  const outcomes = await creating.stop();

  expect(outcomes.filter((o) => 'refused' in o)).toEqual([]);
  expect(outcomes.filter((o) => 'uid' in o && o.uid !== ANN_UID)).toEqual([]);
  // The new replicas answered every pod admitted since the last old one exited, but for the
  // two creations (one per worker) that may have been answered just before. Which new replica
  // answered is the balancer's choice: the apiserver keeps its connections alive, so a replica
  // that joined beside a surviving old one may get none of them.
  const answeredByNew = (await Promise.all(replaced.map(processAdmissions))).reduce((sum, count) => sum + count, 0);
  expect(answeredByNew).toBeGreaterThanOrEqual(creating.admitted() - admittedAtLastExit - 2);
}, 300_000);

const watchRestarts = (replica: RunningOperator) => counterOf(replica, 'hpc_user_operator_watch_restarts_total');

test('the webhook keeps answering while its watches are cut and re-established, and sees what changed meanwhile', async () => {
  const BIO_CAT = 30011;
  const BIO_DAN = 30012;
  simulator.setUsers('hpc-bio', [simulatedUser('cat', BIO_CAT, { gid: 30000 }), simulatedUser('dan', BIO_DAN, { gid: 30000 })]);
  await createSimulatedCluster('bio-lab', 'hpc-bio');
  // The replica's own connections to the kube-apiserver, and nobody else's, go through this proxy.
  const apiServer = await TcpProxy.start(apiServerAddress(admin));
  try {
    // No Lease: a cut longer than the renew deadline would end a leader (a restart, not a reconnect).
    const { replicas } = await startReplicas(['reconnecting'], {}, { apiServer, leaderElection: false });
    const [replica] = replicas;
    if (replica === undefined) throw new Error('one replica expected');
    await webhookAnswering();
    await waitFor(async () => {
      const outcome = await createClaiming('bio-lab', 'dan');
      return 'uid' in outcome && outcome.uid === BIO_DAN;
    }, { timeoutMs: 60_000, description: 'bio-lab synced: dan admitted' });

    const creating = keepCreatingPods();
    await admittedMore(creating, 10, '10 pods admitted before the cut');
    const restartsBefore = await watchRestarts(replica);
    // Every watch (and every other request) of the replica is reset; the apiserver keeps calling its webhook.
    apiServer.cut();
    await admittedMore(creating, 10, '10 pods admitted while the replica cannot watch');
    // Meanwhile dan leaves bio-lab upstream and a sync is asked for: the replica misses the event.
    simulator.setUsers('hpc-bio', [simulatedUser('cat', BIO_CAT, { gid: 30000 })]);
    await patchHpcCluster(admin, research, 'bio-lab', { metadata: { annotations: { 'hpc.shanhe.com/sync-requested': 'dan-left' } } });
    await admittedMore(creating, 5, '5 more pods admitted after the missed change');
    apiServer.restore();
    // The informers watch again (and catch up on the change), the sync drops dan, the webhook follows.
    await waitFor(async () => (await watchRestarts(replica)) > restartsBefore, { timeoutMs: 60_000, description: 'the watches restarted' });
    // While the sync is written the webhook may answer "retry shortly" (-users ahead of status): wait for the final answer.
    const refusal = await waitFor(async () => {
      const outcome = await createClaiming('bio-lab', 'dan');
      return 'refused' in outcome && outcome.refused.includes('is not a user of') ? outcome.refused : undefined;
    }, { timeoutMs: 90_000, description: 'dan refused after the reconnect' });
    await admittedMore(creating, 10, '10 more pods admitted after the reconnect');
    const outcomes = await creating.stop();

    expect(refusal).toContain('user "dan" (annotation hpc.shanhe.com/user) is not a user of HpcCluster');
    expect(await createClaiming('bio-lab', 'cat')).toEqual({ uid: BIO_CAT });
    expect(outcomes.filter((o) => 'refused' in o)).toEqual([]);
    expect(outcomes.filter((o) => 'uid' in o && o.uid !== ANN_UID)).toEqual([]);
  } finally {
    await apiServer.close();
  }
}, 300_000);

test('a replica whose caches are not synced answers "not ready, retry", never an identity', async () => {
  // The operator may read HpcClusters, ConfigMaps and Secrets in its own namespace only, so its
  // caches of the namespace it watches, research, cannot fill; its certificate it can manage.
  const install = await installForProcesses('namespace');
  const replica = await spawnReplica(install);
  await replica.process.waitForLog((line) => line.msg === 'pod identity webhook serving', 'the webhook serving', 90_000);
  // Routed to directly: the Service would not route to it (its /readyz fails), but it answers what it is asked.
  backends = [replica.webhook];
  const whileUnsynced: Outcome[] = [];
  await waitFor(async () => {
    const outcome = await createClaiming('chem-lab', 'ann');
    whileUnsynced.push(outcome);
    return 'refused' in outcome && outcome.refused.includes(NOT_READY_MESSAGE);
  }, { timeoutMs: 60_000, description: 'the replica answering (the caBundle published)' });
  // Until the caBundle reached the apiserver its calls failed on TLS; then the answer is 503, retry.
  expect(whileUnsynced.filter((o) => 'uid' in o)).toEqual([]);
  expect(whileUnsynced.at(-1)).toEqual({ refused: `503 admission webhook "pod-identity.hpc.shanhe.com" denied the request: ${NOT_READY_MESSAGE}` });
  expect(await isReady(replica)).toBe(false);

  // Granted research, it lists, syncs its caches and then answers with the identity.
  await admin.makeApiClient(RbacAuthorizationV1Api).createNamespacedRoleBinding({
    namespace: research,
    body: {
      metadata: { name: `hpc-user-operator-${install.namespace}` },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'hpc-user-operator' },
      subjects: [{ kind: 'ServiceAccount', name: 'hpc-user-operator', namespace: install.namespace }],
    },
  });
  const admitted = await waitFor(async () => {
    const outcome = await createClaiming('chem-lab', 'ann');
    return 'uid' in outcome ? outcome : undefined;
  }, { timeoutMs: 90_000, description: 'the replica admitting once its caches are synced' });
  expect(admitted).toEqual({ uid: ANN_UID });
  expect(await isReady(replica)).toBe(true);
}, 240_000);

/** What cert-manager keeps in the Secret of a Certificate: the key pair and the issuing CA. */
async function writeTlsSecret(namespace: string, ca: IssuedCa, serving: { cert: string; key: string }): Promise<void> {
  const base64 = (text: string) => Buffer.from(text).toString('base64');
  const body = {
    metadata: { name: WEBHOOK_SECRET, namespace },
    type: 'kubernetes.io/tls',
    data: { 'tls.crt': base64(serving.cert), 'tls.key': base64(serving.key), 'ca.crt': base64(ca.certPem) },
  };
  try {
    await core.replaceNamespacedSecret({ namespace, name: WEBHOOK_SECRET, body });
  } catch (error) {
    if (apiStatusCode(error) !== 404) throw error;
    await core.createNamespacedSecret({ namespace, body });
  }
}

/** What cert-manager's cainjector does: the webhook configuration trusts these CAs. */
async function injectCaBundle(cas: IssuedCa[]): Promise<void> {
  const admission = admin.makeApiClient(AdmissionregistrationV1Api);
  const configuration = await admission.readMutatingWebhookConfiguration({ name: WEBHOOK_CONFIGURATION });
  const caBundle = Buffer.from(cas.map((ca) => ca.certPem).join('')).toString('base64');
  for (const webhook of configuration.webhooks ?? []) webhook.clientConfig.caBundle = caBundle;
  await admission.replaceMutatingWebhookConfiguration({ name: WEBHOOK_CONFIGURATION, body: configuration });
}

test('a certificate the install provides (cert-manager) is served, and its renewals with zero failed admissions', async () => {
  const install = await installForProcesses();
  const hosts = ['127.0.0.1'];
  const day = 24 * 3_600_000;
  const firstCa = await createCa(new Date(), 4 * day);
  const first = await createServing(firstCa, hosts, new Date(), day);
  await writeTlsSecret(install.namespace, firstCa, first);
  await injectCaBundle([firstCa]);
  const replica = await ready(await spawnReplica(install, ['--webhook-certs', 'secret']));
  backends = [replica.webhook];
  const served = async () => (await servedCertificate(replica.webhook)).fingerprint256;
  expect(await served()).toBe(new X509Certificate(first.cert).fingerprint256);
  await webhookAnswering();

  const creating = keepCreatingPods();
  await admittedMore(creating, 10, '10 pods admitted from the provided certificate');
  // A renewal: a new key pair from the same CA (cainjector writes the same caBundle again).
  const renewed = await createServing(firstCa, hosts, new Date(), day);
  await writeTlsSecret(install.namespace, firstCa, renewed);
  await injectCaBundle([firstCa]);
  await waitFor(async () => (await served()) === new X509Certificate(renewed.cert).fingerprint256, { timeoutMs: 30_000, description: 'the renewed certificate served' });
  await admittedMore(creating, 10, '10 more pods admitted after the renewal');
  // A new CA, trusted before anything is issued from it, then the old one dropped.
  const nextCa = await createCa(new Date(), 4 * day);
  await injectCaBundle([nextCa, firstCa]);
  const fromNextCa = await createServing(nextCa, hosts, new Date(), day);
  await writeTlsSecret(install.namespace, nextCa, fromNextCa);
  await waitFor(async () => (await served()) === new X509Certificate(fromNextCa.cert).fingerprint256, { timeoutMs: 30_000, description: 'the certificate from the new CA served' });
  await admittedMore(creating, 10, '10 more pods admitted from the new CA');
  await injectCaBundle([nextCa]);
  await admittedMore(creating, 10, '10 more pods admitted with the old CA dropped');
  const outcomes = await creating.stop();

  expect(outcomes.filter((o) => 'refused' in o)).toEqual([]);
  expect(outcomes.filter((o) => 'uid' in o && o.uid !== ANN_UID)).toEqual([]);
  // The operator only read the Secret and left the caBundle to cert-manager.
  const bundle = await caBundleCertificates();
  expect(bundle.map((ca) => ca.fingerprint256)).toEqual([new X509Certificate(nextCa.certPem).fingerprint256]);
  const secret = await core.readNamespacedSecret({ namespace: install.namespace, name: WEBHOOK_SECRET });
  expect(Object.keys(secret.data ?? {}).sort()).toEqual(['ca.crt', 'tls.crt', 'tls.key']);
}, 300_000);
