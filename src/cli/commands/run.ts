import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { parseDuration } from '../../api/duration.js';
import type { Logger } from 'pino';
import { Manager, type ManagerOptions } from '../../controller/manager.js';
import { OperatorMetrics } from '../../controller/metrics.js';
import { KeyBudgets } from '../../budget/key-budgets.js';
import { parseCallRate, type CallRate } from '../../budget/plan.js';
import { DEFAULT_SYNC_LIMITS } from '../../provider/client.js';
import { EndpointAllowList, PROVIDER_ENDPOINTS } from '../../provider/endpoint-policy.js';
import { HpcUserSource } from '../../provider/user-source.js';
import { createLogger, isLogLevel, LOG_LEVELS } from '../../runtime/logger.js';
import { loadKubeAccess } from '../../kube/access.js';
import { KubeClient } from '../../kube/client.js';
import type { CertificateKeeperOptions } from '../../webhook/certificate-keeper.js';
import type { CertificatePolicy } from '../../webhook/certificates.js';
import { integerFlag, optionalString, UsageError, type Command, type FlagValues } from '../command.js';

const DEFAULTS = {
  concurrency: 4,
  metricsAddr: ':8080',
  healthAddr: ':8081',
  leaderElectionId: 'hpc-user-operator',
  drainTimeout: '30s',
  providerTimeout: '10s',
  providerRateLimit: '2000/1h',
  syncTimeout: '5m',
  webhookSecret: 'hpc-user-operator-webhook-tls',
  webhookConfiguration: 'hpc-user-operator',
  webhookService: 'hpc-user-operator-webhook',
  webhookCertValidity: '2160h',
  webhookCertCheckInterval: '1m',
};
/** No flag's duration needs more; it also keeps every timer far inside what Node can hold. */
const MAX_FLAG_DURATION = '24h';

const WEBHOOK_CERT_MODES = ['managed', 'secret'] as const;

type WebhookFlags = { addr: string; certificates: Omit<CertificateKeeperOptions, 'client' | 'logger'> };

/** The webhook flags, checked before anything starts; undefined when --webhook-addr is not given. */
function webhookFlags(values: FlagValues): WebhookFlags | undefined {
  const addr = optionalString(values, 'webhook-addr');
  if (addr === undefined || addr === '0') return undefined;
  const mode = optionalString(values, 'webhook-certs') ?? 'managed';
  if (!(WEBHOOK_CERT_MODES as readonly string[]).includes(mode)) throw new UsageError(`--webhook-certs must be one of ${WEBHOOK_CERT_MODES.join(', ')}`);
  const namespace = optionalString(values, 'webhook-namespace') ?? process.env.POD_NAMESPACE ?? 'default';
  const service = optionalString(values, 'webhook-service') ?? DEFAULTS.webhookService;
  const hosts = (optionalString(values, 'webhook-cert-hosts') ?? `${service},${service}.${namespace},${service}.${namespace}.svc,${service}.${namespace}.svc.cluster.local`)
    .split(',')
    .map((host) => host.trim())
    .filter((host) => host !== '');
  const certificates = {
    namespace,
    secretName: optionalString(values, 'webhook-secret') ?? DEFAULTS.webhookSecret,
    checkIntervalMs: durationFlag(values, 'webhook-cert-check-interval', DEFAULTS.webhookCertCheckInterval),
    ...(mode === 'managed'
      ? {
          managed: {
            policy: certificatePolicyFlags(values, hosts),
            webhookConfigurationName: optionalString(values, 'webhook-configuration') ?? DEFAULTS.webhookConfiguration,
          },
        }
      : {}),
  };
  return { addr, certificates };
}

/** The webhook as the Manager runs it. */
async function webhookOf(flags: WebhookFlags | undefined, client: KubeClient, logger: Logger): Promise<ManagerOptions['webhook']> {
  if (flags === undefined) return undefined;
  // Loaded only with the webhook on: X.509 issuance brings a library of its own.
  const { CertificateKeeper } = await import('../../webhook/certificate-keeper.js');
  return { addr: flags.addr, certificates: new CertificateKeeper({ ...flags.certificates, client, logger }) };
}

/** The serving certificate's life, and how long before its end it is renewed (default a third of it). */
function certificatePolicyFlags(values: FlagValues, hosts: string[]): CertificatePolicy {
  const validityMs = durationFlag(values, 'webhook-cert-validity', DEFAULTS.webhookCertValidity, '87600h');
  if (optionalString(values, 'webhook-cert-renew-before') === undefined) return { hosts, validityMs };
  const renewBeforeMs = durationFlag(values, 'webhook-cert-renew-before', '0s', '87600h');
  if (renewBeforeMs <= 0 || renewBeforeMs >= validityMs) throw new UsageError('--webhook-cert-renew-before must be more than 0 and less than --webhook-cert-validity');
  return { hosts, validityMs, renewBeforeMs };
}

/** `2000/1h`: calls per duration. */
function rateLimitFlag(values: FlagValues): CallRate {
  const text = optionalString(values, 'provider-rate-limit') ?? DEFAULTS.providerRateLimit;
  const rate = parseCallRate(text);
  if (rate === undefined) throw new UsageError(`--provider-rate-limit must be calls/duration like 2000/1h, got "${text}"`);
  return rate;
}

/** `max` defaults to MAX_FLAG_DURATION; a duration no timer waits for (a certificate's life) may be longer. */
function durationFlag(values: FlagValues, name: string, fallback: string, max = MAX_FLAG_DURATION): number {
  const text = optionalString(values, name) ?? fallback;
  const ms = parseDuration(text);
  if (ms === undefined || ms > (parseDuration(max) ?? 0)) {
    throw new UsageError(`--${name} must be a duration like 30s or 2m, at most ${max}, got "${text}"`);
  }
  return ms;
}

/** The endpoints HpcClusters may name; anything else never gets a request. */
function allowedEndpointsFlag(values: FlagValues): EndpointAllowList {
  const text = optionalString(values, 'allowed-endpoints');
  const origins = text === undefined ? PROVIDER_ENDPOINTS : text.split(',').map((o) => o.trim()).filter((o) => o !== '');
  try {
    return new EndpointAllowList(origins, values['allow-loopback-endpoints'] === true);
  } catch (err) {
    throw new UsageError(`--allowed-endpoints: ${(err as Error).message}`);
  }
}

export const runControllerCommand: Command = {
  name: 'run',
  summary: 'Run the controller: reconcile HpcClusters into status and ConfigMaps',
  usage: `Usage: hpc-user-operator run [flags]

Watches HpcCluster resources, the ConfigMaps they own and the Secrets they reference, and
keeps each resource's status and its <name>-users and <name>-nss ConfigMaps in step with the
provider's ListUsers API. Logs are JSON lines on stdout. SIGTERM drains in-flight work,
releases the leader lease and exits 0.

Flags:
  --kubeconfig FILE                  kubeconfig (default: KUBECONFIG, ~/.kube/config, in-cluster)
  --namespaces NS[,NS...]            watch only these namespaces (default: all)
  --concurrency N                    reconciles at once (default ${DEFAULTS.concurrency})
  --leader-elect                     elect a leader on a coordination.k8s.io Lease; only it writes
  --leader-election-namespace NS     namespace of the Lease (default: POD_NAMESPACE, else default)
  --leader-election-id NAME          name of the Lease (default ${DEFAULTS.leaderElectionId})
  --metrics-addr HOST:PORT           Prometheus /metrics (default ${DEFAULTS.metricsAddr}; "0" turns it off)
  --health-addr HOST:PORT            /healthz and /readyz (default ${DEFAULTS.healthAddr}; "0" turns it off)
  --log-level LEVEL                  ${LOG_LEVELS.join(', ')} (default info)
  --drain-timeout DURATION           how long SIGTERM waits for in-flight reconciles (default ${DEFAULTS.drainTimeout})
  --provider-timeout DURATION        timeout of one provider API request (default ${DEFAULTS.providerTimeout})
  --provider-ca-file FILE            PEM bundle trusted for the provider endpoint instead of the system CAs
  --provider-rate-limit N/DURATION   API calls the provider allows each access key (default ${DEFAULTS.providerRateLimit}, its
                                     documented quota); the operator plans 95% of it
  --allowed-endpoints URL[,URL...]   the only provider endpoints an HpcCluster may name; the access key is
                                     sent nowhere else (default ${PROVIDER_ENDPOINTS.join(',')})
  --allow-loopback-endpoints         also allow any port on 127.0.0.1, ::1 and localhost: the simulator of
                                     development and tests, never in production
  --sync-timeout DURATION            deadline of one listing, every page and retry (default ${DEFAULTS.syncTimeout})
  --max-users-per-sync N             a listing reporting more users fails with SyncLimitExceeded (default ${DEFAULT_SYNC_LIMITS.maxRows})

Pod identity webhook (off unless --webhook-addr is given; every replica serves it):
  --webhook-addr HOST:PORT           serve the mutating webhook over HTTPS here (path /mutate-pods)
  --webhook-certs MODE               managed (default): issue and renew a CA and serving certificate in
                                     the Secret and keep the configuration's caBundle current;
                                     secret: serve what the Secret holds (cert-manager), only re-read it
  --webhook-secret NAME              the TLS Secret (default ${DEFAULTS.webhookSecret})
  --webhook-namespace NS             its namespace (default: POD_NAMESPACE, else default)
  --webhook-configuration NAME       MutatingWebhookConfiguration whose caBundle to keep (default ${DEFAULTS.webhookConfiguration})
  --webhook-service NAME             Service in front of the webhook; the certificate is for its DNS names (default ${DEFAULTS.webhookService})
  --webhook-cert-hosts H[,H...]      DNS names or IPs of the certificate instead of the Service's
  --webhook-cert-validity DURATION   life of a serving certificate (at most 87600h); the CA lives 4 times as long (default ${DEFAULTS.webhookCertValidity})
  --webhook-cert-renew-before DURATION  renew a serving certificate this long before it ends, the CA 4 times as
                                     early (default: a third of the validity)
  --webhook-cert-check-interval DURATION  how often the Secret is re-read and renewal considered (default ${DEFAULTS.webhookCertCheckInterval})
Durations are at most ${MAX_FLAG_DURATION}.`,
  options: {
    kubeconfig: { type: 'string' },
    namespaces: { type: 'string' },
    concurrency: { type: 'string' },
    'leader-elect': { type: 'boolean' },
    'leader-election-namespace': { type: 'string' },
    'leader-election-id': { type: 'string' },
    'metrics-addr': { type: 'string' },
    'health-addr': { type: 'string' },
    'log-level': { type: 'string' },
    'drain-timeout': { type: 'string' },
    'provider-timeout': { type: 'string' },
    'provider-ca-file': { type: 'string' },
    'provider-rate-limit': { type: 'string' },
    'allowed-endpoints': { type: 'string' },
    'allow-loopback-endpoints': { type: 'boolean' },
    'sync-timeout': { type: 'string' },
    'max-users-per-sync': { type: 'string' },
    'webhook-addr': { type: 'string' },
    'webhook-certs': { type: 'string' },
    'webhook-secret': { type: 'string' },
    'webhook-namespace': { type: 'string' },
    'webhook-configuration': { type: 'string' },
    'webhook-service': { type: 'string' },
    'webhook-cert-hosts': { type: 'string' },
    'webhook-cert-validity': { type: 'string' },
    'webhook-cert-renew-before': { type: 'string' },
    'webhook-cert-check-interval': { type: 'string' },
  },
  async run(values, positionals) {
    if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`);
    const level = optionalString(values, 'log-level') ?? 'info';
    if (!isLogLevel(level)) throw new UsageError(`--log-level must be one of ${LOG_LEVELS.join(', ')}`);
    const namespaces = (optionalString(values, 'namespaces') ?? '')
      .split(',')
      .map((ns) => ns.trim())
      .filter((ns) => ns !== '');
    const concurrency = integerFlag(values, 'concurrency', DEFAULTS.concurrency, 1);
    const drainTimeoutMs = durationFlag(values, 'drain-timeout', DEFAULTS.drainTimeout);
    const timeoutMs = durationFlag(values, 'provider-timeout', DEFAULTS.providerTimeout);
    const caFile = optionalString(values, 'provider-ca-file');
    const rateLimit = rateLimitFlag(values);
    const allowedEndpoints = allowedEndpointsFlag(values);
    const webhookSettings = webhookFlags(values);
    const limits = {
      deadlineMs: durationFlag(values, 'sync-timeout', DEFAULTS.syncTimeout),
      maxRows: integerFlag(values, 'max-users-per-sync', DEFAULT_SYNC_LIMITS.maxRows, 1),
    };
    const address = (name: string, fallback: string): string | undefined => {
      const value = optionalString(values, name) ?? fallback;
      return value === '0' ? undefined : value;
    };

    const logger = createLogger(level);
    const kube = await loadKubeAccess(optionalString(values, 'kubeconfig'));
    const identity = `${process.env.POD_NAME ?? hostname()}-${randomBytes(3).toString('hex')}`;
    const metrics = new OperatorMetrics();
    const budget = new KeyBudgets({ defaultRate: rateLimit });
    const userSource = new HpcUserSource({
      timeoutMs,
      allowedEndpoints,
      limits,
      rateLimiters: budget,
      ...(caFile === undefined ? {} : { caCert: readFileSync(caFile, 'utf8') }),
      onRequest: (outcome) => metrics.countProviderRequest(outcome),
    });
    const webhook = await webhookOf(webhookSettings, new KubeClient(kube), logger);
    const metricsAddr = address('metrics-addr', DEFAULTS.metricsAddr);
    const healthAddr = address('health-addr', DEFAULTS.healthAddr);
    const manager = new Manager({
      kube,
      namespaces,
      concurrency,
      userSource,
      budget,
      metrics,
      logger,
      identity,
      drainTimeoutMs,
      ...(values['leader-elect'] === true
        ? {
            leaderElection: {
              namespace: optionalString(values, 'leader-election-namespace') ?? process.env.POD_NAMESPACE ?? 'default',
              name: optionalString(values, 'leader-election-id') ?? DEFAULTS.leaderElectionId,
            },
          }
        : {}),
      ...(metricsAddr === undefined ? {} : { metricsAddr }),
      ...(healthAddr === undefined ? {} : { healthAddr }),
      ...(webhook === undefined ? {} : { webhook }),
    });

    const onSignal = (signal: NodeJS.Signals): void => {
      logger.info({ signal }, 'shutting down');
      void manager.stop();
    };
    process.once('SIGTERM', onSignal);
    process.once('SIGINT', onSignal);
    try {
      await manager.start();
      const addresses = manager.addresses();
      logger.info({ identity, metrics: addresses.metrics, health: addresses.health, webhook: addresses.webhook }, 'started');
      const exitCode = await manager.done;
      logger.info({ exitCode }, 'stopped');
      return exitCode;
    } finally {
      process.off('SIGTERM', onSignal);
      process.off('SIGINT', onSignal);
    }
  },
};
