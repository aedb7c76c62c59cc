import type { KubernetesObject } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { KubeClient } from '../kube/client.js';
import type { WatchedCache } from './controller.js';
import { ResilientInformer, type InformerEvent, type InformerHandler, type InformerRestartReason, type ResilientInformerOptions } from './informer.js';

export interface ScopedInformersOptions<T extends KubernetesObject, C extends KubernetesObject> {
  /** The resource's plural, as in its URL: `configmaps`. */
  resource: string;
  /** `/api/v1`, or `/apis/<group>/<version>`. */
  apiPrefix: string;
  /** Namespaces to watch, one informer each; empty: one informer for all namespaces. */
  namespaces: readonly string[];
  client: KubeClient;
  labelSelector?: string;
  keep?: ResilientInformerOptions<T, C>['keep'];
  accept?: ResilientInformerOptions<T, C>['accept'];
  pageSize?: number;
  transform?: (object: T) => C;
  onRestart?: (reason: InformerRestartReason) => void;
  logger: Logger;
}

/** One resource watched in each namespace of a scope, read as one cache. */
export class ScopedInformers<T extends KubernetesObject, C extends KubernetesObject = T> implements WatchedCache<C> {
  readonly name: string;
  private readonly byNamespace = new Map<string | undefined, ResilientInformer<T, C>>();

  constructor(options: ScopedInformersOptions<T, C>) {
    const { resource, apiPrefix, namespaces, labelSelector, keep, accept, pageSize, transform, onRestart } = options;
    this.name = resource;
    const scopes: (string | undefined)[] = namespaces.length === 0 ? [undefined] : [...namespaces];
    for (const namespace of scopes) {
      this.byNamespace.set(
        namespace,
        new ResilientInformer<T, C>({
          name: resource,
          client: options.client,
          path: namespace === undefined ? `${apiPrefix}/${resource}` : `${apiPrefix}/namespaces/${namespace}/${resource}`,
          ...(labelSelector === undefined ? {} : { labelSelector }),
          ...(keep === undefined ? {} : { keep }),
          ...(accept === undefined ? {} : { accept }),
          ...(pageSize === undefined ? {} : { pageSize }),
          ...(transform === undefined ? {} : { transform }),
          ...(onRestart === undefined ? {} : { onRestart }),
          logger: options.logger,
        }),
      );
    }
  }

  on(event: InformerEvent, handler: InformerHandler<C>): void {
    for (const informer of this.byNamespace.values()) informer.on(event, handler);
  }

  get(namespace: string, name: string): C | undefined {
    return (this.byNamespace.get(namespace) ?? this.byNamespace.get(undefined))?.get(namespace, name);
  }

  list(): C[] {
    return [...this.byNamespace.values()].flatMap((informer) => informer.list());
  }

  async start(): Promise<void> {
    await Promise.all([...this.byNamespace.values()].map((informer) => informer.start()));
  }

  stop(): void {
    for (const informer of this.byNamespace.values()) informer.stop();
  }

  /** The earliest moment since which one of the informers has had no open watch. */
  notWatchingSince(): number | undefined {
    const since = [...this.byNamespace.values()].map((informer) => informer.notWatchingSince()).filter((at) => at !== undefined);
    return since.length === 0 ? undefined : Math.min(...since);
  }
}
