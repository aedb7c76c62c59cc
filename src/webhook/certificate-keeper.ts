import { setTimeout as sleep } from 'node:timers/promises';
import type { V1MutatingWebhookConfiguration, V1Secret } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { isNotFound, JSON_PATCH, statusCode, type KubeClient } from '../kube/client.js';
import { renewCertificates, type CertificateMaterial, type CertificatePolicy } from './certificates.js';
import type { ServingCertificate } from './server.js';

/**
 * Keeps the webhook's serving certificate current on every replica. It re-reads the TLS Secret
 * every `checkIntervalMs` and hands a changed certificate to the server. When the operator
 * manages the certificates, any replica may also renew them: writes are conditional on the
 * Secret's resourceVersion, so of two replicas renewing at once one wins and the other reads
 * the winner's. After each read it brings the MutatingWebhookConfiguration's caBundle in line
 * with the Secret's ca.crt. When the install provides the Secret (cert-manager), it only reads.
 */

export interface CertificateKeeperOptions {
  client: KubeClient;
  namespace: string;
  secretName: string;
  /** Set: the operator issues and renews the certificates and keeps this configuration's caBundle. */
  managed?: { policy: CertificatePolicy; webhookConfigurationName: string };
  checkIntervalMs: number;
  logger: Logger;
}

const toData = (material: CertificateMaterial): Record<string, string> =>
  Object.fromEntries(Object.entries(material).map(([k, v]) => [k, Buffer.from(v).toString('base64')]));

function fromData(secret: V1Secret | undefined): Partial<CertificateMaterial> | undefined {
  if (secret?.data === undefined) return undefined;
  return Object.fromEntries(Object.entries(secret.data).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]));
}

const isConflict = (error: unknown): boolean => statusCode(error) === 409 || statusCode(error) === 422;
const WEBHOOK_CONFIGURATIONS = '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations';

export class CertificateKeeper {
  private readonly client: KubeClient;
  private current: ServingCertificate | undefined;
  private readonly stopped = new AbortController();
  private loop: Promise<void> | undefined;

  constructor(private readonly options: CertificateKeeperOptions) {
    this.client = options.client;
  }

  /**
   * Waits for a serving certificate (retrying until there is one), then keeps checking in the
   * background; `onChange` gets every later certificate.
   */
  async start(onChange: (certificate: ServingCertificate) => void): Promise<ServingCertificate> {
    let first: ServingCertificate | undefined;
    while (first === undefined) {
      first = await this.check().catch((error: unknown) => {
        this.options.logger.warn({ error: String(error), secret: this.options.secretName }, 'webhook certificate not available yet');
        return undefined;
      });
      if (first === undefined) await sleep(Math.min(this.options.checkIntervalMs, 5_000), undefined, { signal: this.stopped.signal });
    }
    this.loop = this.keep(onChange);
    return first;
  }

  async stop(): Promise<void> {
    this.stopped.abort();
    await this.loop;
  }

  private async keep(onChange: (certificate: ServingCertificate) => void): Promise<void> {
    const signal = this.stopped.signal;
    while (!signal.aborted) {
      try {
        await sleep(this.options.checkIntervalMs, undefined, { signal });
      } catch {
        return;
      }
      const before = this.current;
      const next = await this.check().catch((error: unknown) => {
        this.options.logger.warn({ error: String(error) }, 'webhook certificate check failed; serving the current one');
        return undefined;
      });
      if (next !== undefined && next !== before) onChange(next);
    }
  }

  /** One round: read (and when managed, renew) the Secret; the certificate to serve. */
  private async check(): Promise<ServingCertificate | undefined> {
    let secret = await this.readSecret();
    const managed = this.options.managed;
    if (managed !== undefined) {
      const renewed = await renewCertificates(fromData(secret), managed.policy, new Date());
      if (renewed !== undefined) secret = await this.writeSecret(secret, renewed);
      const bundle = fromData(secret)?.['ca.crt'];
      if (bundle !== undefined) await this.publishCaBundle(managed.webhookConfigurationName, bundle);
    }
    const data = fromData(secret);
    const cert = data?.['tls.crt'];
    const key = data?.['tls.key'];
    if (cert === undefined || key === undefined) return undefined;
    if (this.current?.cert !== cert || this.current.key !== key) {
      this.current = { cert, key };
      this.options.logger.info({ secret: this.options.secretName }, 'webhook serving certificate loaded');
    }
    return this.current;
  }

  private secretPath(name?: string): string {
    return `/api/v1/namespaces/${this.options.namespace}/secrets${name === undefined ? '' : `/${name}`}`;
  }

  private async readSecret(): Promise<V1Secret | undefined> {
    try {
      return await this.client.get<V1Secret>(this.secretPath(this.options.secretName));
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }

  /** Writes renewed material at the read resourceVersion; on a lost race, the winner's Secret. */
  private async writeSecret(existing: V1Secret | undefined, material: CertificateMaterial): Promise<V1Secret | undefined> {
    const { namespace, secretName: name } = this.options;
    const body: V1Secret = {
      apiVersion: 'v1',
      kind: 'Secret',
      type: 'kubernetes.io/tls',
      metadata: {
        name,
        namespace,
        labels: { 'app.kubernetes.io/managed-by': 'hpc-user-operator', 'app.kubernetes.io/component': 'webhook' },
        ...(existing?.metadata?.resourceVersion === undefined ? {} : { resourceVersion: existing.metadata.resourceVersion }),
      },
      data: toData(material),
    };
    try {
      const written =
        existing === undefined
          ? await this.client.request<V1Secret>('POST', this.secretPath(), { body })
          : await this.client.request<V1Secret>('PUT', this.secretPath(name), { body });
      this.options.logger.info({ secret: name }, existing === undefined ? 'webhook certificates created' : 'webhook certificates renewed');
      return written;
    } catch (error) {
      if (!isConflict(error)) throw error;
      return this.readSecret();
    }
  }

  private async publishCaBundle(configurationName: string, bundle: string): Promise<void> {
    let configuration: V1MutatingWebhookConfiguration;
    try {
      configuration = await this.client.get<V1MutatingWebhookConfiguration>(`${WEBHOOK_CONFIGURATIONS}/${configurationName}`);
    } catch (error) {
      if (isNotFound(error)) return; // not installed (yet): nothing to keep current
      throw error;
    }
    const caBundle = Buffer.from(bundle).toString('base64');
    const stale = (configuration.webhooks ?? []).map((w, i) => ({ w, i })).filter(({ w }) => w.clientConfig.caBundle !== caBundle);
    if (stale.length === 0) return;
    await this.client.request('PATCH', `${WEBHOOK_CONFIGURATIONS}/${configurationName}`, {
      contentType: JSON_PATCH,
      // `test` guards each index against a concurrent reorder of the webhooks.
      body: stale.flatMap(({ w, i }) => [
        { op: 'test', path: `/webhooks/${i}/name`, value: w.name },
        { op: 'add', path: `/webhooks/${i}/clientConfig/caBundle`, value: caBundle },
      ]),
    });
    this.options.logger.info({ configuration: configurationName }, 'webhook caBundle updated');
  }
}
