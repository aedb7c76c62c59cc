import { CoreV1Api, CustomObjectsApi, type KubeConfig, type KubernetesObject, type V1ConfigMap, type V1Secret } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { GROUP, PLURAL, VERSION, type HpcClusterObject } from '../api/hpccluster.js';
import { MANAGED_BY_LABEL, MANAGED_BY_VALUE, nssConfigMapName, usersConfigMapName } from '../render/configmaps.js';
import type { UserSource } from '../provider/user-source.js';
import { reuseConnections } from '../runtime/kubeconfig.js';
import { startOperationalServer, type OperationalServer } from './http-server.js';
import { ResilientInformer, type InformerListResult } from './informer.js';
import { slimConfigMap } from './configmap-cache.js';
import { KubeApiPort, type ObjectCache } from './kube.js';
import { LeaderElector } from './leader.js';
import { metadataOnlyList, metadataOnlyWatches } from './metadata-only.js';
import type { OperatorMetrics } from './metrics.js';
import { WorkQueue } from './queue.js';
import { HpcClusterReconciler, keyOf, parseKey, type ObjectKey } from './reconcile.js';
import { configMapDrifted, hpcClusterUpdateNeedsSync, ownerOfConfigMap, startupDelayMs } from './triggers.js';

/**
 * The controller machinery wired in one place — the TypeScript form of kube-rs's
 * `Controller::new(hpcclusters).owns(configmaps).watches(secrets).run(reconcile, ...)`:
 * informers fill caches and map events to keys, a work queue runs the reconciler, and
 * leader election decides whether this replica writes at all.
 */

export interface ManagerOptions {
  kubeConfig: KubeConfig;
  /** Namespaces to watch; empty: all. */
  namespaces: string[];
  concurrency: number;
  userSource: UserSource;
  metrics: OperatorMetrics;
  logger: Logger;
  /** This replica's name in events and the Lease. */
  identity: string;
  leaderElection?: { namespace: string; name: string };
  metricsAddr?: string;
  healthAddr?: string;
  /** How long SIGTERM waits for in-flight reconciles. */
  drainTimeoutMs: number;
}

/** One watched collection per namespace scope, read as one cache. */
class ScopedInformers<T extends KubernetesObject> implements ObjectCache<T> {
  constructor(private readonly byNamespace: Map<string | undefined, ResilientInformer<T>>) {}

  get(namespace: string, name: string): T | undefined {
    return (this.byNamespace.get(namespace) ?? this.byNamespace.get(undefined))?.get(namespace, name);
  }

  list(): T[] {
    return [...this.byNamespace.values()].flatMap((informer) => informer.list());
  }

  all(): ResilientInformer<T>[] {
    return [...this.byNamespace.values()];
  }
}

type Lister<T> = (namespace: string | undefined, labelSelector: string | undefined) => Promise<InformerListResult<T>>;

export class Manager {
  private readonly hpcClusters: ScopedInformers<HpcClusterObject>;
  private readonly configMaps: ScopedInformers<V1ConfigMap>;
  private readonly secrets: ScopedInformers<V1Secret>;
  private readonly queue: WorkQueue;
  private readonly reconciler: HpcClusterReconciler;
  private readonly elector: LeaderElector | undefined;
  private server: OperationalServer | undefined;
  private synced = false;
  private leading = false;
  private stopping = false;
  private resolveDone!: (exitCode: number) => void;
  /** Settles with the process exit code: 0 after stop(), 1 when leadership was lost. */
  readonly done = new Promise<number>((resolve) => (this.resolveDone = resolve));

  constructor(private readonly options: ManagerOptions) {
    const { logger, metrics } = options;
    const kubeConfig = reuseConnections(options.kubeConfig);
    const core = kubeConfig.makeApiClient(CoreV1Api);
    const custom = kubeConfig.makeApiClient(CustomObjectsApi);
    const managedSelector = `${MANAGED_BY_LABEL}=${MANAGED_BY_VALUE}`;

    this.hpcClusters = this.informers<HpcClusterObject>('hpcclusters', `/apis/${GROUP}/${VERSION}`, (namespace) =>
      (namespace === undefined
        ? custom.listClusterCustomObject({ group: GROUP, version: VERSION, plural: PLURAL })
        : custom.listNamespacedCustomObject({ group: GROUP, version: VERSION, namespace, plural: PLURAL })) as Promise<InformerListResult<HpcClusterObject>>,
    );
    this.configMaps = this.informers<V1ConfigMap>(
      'configmaps',
      '/api/v1',
      (namespace, labelSelector) =>
        namespace === undefined
          ? core.listConfigMapForAllNamespaces({ ...(labelSelector === undefined ? {} : { labelSelector }) })
          : core.listNamespacedConfigMap({ namespace, ...(labelSelector === undefined ? {} : { labelSelector }) }),
      { labelSelector: managedSelector, transform: slimConfigMap },
    );
    // A Secret's new resourceVersion is all the trigger needs: lists and watches carry metadata only.
    this.secrets = this.informers<V1Secret>(
      'secrets',
      '/api/v1',
      (namespace) =>
        namespace === undefined
          ? core.listSecretForAllNamespaces({}, metadataOnlyList())
          : core.listNamespacedSecret({ namespace }, metadataOnlyList()),
      { kubeConfig: metadataOnlyWatches(kubeConfig) },
    );

    this.reconciler = new HpcClusterReconciler({
      kube: new KubeApiPort(kubeConfig, this.hpcClusters, this.configMaps, options.identity),
      users: options.userSource,
      logger,
      metrics,
    });
    this.queue = new WorkQueue({
      concurrency: options.concurrency,
      logger,
      onDepthChange: (depth) => metrics.setQueueDepth(depth),
      onReconciled: (report) => metrics.observeReconcile(report.outcome, report.durationSeconds),
    });
    this.elector =
      options.leaderElection === undefined
        ? undefined
        : new LeaderElector({ kubeConfig, ...options.leaderElection, identity: options.identity, logger });
    this.wireEvents();
  }

  /** Starts the caches and the operational endpoints, then reconciles once it leads. */
  async start(): Promise<void> {
    const { metrics, logger } = this.options;
    this.server = await startOperationalServer({
      ...(this.options.metricsAddr === undefined ? {} : { metricsAddr: this.options.metricsAddr }),
      ...(this.options.healthAddr === undefined ? {} : { healthAddr: this.options.healthAddr }),
      registry: metrics.registry,
      isReady: () => this.synced,
    });
    await Promise.all(this.allInformers().map((informer) => informer.start()));
    this.synced = true;
    logger.info({ namespaces: this.options.namespaces.length === 0 ? 'all' : this.options.namespaces }, 'caches synced');
    if (this.elector === undefined) {
      this.startLeading();
      return;
    }
    this.elector.run({
      onStartedLeading: () => this.startLeading(),
      onStoppedLeading: () => {
        if (this.stopping) return;
        logger.error('leadership lost: stopping at once so that only the new leader writes');
        metrics.setLeader(false);
        this.leading = false;
        void this.shutdown(0).then(() => this.resolveDone(1));
      },
    });
  }

  /** SIGTERM: stop taking work, finish what is in flight (bounded), release the lease. */
  async stop(): Promise<void> {
    await this.shutdown(this.options.drainTimeoutMs);
    this.resolveDone(0);
  }

  /** The bound addresses of /metrics and the health endpoints. */
  addresses(): { metrics: string | undefined; health: string | undefined } {
    return { metrics: this.server?.metricsAddress, health: this.server?.healthAddress };
  }

  private async shutdown(drainTimeoutMs: number): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.leading = false;
    await this.queue.shutdown(drainTimeoutMs);
    await this.elector?.stop();
    for (const informer of this.allInformers()) informer.stop();
    await this.server?.close();
    this.options.userSource.close();
  }

  private startLeading(): void {
    if (this.stopping) return;
    this.leading = true;
    this.options.metrics.setLeader(true);
    this.options.logger.info({ identity: this.options.identity }, 'leading: reconciling');
    this.queue.start((key, signal) => this.reconciler.reconcile(parseKey(key), signal));
    const now = Date.now();
    for (const object of this.hpcClusters.list()) {
      const key = objectKey(object);
      if (key === undefined) continue;
      const present = [usersConfigMapName(key.name), nssConfigMapName(key.name)].every((name) => this.configMaps.get(key.namespace, name) !== undefined);
      this.queue.addAfter(keyOf(key), startupDelayMs(object, present, now, Math.random));
    }
  }

  /** Events count only once this replica leads, which is after the caches synced: start-up enqueues the rest. */
  private enqueue(key: ObjectKey | undefined): void {
    if (key !== undefined && this.leading) this.queue.add(keyOf(key));
  }

  private allInformers(): Pick<ResilientInformer<KubernetesObject>, 'start' | 'stop'>[] {
    return [...this.hpcClusters.all(), ...this.configMaps.all(), ...this.secrets.all()];
  }

  private wireEvents(): void {
    for (const informer of this.hpcClusters.all()) {
      informer.on('add', (object) => this.enqueue(objectKey(object)));
      informer.on('update', (object, old) => {
        if (hpcClusterUpdateNeedsSync(object, old)) this.enqueue(objectKey(object));
      });
      informer.on('delete', (object) => {
        const key = objectKey(object);
        if (key === undefined) return;
        this.options.metrics.forget(key.namespace, key.name);
        this.enqueue(key);
      });
    }
    for (const informer of this.configMaps.all()) {
      informer.on('update', (cm) => {
        if (configMapDrifted(cm)) this.enqueue(ownerOfConfigMap(cm));
      });
      informer.on('delete', (cm) => this.enqueue(ownerOfConfigMap(cm)));
    }
    for (const informer of this.secrets.all()) {
      const onSecret = (secret: V1Secret): void => {
        const namespace = secret.metadata?.namespace;
        const name = secret.metadata?.name;
        for (const object of this.hpcClusters.list()) {
          const ref = (object.spec as { credentialsSecretRef?: { name?: string } } | undefined)?.credentialsSecretRef?.name;
          if (object.metadata.namespace === namespace && ref === name) this.enqueue(objectKey(object));
        }
      };
      informer.on('add', onSecret);
      informer.on('update', onSecret);
      informer.on('delete', onSecret);
    }
  }

  private informers<T extends KubernetesObject>(
    resource: string,
    apiPrefix: string,
    list: Lister<T>,
    { labelSelector, kubeConfig = this.options.kubeConfig, transform }: { labelSelector?: string; kubeConfig?: KubeConfig; transform?: (object: T) => T } = {},
  ): ScopedInformers<T> {
    const scopes: (string | undefined)[] = this.options.namespaces.length === 0 ? [undefined] : this.options.namespaces;
    const byNamespace = new Map<string | undefined, ResilientInformer<T>>();
    for (const namespace of scopes) {
      byNamespace.set(
        namespace,
        new ResilientInformer<T>({
          name: resource,
          kubeConfig,
          path: namespace === undefined ? `${apiPrefix}/${resource}` : `${apiPrefix}/namespaces/${namespace}/${resource}`,
          list: (query) => list(namespace, query.labelSelector),
          ...(labelSelector === undefined ? {} : { labelSelector }),
          ...(transform === undefined ? {} : { transform }),
          onRestart: () => this.options.metrics.countWatchRestart(resource),
          logger: this.options.logger,
        }),
      );
    }
    return new ScopedInformers(byNamespace);
  }
}

function objectKey(object: KubernetesObject): ObjectKey | undefined {
  const { namespace, name } = object.metadata ?? {};
  return namespace === undefined || name === undefined ? undefined : { namespace, name };
}
