// A list+watch cache that does not give up (client-node 1.4's makeInformer stops for good on
// the first error other than 410 and has no client-side timeout; see the team's notes):
//
//   list, page by page → fill the cache (diffed against the previous one, so a re-list emits
//   what changed while disconnected) → watch from the list's resourceVersion, with
//   timeoutSeconds and bookmarks → when the server ends the watch, watch again from the last
//   resourceVersion; on 410 Gone, re-list; on any other failure, back off and re-list; when a
//   watch stays silent past the watchdog, drop it and watch again from the last resourceVersion.
//
// Each object is slimmed (`transform`) as it arrives, and a list is read `pageSize` objects at
// a time, so memory holds the slim cache plus one page, never a whole list's JSON.
import { setTimeout as sleep } from 'node:timers/promises';
import type { KubernetesObject } from '@kubernetes/client-node';
import { pino, type Logger } from 'pino';
import { KubeApiError, type KubeClient } from '../kube/client.js';
import { backoffDelayMs, type BackoffPolicy } from '../runtime/backoff.js';
import { systemClock } from '../runtime/clock.js';

/** Why the informer restarted (not counted: watching again after the server ended a watch). */
export type InformerRestartReason = 'error' | 'gone' | 'silent';

/**
 * Options of an informer that lists and watches objects of type T and caches each as C,
 * the typed, slim form `transform` makes of it as it arrives (T itself when there is none).
 */
export interface ResilientInformerOptions<T extends KubernetesObject, C extends KubernetesObject = T> {
  /** For logs and metrics: the resource, e.g. `configmaps`. */
  name: string;
  client: KubeClient;
  /** The collection's URL path, e.g. `/api/v1/namespaces/ns1/configmaps`. */
  path: string;
  labelSelector?: string;
  /** The Accept header of lists and watches: METADATA_ONLY_LIST/METADATA_ONLY for metadata only. */
  accept?: { list: string; watch: string };
  /** Objects per list request: a page's JSON is all a list holds at once. Default 100. */
  pageSize?: number;
  /**
   * Which objects the cache holds, for a selection the apiserver cannot make (a name pattern):
   * the others are dropped as they arrive, never cached or handed out.
   */
  keep?: (object: T) => boolean;
  /** Makes the cached form of every object as it arrives, before it is cached or handed out. */
  transform?: (object: T) => C;
  /** Sent as the watch's timeoutSeconds: the server ends each watch cleanly after it. Default 300. */
  watchTimeoutSeconds?: number;
  /**
   * A watch that delivers nothing, not even a bookmark, for this long is presumed dead (a
   * connection that died silently) and replaced. The apiserver sends bookmarks about once a
   * minute to a watch that asks for them. Default 150 s.
   */
  silenceTimeoutMs?: number;
  /** Back-off between failed attempts. Default 1 s doubling to 30 s, ±20% jitter. */
  backoff?: BackoffPolicy;
  random?: () => number;
  /** Called on every restart (the watch restarts metric). */
  onRestart?: (reason: InformerRestartReason) => void;
  logger?: Logger;
}

export type InformerEvent = 'add' | 'update' | 'delete';
/** `old` is the cached object an update replaced, or the last cached state of a deleted one. */
export type InformerHandler<T> = (object: T, old?: T) => void;

/** How one watch ended, when it did not fail. */
type WatchEnd = 'closed' | 'gone' | 'silent' | 'stopped';

/** A watch ERROR event other than 410 Gone. */
export class WatchStatusError extends Error {
  override readonly name = 'WatchStatusError';

  constructor(
    readonly code: number | undefined,
    message: string,
  ) {
    super(message);
  }
}

interface Status {
  code?: number;
  message?: string;
}

function cacheKey(object: KubernetesObject): string {
  return `${object.metadata?.namespace ?? ''}/${object.metadata?.name ?? ''}`;
}

export class ResilientInformer<T extends KubernetesObject, C extends KubernetesObject = T> {
  private readonly options: ResilientInformerOptions<T, C>;
  private readonly logger: Logger;
  private readonly backoff: BackoffPolicy;
  private readonly random: () => number;
  private readonly handlers: Record<InformerEvent, InformerHandler<C>[]> = { add: [], update: [], delete: [] };
  private readonly cache = new Map<string, C>();
  /** Aborts the back-off sleep and the running watch on stop(). */
  private readonly stopController = new AbortController();

  private resourceVersion: string | undefined;
  private started = false;
  private synced = false;
  private restartCount = 0;
  /** Consecutive failures since the last watch the server accepted. */
  private failures = 0;
  private settleStart: { resolve: () => void; reject: (error: Error) => void } | undefined;
  /** Since when no watch has been open (the start, or when the last one ended); undefined while one is. */
  private notWatchingSinceMs: number | undefined = systemClock.now();

  constructor(options: ResilientInformerOptions<T, C>) {
    this.options = options;
    this.logger = (options.logger ?? pino({ level: 'silent' })).child({ informer: options.name });
    this.backoff = options.backoff ?? { baseMs: 1_000, maxMs: 30_000 };
    this.random = options.random ?? Math.random;
  }

  on(event: InformerEvent, handler: InformerHandler<C>): void {
    this.handlers[event].push(handler);
  }

  /**
   * Starts listing and watching; resolves once the first list is in the cache. A failing
   * first list is retried like any other failure, so this waits as long as that takes;
   * it rejects only if stop() comes first.
   */
  start(): Promise<void> {
    if (this.started) throw new Error(`informer ${this.options.name} was already started`);
    this.started = true;
    return new Promise<void>((resolve, reject) => {
      this.settleStart = { resolve, reject };
      void this.run();
    });
  }

  hasSynced(): boolean {
    return this.synced;
  }

  /**
   * Since when (ms since the epoch) this informer has had no open watch, or undefined while it
   * has one. Between two watches this is set for a moment; a long gap means the apiserver is
   * unreachable, refuses the watch, or the list hangs: the cache is going stale.
   */
  notWatchingSince(): number | undefined {
    return this.notWatchingSinceMs;
  }

  /** Restarts so far (errors, 410 Gone, silent watches). */
  get restarts(): number {
    return this.restartCount;
  }

  /** The cached object; cluster-scoped objects have namespace ''. */
  get(namespace: string, name: string): C | undefined {
    return this.cache.get(`${namespace}/${name}`);
  }

  list(): C[] {
    return [...this.cache.values()];
  }

  /** Stops for good: no restart follows, no handler is called afterwards. */
  stop(): void {
    if (this.stopController.signal.aborted) return;
    this.stopController.abort();
    this.settleStart?.reject(new Error(`informer ${this.options.name} was stopped before it synced`));
    this.settleStart = undefined;
  }

  private get stopped(): boolean {
    return this.stopController.signal.aborted;
  }

  private async run(): Promise<void> {
    let mustList = true;
    while (!this.stopped) {
      try {
        if (mustList) {
          await this.relist();
          mustList = false;
        }
        const end = await this.watchOnce();
        this.logger.debug({ end, resourceVersion: this.resourceVersion }, 'watch ended');
        if (end === 'gone' || end === 'silent') this.restarted(end);
        // Gone: the resourceVersion is too old to watch from; the cache must be rebuilt.
        // Silent: watching again from the last resourceVersion is enough (or ends in Gone).
        mustList = end === 'gone';
      } catch (error) {
        if (this.stopped) return;
        this.failures++;
        const delayMs = backoffDelayMs(this.failures, this.backoff, this.random);
        const hint = failureHint(error, this.options.name, this.options.path);
        this.logger.warn({ err: error, ...(hint === undefined ? {} : { hint }), failures: this.failures, retryInMs: delayMs }, 'list or watch failed; re-listing after back-off');
        this.restarted('error');
        mustList = true;
        await sleep(delayMs, undefined, { signal: this.stopController.signal }).catch(() => undefined);
      }
    }
  }

  private restarted(reason: InformerRestartReason): void {
    this.restartCount++;
    this.options.onRestart?.(reason);
  }

  /** Lists, replaces the cache and emits the difference to the previous cache. */
  private async relist(): Promise<void> {
    const { client, path, labelSelector, accept, pageSize = 100, keep } = this.options;
    const fresh = new Map<string, C>();
    const resourceVersion = await client.list<T>(path, { labelSelector }, pageSize, (item) => {
      if (keep?.(item) === false) return;
      const object = this.transform(item);
      fresh.set(cacheKey(object), object);
    }, { ...(accept === undefined ? {} : { accept: accept.list }), signal: this.stopController.signal });
    if (this.stopped) return;
    const previous = new Map(this.cache);
    this.cache.clear();
    for (const [key, object] of fresh) this.cache.set(key, object);
    this.resourceVersion = resourceVersion;

    for (const [key, old] of previous) {
      if (!fresh.has(key)) this.emit('delete', old, old);
    }
    for (const [key, object] of fresh) {
      const old = previous.get(key);
      if (!old) this.emit('add', object);
      else if (old.metadata?.resourceVersion !== object.metadata?.resourceVersion) this.emit('update', object, old);
    }
    this.logger.debug({ objects: fresh.size, resourceVersion }, 'listed');
    if (!this.synced) {
      this.synced = true;
      this.settleStart?.resolve();
      this.settleStart = undefined;
    }
  }

  /** Runs one watch from the last resourceVersion; rejects on failure. */
  private watchOnce(): Promise<WatchEnd> {
    const { client, path, labelSelector, accept, watchTimeoutSeconds = 300, silenceTimeoutMs = 150_000 } = this.options;
    const stopSignal = this.stopController.signal;
    return new Promise<WatchEnd>((resolve, reject) => {
      let settled = false;
      const connection = new AbortController();
      let cancelWatchdog = () => {};
      const settle = (finish: () => void) => {
        if (settled) return;
        settled = true;
        this.notWatchingSinceMs ??= systemClock.now();
        cancelWatchdog();
        stopSignal.removeEventListener('abort', onStop);
        connection.abort();
        finish();
      };
      const armWatchdog = () => {
        cancelWatchdog();
        cancelWatchdog = systemClock.schedule(() => {
          this.logger.warn({ silenceTimeoutMs }, 'watch silent for too long; replacing it');
          settle(() => resolve('silent'));
        }, silenceTimeoutMs);
      };
      const onStop = () => settle(() => resolve('stopped'));
      if (stopSignal.aborted) return resolve('stopped');
      stopSignal.addEventListener('abort', onStop);
      armWatchdog();

      this.logger.debug({ resourceVersion: this.resourceVersion }, 'watching');
      const query = { resourceVersion: this.resourceVersion, allowWatchBookmarks: true, timeoutSeconds: watchTimeoutSeconds, labelSelector };
      client
        .watch(
          path,
          query,
          {
            onOpen: () => {
              // The server accepted the watch: the trouble, if there was any, is over.
              this.failures = 0;
              this.notWatchingSinceMs = undefined;
            },
            onEvent: ({ type, object }) => {
              if (settled) return;
              armWatchdog();
              if (type === 'ERROR') {
                const status = object as Status;
                if (status.code === 410) settle(() => resolve('gone'));
                else settle(() => reject(new WatchStatusError(status.code, `watch error: ${status.message ?? JSON.stringify(status)}`)));
                return;
              }
              this.apply(type, object as T);
            },
          },
          { ...(accept === undefined ? {} : { accept: accept.watch }), signal: connection.signal },
        )
        .then(
          () => settle(() => resolve('closed')),
          (error: unknown) => {
            if (error instanceof KubeApiError && error.code === 410) return settle(() => resolve('gone'));
            settle(() => reject(error instanceof Error ? error : new Error(String(error))));
          },
        );
    });
  }

  /** Applies one watch event to the cache and emits it. */
  private apply(phase: string, raw: T): void {
    const resourceVersion = raw.metadata?.resourceVersion;
    if (phase === 'BOOKMARK') {
      if (resourceVersion) this.resourceVersion = resourceVersion;
      return;
    }
    // One the cache does not keep is dropped; were it held before, it leaves as if deleted.
    const kept = this.options.keep?.(raw) ?? true;
    if (!kept && !this.cache.has(cacheKey(raw))) {
      if (resourceVersion) this.resourceVersion = resourceVersion;
      return;
    }
    const object = this.transform(raw);
    const key = cacheKey(object);
    const old = this.cache.get(key);
    switch (kept ? phase : 'DELETED') {
      case 'ADDED':
      case 'MODIFIED':
        this.cache.set(key, object);
        if (old) this.emit('update', object, old);
        else this.emit('add', object);
        break;
      case 'DELETED':
        this.cache.delete(key);
        this.emit('delete', object, old);
        break;
      default:
        this.logger.warn({ phase }, 'unknown watch event type');
        return;
    }
    if (resourceVersion) this.resourceVersion = resourceVersion;
  }

  private transform(object: T): C {
    // Without a transform, C is T (the type parameter's default).
    return this.options.transform ? this.options.transform(object) : (object as unknown as C);
  }

  private emit(event: InformerEvent, object: C, old?: C): void {
    for (const handler of this.handlers[event]) {
      // A failing handler must not cost the others their event, nor the informer its watch.
      try {
        handler(object, old);
      } catch (error) {
        this.logger.error({ err: error, event, object: cacheKey(object) }, 'informer handler threw');
      }
    }
  }
}

/** What a person should check when listing or watching fails for good reasons, not by chance. */
export function failureHint(error: unknown, resource: string, path: string): string | undefined {
  const code = (error as { code?: unknown; statusCode?: unknown }).code ?? (error as { statusCode?: unknown }).statusCode;
  switch (code) {
    case 401:
      return 'unauthorized: check the kubeconfig or the service-account token';
    case 403:
      return `forbidden: the operator's identity may not list/watch ${resource}; apply the rules in deploy/rbac`;
    case 404:
      return `${path} is not served: is the CustomResourceDefinition installed? (kubectl apply --server-side -f crds/)`;
    default:
      return undefined;
  }
}
