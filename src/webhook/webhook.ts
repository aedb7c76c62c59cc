import type { KubernetesObject } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { KIND, type HpcClusterObject } from '../api/hpccluster.js';
import type { CachedConfigMap } from '../controller/cached-objects.js';
import { controllerOwner, type WatchedCache } from '../controller/controller.js';
import type { ObjectCache } from '../controller/kube.js';
import type { AdmissionResult, OperatorMetrics } from '../controller/metrics.js';
import { usersConfigMapName } from '../render/configmaps.js';
import { messageOf } from '../runtime/error-message.js';
import { review, type AdmissionReview } from './admission.js';
import type { CertificateKeeper } from './certificate-keeper.js';
import { IdentityResolver, type ClaimSources, type ConfigMapReader } from './identity.js';
import { concurrencyLimit } from '../runtime/limit.js';
import { startWebhookServer, type WebhookServer } from './server.js';

/**
 * The pod identity webhook as the operator process runs it: on every replica, leader or not,
 * answering from the same caches the controller reads (HpcClusters, and the operator's own
 * ConfigMaps), over the certificate the keeper maintains. Each HpcCluster's user list is read,
 * checked and indexed as the caches receive it, not when a pod first claims one of its users.
 */

/** A cache the webhook reads, and hears of changes to. */
type Watched<T extends KubernetesObject> = ObjectCache<T> & Pick<WatchedCache<T>, 'on'>;

export interface PodIdentityWebhookOptions {
  addr: string;
  hpcClusters: Watched<HpcClusterObject>;
  configMaps: Watched<CachedConfigMap>;
  /** The cache holds the ConfigMaps' metadata only: a user list is read whole when it changes. */
  readConfigMap: ConfigMapReader;
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
  /** HpcClusters (namespace/name) whose index is to be prepared, coalescing bursts of events. */
  private readonly toPrepare = new Set<string>();
  /** User lists read at once: at start-up, every HpcCluster's. */
  private readonly readLimit = concurrencyLimit(4);
  /** Preparations scheduled and not finished yet; none of them rejects. */
  private readonly preparations = new Set<Promise<void>>();

  constructor(private readonly options: PodIdentityWebhookOptions) {
    const { hpcClusters, configMaps } = options;
    for (const event of ['add', 'update'] as const) {
      hpcClusters.on(event, (object) => this.schedulePrepare(object.metadata?.namespace, object.metadata?.name));
      // Only a ConfigMap its HpcCluster controls can be trusted: the one it names is prepared.
      configMaps.on(event, (cm) => {
        const owner = controllerOwner(cm, KIND);
        if (owner !== undefined) this.schedulePrepare(owner.namespace, owner.name);
      });
    }
  }

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

  /**
   * Resolves once no preparation is scheduled or running: after the caches' first lists, once
   * every cached user list has been read and indexed (or failed to be).
   */
  async indexCaughtUp(): Promise<void> {
    while (this.preparations.size > 0) await Promise.all(this.preparations);
  }

  /** Forgets the index of a deleted HpcCluster. */
  forget(namespace: string, name: string): void {
    this.resolver.forget(namespace, name);
  }

  async stop(): Promise<void> {
    await this.options.certificates.stop();
    await this.server?.close();
  }

  private sources(namespace: string, cluster: string): ClaimSources {
    return {
      hpcCluster: this.options.hpcClusters.get(namespace, cluster),
      usersConfigMap: this.options.configMaps.get(namespace, usersConfigMapName(cluster)),
    };
  }

  /**
   * Prepares an HpcCluster's index a few at a time, each from the caches as they are when its
   * turn comes: an informer delivers a whole list at once, and events of one HpcCluster come
   * in bursts (its ConfigMap, then its status).
   */
  private schedulePrepare(namespace: string | undefined, name: string | undefined): void {
    if (namespace === undefined || name === undefined) return;
    const key = `${namespace}/${name}`;
    if (this.toPrepare.has(key)) return;
    this.toPrepare.add(key);
    const preparation = this.readLimit(async () => {
      this.toPrepare.delete(key);
      await this.resolver.prepare(namespace, name, this.sources(namespace, name), this.options.readConfigMap);
    })
      .catch((error: unknown) => {
        // The next event of this HpcCluster prepares again; meanwhile its claims are asked to retry.
        this.options.logger.warn({ namespace, name, error: messageOf(error) }, 'could not read the user list of an HpcCluster');
      })
      .finally(() => this.preparations.delete(preparation));
    this.preparations.add(preparation);
  }

  private answer(body: unknown): AdmissionReview {
    const started = performance.now();
    const { metrics, logger } = this.options;
    let answer: AdmissionReview;
    try {
      answer = review(
        body,
        (namespace, cluster, username) => this.resolver.resolve(namespace, cluster, username, this.sources(namespace, cluster)),
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
