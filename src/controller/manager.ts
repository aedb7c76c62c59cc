import type { KubernetesObject } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { GROUP, isLentToOperator, KIND, PLURAL, VERSION, type HpcClusterObject } from '../api/hpccluster.js';
import type { KeyBudgets } from '../budget/key-budgets.js';
import { startupDelays, startupStateOf } from '../budget/schedule.js';
import type { UserSource } from '../provider/user-source.js';
import type { KubeAccess } from '../kube/access.js';
import { KubeClient } from '../kube/client.js';
import { collectGarbage } from '../runtime/memory.js';
import { cachedConfigMap, cachedHpcCluster, cachedSecretMetadata, type CachedConfigMap } from './cached-objects.js';
import { mayBeAnHpcClustersConfigMap } from './configmap-contents.js';
import { Controller, controllerOwner } from './controller.js';
import { startOperationalServer, type OperationalServer } from './http-server.js';
import { KubeApiPort } from './kube.js';
import { LeaderElector } from './leader.js';
import { METADATA_ONLY_ACCEPT } from './metadata-only.js';
import type { OperatorMetrics } from './metrics.js';
import { keyOf, objectKey } from './object-key.js';
import { backoffLeftMs, configMapsInStep } from './plan.js';
import { requestsHandledBefore, syncRequestPending } from './sync-request.js';
import { HpcClusterReconciler } from './reconcile.js';
import { ScopedInformers } from './scoped-informers.js';
import type { CertificateKeeper } from '../webhook/certificate-keeper.js';
import { PodIdentityWebhook } from '../webhook/webhook.js';
import { configMapNamesAwaited, hpcClusterUpdateNeedsSync, referencedSecrets } from './triggers.js';

export interface ManagerOptions {
  kube: KubeAccess;
  /** Namespaces to watch; empty: all. */
  namespaces: string[];
  concurrency: number;
  userSource: UserSource;
  /** The access keys' budgets: the same object must limit `userSource`'s calls. */
  budget: KeyBudgets;
  metrics: OperatorMetrics;
  logger: Logger;
  /** This replica's name in events and the Lease. */
  identity: string;
  leaderElection?: { namespace: string; name: string };
  metricsAddr?: string;
  healthAddr?: string;
  /** How long SIGTERM waits for in-flight reconciles. */
  drainTimeoutMs: number;
  /** /healthz fails once a cache has had no open watch for this long. Default 3 min. */
  unwatchedLimitMs?: number;
  /** Serve the pod identity webhook from this replica's caches (every replica, leader or not). */
  webhook?: { addr: string; certificates: CertificateKeeper };
}

/** A cache with no open watch for this long fails /healthz (informers back off up to 30 s between attempts). */
const DEFAULT_UNWATCHED_LIMIT_MS = 180_000;

/**
 * The HpcCluster controller: which caches (HpcClusters; the ConfigMaps it may write, slim;
 * Secrets, metadata only), which events call for a sync, how start-up is spread, and the
 * operational endpoints around it. The generic machinery is in Controller.
 */
export class Manager {
  private readonly controller: Controller<HpcClusterObject>;
  private readonly hpcClusters: ScopedInformers<HpcClusterObject>;
  private readonly configMaps: ScopedInformers<KubernetesObject, CachedConfigMap>;
  private readonly reconciler: HpcClusterReconciler;
  private readonly kube: KubeApiPort;
  private readonly webhook: PodIdentityWebhook | undefined;
  private server: OperationalServer | undefined;
  private readonly elector: LeaderElector | undefined;
  /** Set when this replica starts leading: sync requests made since may have found no leader (sync-request.ts). */
  private requestsHandledBefore: number | undefined;
  /** Settles with the process exit code: 0 after stop(), 1 when leadership was lost. */
  readonly done: Promise<number>;

  constructor(private readonly options: ManagerOptions) {
    const { logger, metrics, namespaces } = options;
    const client = new KubeClient(options.kube);
    const common = { namespaces, client, logger };
    const onRestart = (resource: string) => () => metrics.countWatchRestart(resource);

    const hpcClusters = (this.hpcClusters = new ScopedInformers<HpcClusterObject>({
      ...common,
      resource: PLURAL,
      apiPrefix: `/apis/${GROUP}/${VERSION}`,
      // With 1,000 users in status, an HpcCluster is some 160 KB of JSON: ten keep a page
      // under 2 MB. Pages of 50 took the scale bench's restart peak 20-40 MB higher.
      pageSize: 10,
      transform: cachedHpcCluster,
      onRestart: onRestart(PLURAL),
    }));
    // Every ConfigMap an HpcCluster's name may take, the operator's or another's: a name the
    // cache does not hold is free as far as the watch has seen, so a first sync looks none up.
    // Metadata only: what their data holds is known without it (configmap-contents.ts).
    this.configMaps = new ScopedInformers<KubernetesObject, CachedConfigMap>({
      ...common,
      resource: 'configmaps',
      apiPrefix: '/api/v1',
      keep: (cm) => mayBeAnHpcClustersConfigMap(cm.metadata?.name ?? ''),
      accept: METADATA_ONLY_ACCEPT,
      pageSize: 500,
      transform: cachedConfigMap,
      onRestart: onRestart('configmaps'),
    });
    // A Secret's new resourceVersion is all the trigger needs: lists and watches carry metadata only.
    const secrets = new ScopedInformers<KubernetesObject>({
      ...common,
      resource: 'secrets',
      apiPrefix: '/api/v1',
      accept: METADATA_ONLY_ACCEPT,
      pageSize: 500,
      transform: cachedSecretMetadata,
      onRestart: onRestart('secrets'),
    });

    const kube = (this.kube = new KubeApiPort(client, hpcClusters, this.configMaps, secrets, options.identity));
    const reconciler = (this.reconciler = new HpcClusterReconciler({
      kube,
      users: options.userSource,
      budget: options.budget,
      logger,
      metrics,
      requestsHandledBefore: () => this.requestsHandledBefore,
    }));
    metrics.watchKeyBudgets(() => options.budget.report());
    this.elector = options.leaderElection === undefined ? undefined : new LeaderElector({ client, ...options.leaderElection, identity: options.identity, logger });
    this.controller = new Controller(hpcClusters, {
      kind: KIND,
      predicate: hpcClusterUpdateNeedsSync,
      concurrency: options.concurrency,
      logger,
      ...(this.elector === undefined ? {} : { elector: this.elector }),
      unwatchedLimitMs: options.unwatchedLimitMs ?? DEFAULT_UNWATCHED_LIMIT_MS,
      onLeadingChange: (leading) => metrics.setLeader(leading),
      onDepthChange: (depth) => metrics.setQueueDepth(depth),
      onReconciled: (report) => metrics.observeReconcile(report.outcome, report.durationSeconds),
    })
      .owns(this.configMaps, (cm) => {
        const owner = controllerOwner(cm, KIND);
        return owner !== undefined && reconciler.configMapCallsForSync(cm, owner);
      })
      .watches(secrets, referencedSecrets)
      .watches(this.configMaps, configMapNamesAwaited);
    this.webhook =
      options.webhook === undefined
        ? undefined
        : new PodIdentityWebhook({
            ...options.webhook,
            hpcClusters,
            configMaps: this.configMaps,
            readConfigMap: (key, notOlderThan) => kube.readConfigMap(key, notOlderThan),
            cachesSynced: () => this.controller.isReady(),
            metrics,
            logger,
          });
    // What was read of a Secret goes with the Secret, and with its label.
    const forgetSecret = (object: KubernetesObject): void => {
      const key = objectKey(object);
      if (key !== undefined) kube.forgetSecret(key);
    };
    secrets.on('delete', forgetSecret);
    secrets.on('update', (object) => {
      if (!isLentToOperator(object.metadata?.labels)) forgetSecret(object);
    });
    hpcClusters.on('delete', (object) => {
      const key = objectKey(object);
      if (key === undefined) return;
      metrics.forget(key.namespace, key.name);
      this.webhook?.forget(key.namespace, key.name);
    });
    this.done = this.controller.done.then(async (exitCode) => {
      await this.webhook?.stop();
      await this.server?.close();
      options.userSource.close();
      client.close();
      return exitCode;
    });
  }

  /** Starts the caches and the operational endpoints, then reconciles once it leads. */
  async start(): Promise<void> {
    const { metrics, logger, namespaces } = this.options;
    this.server = await startOperationalServer({
      ...(this.options.metricsAddr === undefined ? {} : { metricsAddr: this.options.metricsAddr }),
      ...(this.options.healthAddr === undefined ? {} : { healthAddr: this.options.healthAddr }),
      registry: metrics.registry,
      isReady: () => this.controller.isReady() && (this.webhook?.isReady() ?? true),
      healthProblems: () => this.controller.healthProblems(),
    });
    // The webhook starts beside the caches: until they are synced it answers "not ready, retry".
    const webhookStarted = this.webhook?.start();
    // Start-up spreads every resource found in the cache at once (budget/schedule.ts), so
    // the delays are worked out for all of them when the first is asked for.
    let delays: Map<string, number> | undefined;
    await this.controller.start((key, signal) => this.reconciler.reconcile(key, signal), {
      prepareStartup: () => this.reconciler.readUnvouched(this.cachedHpcClusters()),
      startupDelayMs: (object) => {
        delays ??= this.startupDelays();
        const key = objectKey(object);
        return key === undefined ? 0 : (delays.get(keyOf(key)) ?? 0);
      },
    });
    // The initial lists parsed every cached object whole and kept a slim copy: let go of the rest.
    collectGarbage();
    // With the webhook on, every cached user list is then read whole once, to be indexed: let go
    // of those reads too, once they are done.
    void this.webhook?.indexCaughtUp().then(collectGarbage);
    logger.info({ namespaces: namespaces.length === 0 ? 'all' : namespaces, identity: this.options.identity }, 'caches synced');
    await webhookStarted;
  }

  /** When each cached HpcCluster is first reconciled after start-up (see startupDelays). */
  private startupDelays(): Map<string, number> {
    const now = Date.now();
    const handledBefore = (this.requestsHandledBefore = requestsHandledBefore(this.elector?.previousLeaderRenewTime()));
    const found = this.cachedHpcClusters().map((object) => {
      // A pair left half-written (a crash between the writes), edited while the operator was down, or a sync asked for meanwhile: due now.
      const upToDate = configMapsInStep(object, this.reconciler.knownConfigMaps(object)) && !syncRequestPending(object, handledBefore);
      return { id: keyOf(object.metadata), ...startupStateOf(object, upToDate, now) };
    });
    const delays = startupDelays(found, Math.random);
    // One that was backing off from failures that may pass carries on backing off.
    for (const object of this.hpcClusters.list()) {
      const key = objectKey(object);
      const left = backoffLeftMs(object, now, handledBefore);
      if (key !== undefined && left > 0) delays.set(keyOf(key), Math.max(left, delays.get(keyOf(key)) ?? 0));
    }
    return delays;
  }

  /** The cached HpcClusters, each with its key. */
  private cachedHpcClusters(): (HpcClusterObject & { metadata: { namespace: string; name: string } })[] {
    return this.hpcClusters.list().flatMap((object) => {
      const key = objectKey(object);
      return key === undefined ? [] : [{ ...object, metadata: { ...object.metadata, ...key } }];
    });
  }

  /** SIGTERM: stop taking work, finish what is in flight (bounded), release the lease. */
  async stop(): Promise<void> {
    await this.controller.stop(this.options.drainTimeoutMs);
    await this.done;
  }

  /** The bound addresses of /metrics and the health endpoints. */
  addresses(): { metrics: string | undefined; health: string | undefined; webhook: string | undefined } {
    return { metrics: this.server?.metricsAddress, health: this.server?.healthAddress, webhook: this.webhook?.address };
  }
}
