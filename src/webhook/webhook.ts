import type { Logger } from 'pino';
import type { HpcClusterObject } from '../api/hpccluster.js';
import type { CachedConfigMap } from '../controller/cached-objects.js';
import type { ObjectCache } from '../controller/kube.js';
import type { AdmissionResult, OperatorMetrics } from '../controller/metrics.js';
import { usersConfigMapName } from '../render/configmaps.js';
import { review, type AdmissionReview } from './admission.js';
import type { CertificateKeeper } from './certificate-keeper.js';
import { IdentityResolver } from './identity.js';
import { startWebhookServer, type WebhookServer } from './server.js';

/**
 * The pod identity webhook as the operator process runs it: on every replica, leader or not,
 * answering from the same caches the controller reads (HpcClusters, and the operator's own
 * ConfigMaps), over the certificate the keeper maintains.
 */

export interface PodIdentityWebhookOptions {
  addr: string;
  hpcClusters: ObjectCache<HpcClusterObject>;
  configMaps: ObjectCache<CachedConfigMap>;
  /** True once the caches hold a complete list: before that nothing is vouched for. */
  cachesSynced: () => boolean;
  certificates: CertificateKeeper;
  metrics: OperatorMetrics;
  logger: Logger;
}

function resultOf(answer: AdmissionReview): AdmissionResult {
  const response = answer.response;
  if (response?.allowed === true) return 'allowed';
  return response?.status?.code === 503 ? 'retry' : 'refused';
}

export class PodIdentityWebhook {
  private readonly resolver = new IdentityResolver();
  private server: WebhookServer | undefined;

  constructor(private readonly options: PodIdentityWebhookOptions) {}

  /** Serves once a certificate is there (it may be waiting for another replica to issue one). */
  async start(): Promise<void> {
    const { certificates, logger } = this.options;
    const certificate = await certificates.start((renewed) => this.server?.useCertificate(renewed));
    this.server = await startWebhookServer({ addr: this.options.addr, certificate, answer: (body) => this.answer(body) });
    logger.info({ address: this.server.address }, 'pod identity webhook serving');
  }

  /** Ready to take traffic: serving, with synced caches. */
  isReady(): boolean {
    return this.server !== undefined && this.options.cachesSynced();
  }

  get address(): string | undefined {
    return this.server?.address;
  }

  /** Forgets the index of a deleted HpcCluster. */
  forget(namespace: string, name: string): void {
    this.resolver.forget(namespace, name);
  }

  async stop(): Promise<void> {
    await this.options.certificates.stop();
    await this.server?.close();
  }

  private answer(body: unknown): AdmissionReview {
    const started = performance.now();
    const { hpcClusters, configMaps, metrics, logger } = this.options;
    let answer: AdmissionReview;
    try {
      answer = review(
        body,
        (namespace, cluster, username) =>
          this.resolver.resolve(namespace, cluster, username, {
            hpcCluster: hpcClusters.get(namespace, cluster),
            usersConfigMap: configMaps.get(namespace, usersConfigMapName(cluster)),
          }),
        this.options.cachesSynced(),
      );
    } catch (error) {
      metrics.observeAdmission('error', (performance.now() - started) / 1000);
      throw error;
    }
    const result = resultOf(answer);
    metrics.observeAdmission(result, (performance.now() - started) / 1000);
    if (result !== 'allowed') logger.info({ result, message: answer.response?.status?.message }, 'pod admission refused');
    return answer;
  }
}
