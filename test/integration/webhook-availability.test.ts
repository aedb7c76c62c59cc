// The webhook keeps answering, with the right identity, while what serves it changes: the
// leader lease moving from one replica to the other, and the operator-managed certificate
// rotating (serving certificate and CA). Pods that claim a user are created back to back all
// along; not one may be refused. A control plane of this file's own (the webhook configuration
// is cluster-wide); the real kube-apiserver calls the replicas over verified TLS through a TCP
// balancer that stands in for the webhook Service.
import { X509Certificate } from 'node:crypto';
import { connect } from 'node:tls';
import { afterAll, afterEach, beforeAll, expect, test } from '@jest/globals';
import { AdmissionregistrationV1Api, CoordinationV1Api, CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { DEV_ACCESS_KEY, startSimulator, type Simulator } from '../../tools/simulator/server.js';
import { simulatedUser } from '../../tools/simulator/store.js';
import { apiStatusCode, createTestNamespace } from '../../tools/harness/cluster.js';
import {
  createCredentialsSecret,
  createHpcCluster,
  installCrd,
  operatorKubeConfig,
  startOperator,
  WEBHOOK_CONFIGURATION,
  type RunningOperator,
  type TestWebhookOptions,
} from '../../tools/harness/operator.js';
import { installWebhookConfiguration } from '../../tools/harness/webhook.js';
import { waitFor } from '../../tools/harness/wait-for.js';
import { useOwnControlPlane } from '../support/own-control-plane.js';
import { TcpProxy } from '../support/tcp-proxy.js';

const own = useOwnControlPlane();
let admin: KubeConfig;
let core: CoreV1Api;
let research: string;
let simulator: Simulator;
/** The "Service": each new connection goes to the next replica in `backends`. */
let service: TcpProxy;
let backends: { host: string; port: number }[] = [];
let started: RunningOperator[] = [];
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
  await createHpcCluster(admin, research, 'chem-lab', {
    clusterId: 'hpc-chem',
    zone: 'jinan1a',
    endpoint: simulator.url,
    allowInsecureHttp: true,
    credentialsSecretRef: { name: 'shanhe-api-key' },
  });
  let next = 0;
  service = await TcpProxy.start(() => (backends.length === 0 ? undefined : backends[next++ % backends.length]));
}, 120_000);

afterEach(async () => {
  for (const creator of creators) await creator.stop();
  creators = [];
  for (const operator of started) await operator.stop();
  started = [];
  backends = [];
});

afterAll(async () => {
  await service?.close();
  await simulator?.close();
});

const addressOf = (operator: RunningOperator): { host: string; port: number } => {
  const address = operator.manager.addresses().webhook ?? '';
  const port = address.slice(address.lastIndexOf(':') + 1);
  return { host: address.slice(0, address.lastIndexOf(':')), port: Number(port) };
};

/** Replicas of an operator installed in a namespace of its own, serving the webhook behind the service. */
async function startReplicas(identities: string[], webhook: Omit<TestWebhookOptions, 'namespace'> = {}): Promise<{ namespace: string; replicas: RunningOperator[] }> {
  const namespace = await createTestNamespace(admin, 'operator');
  const kubeConfig = await operatorKubeConfig(admin, namespace, 'cluster', { webhook: true });
  await installWebhookConfiguration(admin, `127.0.0.1:${String(service.port)}`, namespace);
  const replicas: RunningOperator[] = [];
  for (const identity of identities) {
    // The first namespace holds the Lease (the shipped Role grants it in the operator's own).
    const replica = await startOperator(kubeConfig, [namespace, research], { leaderElection: true, identity, webhook: { namespace, ...webhook } });
    started.push(replica);
    replicas.push(replica);
  }
  backends = replicas.map(addressOf);
  return { namespace, replicas };
}

let pods = 0;
const claimAnn = () => ({
  metadata: { name: `pod-${String(++pods)}`, labels: { 'hpc.shanhe.com/cluster': 'chem-lab' }, annotations: { 'hpc.shanhe.com/user': 'ann' } },
  spec: { containers: [{ name: 'main', image: 'busybox', command: ['id'] }] },
});

type Outcome = { uid: number | undefined } | { refused: string };

/**
 * Creates pods that claim ann, two at a time, until stopped, and records each outcome. A short
 * pause between creations keeps the number of stored pods modest on a shared machine.
 */
function keepCreatingPods() {
  const outcomes: Outcome[] = [];
  let running = true;
  const worker = async () => {
    while (running) {
      try {
        const pod = await core.createNamespacedPod({ namespace: research, body: claimAnn() });
        outcomes.push({ uid: pod.spec?.securityContext?.runAsUser });
      } catch (error) {
        const body = (error as { body?: unknown }).body;
        outcomes.push({ refused: `${String(apiStatusCode(error))} ${typeof body === 'string' ? body : String(error)}` });
      }
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
      try {
        return (await core.createNamespacedPod({ namespace: research, body: claimAnn() })).spec?.securityContext?.runAsUser === ANN_UID;
      } catch {
        return false;
      }
    },
    { timeoutMs: 60_000, description: 'the webhook admitting a pod over TLS' },
  );
}

async function admissionsOf(replica: RunningOperator): Promise<number> {
  const metric = await replica.metrics.registry.getSingleMetric('hpc_user_operator_webhook_admissions_total')?.get();
  return metric?.values.reduce((sum, v) => sum + v.value, 0) ?? 0;
}

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
  await waitFor(() => creating.admitted() >= 10, { timeoutMs: 60_000, description: '10 pods admitted' });
  // What a pod deletion does: the endpoints controller takes the replica out of the Service
  // (the preStop pause lets that happen first), then it gets SIGTERM and releases the lease.
  backends = [addressOf(follower)];
  const followerBefore = await admissionsOf(follower);
  await leader.stop();
  await waitFor(async () => (await holder()) === (leaderIdentity === 'replica-a' ? 'replica-b' : 'replica-a'), { description: 'the follower leading' });
  const atHandover = creating.admitted();
  await waitFor(() => creating.admitted() >= atHandover + 10, { timeoutMs: 60_000, description: '10 more pods admitted after the handover' });
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
  const atRotation = creating.admitted();
  await waitFor(() => creating.admitted() >= atRotation + 10, { timeoutMs: 60_000, description: '10 more pods admitted after the CA rotation' }).catch((error: unknown) => {
    throw new Error(`${String(error)}; refusals: ${creating.refusals().slice(-3).join(' | ')}`);
  });
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
