// A small declarative controller, wired as kube-rs's
// `Controller::new(primary).owns(children).watches(other, mapper).run(reconcile)` and
// controller-runtime's builder (For, Owns, Watches): watched caches map their events to the
// keys of primary objects, a work queue runs the reconciler on those keys, and leader
// election decides whether this replica reconciles at all. It knows nothing of any one
// resource: the product file says which caches, predicates and references.
import type { KubernetesObject } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { systemClock, type Clock } from '../runtime/clock.js';
import { messageOf } from '../runtime/error-message.js';
import type { InformerEvent, InformerHandler } from './informer.js';
import type { LeaderElector } from './leader.js';
import { keyOf, objectKey, parseKey, type ObjectKey } from './object-key.js';
import { WorkQueue, type ReconcileReport, type ReconcileResult } from './queue.js';
import { ReferenceIndex } from './reference-index.js';

/** A cache kept by list+watch that tells of changes (ScopedInformers in production). */
export interface WatchedCache<T extends KubernetesObject> {
  /** For health messages: the resource, e.g. `configmaps`. */
  readonly name: string;
  on(event: InformerEvent, handler: InformerHandler<T>): void;
  list(): T[];
  /** Resolves once the cache holds a first full list. */
  start(): Promise<void>;
  stop(): void;
  /** Since when (ms since the epoch) part of the cache has had no open watch; undefined while all do. */
  notWatchingSince(): number | undefined;
}

/** Whether an added (`old` undefined) or updated object calls for a reconcile. Deletions always do. */
export type Predicate<T> = (object: T, old: T | undefined) => boolean;

/** A child's predicate may need to look further (read the child whole) before it can say. */
export type ChildPredicate<T> = (object: T, old: T | undefined) => boolean | Promise<boolean>;

/** Reconciles one primary object; `signal` aborts when its object is deleted or respecified, or on shutdown. */
export type KeyReconciler = (key: ObjectKey, signal: AbortSignal) => Promise<ReconcileResult>;

export interface ControllerOptions<P> {
  /** The primary resource's kind: a child belongs to the primary its controller ownerReference of this kind names. */
  kind: string;
  /** Which adds and updates of a primary call for a reconcile. Default: all. */
  predicate?: Predicate<P>;
  /** Reconciles that may run at once. */
  concurrency: number;
  logger: Logger;
  /** Replicas compete for its lease and only the leader reconciles. Omitted: this replica always leads. */
  elector?: LeaderElector;
  /** /healthz fails once a cache has had no open watch for longer than this. */
  unwatchedLimitMs: number;
  onLeadingChange?: (leading: boolean) => void;
  onDepthChange?: (depth: number) => void;
  onReconciled?: (report: ReconcileReport) => void;
  clock?: Clock;
}

export interface RunOptions<P> {
  /** How long to wait before reconciling a primary found when this replica starts leading. Default: none. */
  startupDelayMs?: (primary: P) => number;
  /**
   * Runs each time this replica starts leading, before the primaries found are queued: what
   * startupDelayMs needs to know that the caches do not hold. A failure queues them at once.
   */
  prepareStartup?: () => Promise<void>;
}

/** What /healthz checks, taken at one moment. */
export interface HealthState {
  caches: { name: string; notWatchingSince: number | undefined }[];
  leaseLost: boolean;
  queueStopped: boolean;
}

/** Why the controller is unhealthy, one line per reason; empty when healthy. */
export function healthProblems(state: HealthState, now: number, unwatchedLimitMs: number): string[] {
  const problems: string[] = [];
  for (const { name, notWatchingSince } of state.caches) {
    if (notWatchingSince !== undefined && now - notWatchingSince > unwatchedLimitMs) {
      problems.push(`${name}: no open watch for ${String(Math.round((now - notWatchingSince) / 1000))} s (limit ${String(unwatchedLimitMs / 1000)} s)`);
    }
  }
  if (state.leaseLost) problems.push('lost the leader lease: no longer reconciling');
  else if (state.queueStopped) problems.push('the work queue is stopped');
  return problems;
}

/** The primary that controls `child`: its controller ownerReference of `kind`, in its namespace. */
export function controllerOwner(child: KubernetesObject, kind: string): ObjectKey | undefined {
  const owner = child.metadata?.ownerReferences?.find((ref) => ref.controller === true && ref.kind === kind);
  const namespace = child.metadata?.namespace;
  return owner === undefined || namespace === undefined ? undefined : { namespace, name: owner.name };
}

export class Controller<P extends KubernetesObject> {
  private readonly queue: WorkQueue;
  private readonly caches: WatchedCache<KubernetesObject>[];
  private readonly clock: Clock;
  private synced = false;
  private leading = false;
  private leaseLost = false;
  private stopping: Promise<void> | undefined;
  private resolveDone!: (exitCode: number) => void;
  /** Settles with the process exit code: 0 after stop(), 1 when the lease was lost. */
  readonly done = new Promise<number>((resolve) => (this.resolveDone = resolve));

  constructor(
    private readonly primary: WatchedCache<P>,
    private readonly options: ControllerOptions<P>,
  ) {
    this.clock = options.clock ?? systemClock;
    this.caches = [primary];
    this.queue = new WorkQueue({
      concurrency: options.concurrency,
      logger: options.logger,
      clock: this.clock,
      ...(options.onDepthChange === undefined ? {} : { onDepthChange: options.onDepthChange }),
      ...(options.onReconciled === undefined ? {} : { onReconciled: options.onReconciled }),
    });
    const predicate = options.predicate ?? (() => true);
    primary.on('add', (object) => {
      if (predicate(object, undefined)) this.enqueue(objectKey(object));
    });
    primary.on('update', (object, old) => {
      const key = objectKey(object);
      if (key === undefined) return;
      // A running reconcile of the previous spec works for nothing: cut it short.
      if (old !== undefined && object.metadata?.generation !== old.metadata?.generation) this.abortInFlight(key, 'its spec changed');
      if (predicate(object, old)) this.enqueue(key);
    });
    primary.on('delete', (object) => {
      const key = objectKey(object);
      if (key === undefined) return;
      this.abortInFlight(key, 'it was deleted');
      this.enqueue(key);
    });
  }

  /** Reconciles a child's controlling primary when the child is deleted, or added or updated as `predicate` says. */
  owns<C extends KubernetesObject>(children: WatchedCache<C>, predicate: ChildPredicate<C> = () => true): this {
    this.cache(children);
    const ownerOf = (child: C) => controllerOwner(child, this.options.kind);
    const weigh = (child: C, old: C | undefined): void => {
      // Before this replica leads, start-up queues every primary anyway.
      if (!this.leading) return;
      const verdict = predicate(child, old);
      if (verdict === true) this.enqueue(ownerOf(child));
      else if (verdict !== false) {
        // A predicate that could not say (its read failed) errs towards a reconcile.
        verdict.then(
          (yes) => yes && this.enqueue(ownerOf(child)),
          (error: unknown) => {
            this.options.logger.warn({ error: messageOf(error), cache: children.name }, 'could not weigh a watch event: reconciling its owner');
            this.enqueue(ownerOf(child));
          },
        );
      }
    };
    children.on('add', (child) => weigh(child, undefined));
    children.on('update', (child, old) => weigh(child, old));
    children.on('delete', (child) => this.enqueue(ownerOf(child)));
    return this;
  }

  /**
   * Reconciles the primaries that refer to a watched object whenever it changes.
   * `referencesOf` names what a primary refers to (in its own namespace or another); an
   * index of it is kept from the primaries' events, so an event looks up its primaries.
   */
  watches<W extends KubernetesObject>(watched: WatchedCache<W>, referencesOf: (primary: P) => ObjectKey[]): this {
    this.cache(watched);
    const index = new ReferenceIndex();
    const record = (primary: P): void => {
      const key = objectKey(primary);
      if (key !== undefined) index.set(keyOf(key), referencesOf(primary).map(keyOf));
    };
    this.primary.on('add', record);
    this.primary.on('update', record);
    this.primary.on('delete', (primary) => {
      const key = objectKey(primary);
      if (key !== undefined) index.delete(keyOf(key));
    });
    const onWatched = (object: W): void => {
      const key = objectKey(object);
      if (key === undefined) return;
      for (const referrer of index.referring(keyOf(key))) this.enqueue(parseKey(referrer));
    };
    for (const event of ['add', 'update', 'delete'] as const) watched.on(event, onWatched);
    return this;
  }

  /** A cache to start, stop and watch over: once, though both owned and watched. */
  private cache(cache: WatchedCache<KubernetesObject>): void {
    if (!this.caches.includes(cache)) this.caches.push(cache);
  }

  /**
   * Fills the caches, then runs `reconcile` on every primary (after `startupDelayMs`) and on
   * what their events call for, once and as long as this replica leads. Resolves once the
   * caches are synced.
   */
  async start(reconcile: KeyReconciler, run: RunOptions<P> = {}): Promise<void> {
    await Promise.all(this.caches.map((cache) => cache.start()));
    this.synced = true;
    const lead = () => this.startLeading(reconcile, run);
    const elector = this.options.elector;
    if (elector === undefined) {
      lead();
      return;
    }
    elector.run({
      onStartedLeading: lead,
      onStoppedLeading: () => {
        if (this.stopping !== undefined) return;
        this.options.logger.error('leadership lost: stopping at once so that only the new leader writes');
        this.leaseLost = true;
        this.leading = false;
        this.options.onLeadingChange?.(false);
        void this.shutdown(0).then(() => this.resolveDone(1));
      },
    });
  }

  /** Stops taking work, waits up to `drainTimeoutMs` for running reconciles, releases the lease, stops the caches. */
  async stop(drainTimeoutMs: number): Promise<void> {
    await this.shutdown(drainTimeoutMs);
    this.resolveDone(0);
  }

  /** Ready once the caches hold a first full list. */
  isReady(): boolean {
    return this.synced;
  }

  /** Why the controller is unhealthy (stale caches, a lost lease, a stopped queue); empty when healthy. */
  healthProblems(): string[] {
    const state: HealthState = {
      caches: this.caches.map((cache) => ({ name: cache.name, notWatchingSince: cache.notWatchingSince() })),
      leaseLost: this.leaseLost,
      queueStopped: this.stopping !== undefined,
    };
    return healthProblems(state, this.clock.now(), this.options.unwatchedLimitMs);
  }

  private startLeading(reconcile: KeyReconciler, { startupDelayMs = () => 0, prepareStartup }: RunOptions<P>): void {
    if (this.stopping !== undefined) return;
    this.leading = true;
    this.options.onLeadingChange?.(true);
    this.options.logger.info('leading: reconciling');
    this.queue.start((key, signal) => reconcile(parseKey(key), signal));
    const queueFound = (delayMs: (primary: P) => number): void => {
      if (!this.leading) return;
      for (const object of this.primary.list()) {
        const key = objectKey(object);
        if (key !== undefined) this.queue.addAfter(keyOf(key), delayMs(object));
      }
    };
    if (prepareStartup === undefined) {
      queueFound(startupDelayMs);
      return;
    }
    prepareStartup().then(
      () => queueFound(startupDelayMs),
      (error: unknown) => {
        this.options.logger.warn({ error: messageOf(error) }, 'could not prepare the start-up schedule: reconciling everything now');
        queueFound(() => 0);
      },
    );
  }

  /** Events count only while this replica leads, which is after the caches synced: start-up enqueues the rest. */
  private enqueue(key: ObjectKey | undefined): void {
    if (key !== undefined && this.leading) this.queue.add(keyOf(key));
  }

  private abortInFlight(key: ObjectKey, why: string): void {
    this.queue.abort(keyOf(key), new Error(`${keyOf(key)} is reconciled again: ${why}`));
  }

  private shutdown(drainTimeoutMs: number): Promise<void> {
    this.stopping ??= (async () => {
      this.leading = false;
      await this.queue.shutdown(drainTimeoutMs);
      await this.options.elector?.stop();
      for (const cache of this.caches) cache.stop();
    })();
    return this.stopping;
  }
}
