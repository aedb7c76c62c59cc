import type { KubernetesObject } from '@kubernetes/client-node';
import type { WatchedCache } from '../../src/controller/controller.js';
import type { InformerEvent, InformerHandler } from '../../src/controller/informer.js';
import { keyOf } from '../../src/controller/object-key.js';

const keyOfObject = (object: KubernetesObject): string => keyOf({ namespace: object.metadata?.namespace ?? '', name: object.metadata?.name ?? '' });

/** A cache the test fills and whose events it sends by hand. */
export class FakeCache<T extends KubernetesObject> implements WatchedCache<T> {
  private readonly handlers: Record<InformerEvent, InformerHandler<T>[]> = { add: [], update: [], delete: [] };
  private readonly objects = new Map<string, T>();
  since: number | undefined;
  starts = 0;
  stopped = false;

  constructor(readonly name: string) {}

  on(event: InformerEvent, handler: InformerHandler<T>): void {
    this.handlers[event].push(handler);
  }

  get(namespace: string, name: string): T | undefined {
    return this.objects.get(keyOf({ namespace, name }));
  }

  list(): T[] {
    return [...this.objects.values()];
  }

  start(): Promise<void> {
    this.starts++;
    return Promise.resolve();
  }

  stop(): void {
    this.stopped = true;
  }

  notWatchingSince(): number | undefined {
    return this.since;
  }

  add(object: T): void {
    this.objects.set(keyOfObject(object), object);
    for (const handler of this.handlers.add) handler(object);
  }

  update(object: T): void {
    const old = this.objects.get(keyOfObject(object));
    this.objects.set(keyOfObject(object), object);
    for (const handler of this.handlers.update) handler(object, old);
  }

  delete(object: T): void {
    this.objects.delete(keyOfObject(object));
    for (const handler of this.handlers.delete) handler(object, object);
  }
}
