import { afterEach, describe, expect, it } from '@jest/globals';
import type { KubernetesObject } from '@kubernetes/client-node';
import { pino } from 'pino';
import { Controller, controllerOwner, healthProblems, type RunOptions } from '../../../src/controller/controller.js';
import type { ObjectKey } from '../../../src/controller/object-key.js';
import type { ReconcileResult } from '../../../src/controller/queue.js';
import { ReferenceIndex } from '../../../src/controller/reference-index.js';
import { FakeCache } from '../../support/fake-cache.js';
import { ManualClock } from '../../support/manual-clock.js';
import { waitFor } from '../../../tools/harness/wait-for.js';


interface Primary extends KubernetesObject {
  spec: { secret: string };
}

const primary = (name: string, generation = 1, secret = 'key', annotations: Record<string, string> = {}): Primary => ({
  kind: 'Thing',
  metadata: { namespace: 'ns', name, generation, annotations },
  spec: { secret },
});
const child = (name: string, owner: string, kind = 'Thing', drifted = false): KubernetesObject & { drifted: boolean } => ({
  metadata: { namespace: 'ns', name, ownerReferences: [{ apiVersion: 'v1', kind, name: owner, uid: `uid-${owner}`, controller: true }] },
  drifted,
});
const secret = (name: string, namespace = 'ns'): KubernetesObject => ({ metadata: { namespace, name } });

/** One reconcile the test settles by hand. */
interface Run {
  key: string;
  signal: AbortSignal;
  finish(result?: ReconcileResult): void;
}

let controllers: Controller<Primary>[] = [];
afterEach(async () => {
  await Promise.all(controllers.map((controller) => controller.stop(0)));
  controllers = [];
});

function setUp(options: RunOptions<Primary> & { childVerdict?: (object: KubernetesObject & { drifted: boolean }) => boolean | Promise<boolean> } = {}) {
  const clock = new ManualClock();
  const primaries = new FakeCache<Primary>('things');
  const children = new FakeCache<KubernetesObject & { drifted: boolean }>('children');
  const secrets = new FakeCache<KubernetesObject>('secrets');
  const controller = new Controller<Primary>(primaries, {
    kind: 'Thing',
    // Like the HpcCluster predicate: a new generation or a new request annotation.
    predicate: (object, old) =>
      old === undefined || object.metadata?.generation !== old.metadata?.generation || object.metadata?.annotations?.['req'] !== old.metadata?.annotations?.['req'],
    concurrency: 4,
    logger: pino({ level: 'silent' }),
    unwatchedLimitMs: 60_000,
    clock,
  })
    .owns(children, options.childVerdict ?? ((object) => object.drifted))
    .watches(secrets, (object): ObjectKey[] => [{ namespace: object.metadata?.namespace ?? '', name: object.spec.secret }]);
  controllers.push(controller);
  const runs: Run[] = [];
  const reconcile = (key: ObjectKey, signal: AbortSignal): Promise<ReconcileResult> =>
    new Promise((resolve) => runs.push({ key: `${key.namespace}/${key.name}`, signal, finish: (result = { outcome: 'success' }) => resolve(result) }));
  const start = () => controller.start(reconcile, options);
  const keys = () => runs.map((run) => run.key);
  const finishAll = async () => {
    for (const run of runs) run.finish();
    // Let the queue take in the results.
    await new Promise((resolve) => setImmediate(resolve));
  };
  return { clock, primaries, children, secrets, controller, runs, keys, start, finishAll };
}

describe('Controller', () => {
  it('ignores events until it leads, then reconciles every primary after its start-up delay', async () => {
    const { clock, primaries, keys, start, controller } = setUp({ startupDelayMs: (object) => (object.metadata?.name === 'later' ? 5_000 : 0) });
    primaries.add(primary('now'));
    primaries.add(primary('later'));
    primaries.update(primary('now', 2));
    expect(controller.isReady()).toBe(false);
    await start();
    expect(controller.isReady()).toBe(true);
    expect(keys()).toEqual(['ns/now']);
    clock.advance(5_000);
    expect(keys()).toEqual(['ns/now', 'ns/later']);
  });

  it('reconciles a primary on add, on updates its predicate passes, and on delete; not on a status write', async () => {
    const { primaries, keys, start, finishAll } = setUp();
    await start();
    primaries.add(primary('a'));
    await finishAll();
    primaries.update({ ...primary('a'), status: { seen: true } } as Primary);
    await finishAll();
    expect(keys()).toEqual(['ns/a']);
    primaries.update(primary('a', 1, 'key', { req: '1' }));
    await finishAll();
    primaries.delete(primary('a'));
    await waitFor(() => keys().length === 3, { timeoutMs: 2_000, intervalMs: 2 });
    expect(keys()).toEqual(['ns/a', 'ns/a', 'ns/a']);
  });

  it('starts a cache both owned and watched once, and weighs its events both ways', async () => {
    const primaries = new FakeCache<Primary>('things');
    const children = new FakeCache<KubernetesObject>('children');
    // A primary refers to a child by name (as an HpcCluster in ConfigMapConflict to the name it waits for).
    const controller = new Controller<Primary>(primaries, { kind: 'Thing', concurrency: 1, logger: pino({ level: 'silent' }), unwatchedLimitMs: 60_000 })
      .owns(children, () => false)
      .watches(children, (object): ObjectKey[] => [{ namespace: 'ns', name: `${object.metadata?.name ?? ''}-awaited` }]);
    controllers.push(controller);
    const keys: string[] = [];
    await controller.start((key) => {
      keys.push(key.name);
      return Promise.resolve({ outcome: 'success' });
    });
    expect(children.starts).toBe(1);
    primaries.add(primary('a'));
    await waitFor(() => keys.length === 1, { timeoutMs: 2_000, intervalMs: 2 });
    children.delete({ metadata: { namespace: 'ns', name: 'a-awaited' } });
    children.delete(child('b-cm', 'b'));
    await waitFor(() => keys.length === 3, { timeoutMs: 2_000, intervalMs: 2 });
    expect(keys.sort()).toEqual(['a', 'a', 'b']);
    await controller.stop(0);
    expect(children.stopped).toBe(true);
  });

  it('reconciles the controlling primary of an owned child on delete, or when the child predicate passes', async () => {
    const { children, keys, start, finishAll } = setUp();
    await start();
    children.add(child('a-cm', 'a'));
    children.update(child('a-cm', 'a'));
    children.update(child('b-cm', 'b', 'Other', true));
    expect(keys()).toEqual([]);
    children.update(child('a-cm', 'a', 'Thing', true));
    await finishAll();
    children.delete(child('c-cm', 'c'));
    expect(keys()).toEqual(['ns/a', 'ns/c']);
  });

  it('reconciles the owner of a child whose predicate answers later, when it says yes or cannot say', async () => {
    const verdicts = new Map<string, { resolve: (yes: boolean) => void; reject: (error: Error) => void }>();
    const { children, keys, start } = setUp({
      childVerdict: (object) => new Promise((resolve, reject) => verdicts.set(object.metadata?.name ?? '', { resolve, reject })),
    });
    children.add(child('before-cm', 'before'));
    expect(verdicts.size).toBe(0);
    await start();
    for (const owner of ['a', 'b', 'c']) children.update(child(`${owner}-cm`, owner));
    expect(keys()).toEqual([]);
    verdicts.get('a-cm')?.resolve(false);
    verdicts.get('b-cm')?.resolve(true);
    verdicts.get('c-cm')?.reject(new Error('the read failed'));
    await waitFor(() => keys().length === 2, { timeoutMs: 2_000, intervalMs: 2 });
    expect(keys().sort()).toEqual(['ns/b', 'ns/c']);
  });

  it('prepares the start-up schedule before it queues what it found, and queues everything at once when that fails', async () => {
    let prepared = false;
    const ok = setUp({ prepareStartup: () => Promise.resolve().then(() => void (prepared = true)), startupDelayMs: () => (prepared ? 0 : 60_000) });
    ok.primaries.add(primary('a'));
    await ok.start();
    await waitFor(() => ok.keys().length === 1, { timeoutMs: 2_000, intervalMs: 2 });
    const failing = setUp({ prepareStartup: () => Promise.reject(new Error('no reads')), startupDelayMs: () => 60_000 });
    failing.primaries.add(primary('b'));
    await failing.start();
    await waitFor(() => failing.keys().length === 1, { timeoutMs: 2_000, intervalMs: 2 });
  });

  it('maps a watched object to the primaries that refer to it now, through the index kept from their events', async () => {
    const { primaries, secrets, keys, start, finishAll } = setUp();
    primaries.add(primary('a', 1, 'shared'));
    primaries.add(primary('b', 1, 'shared'));
    primaries.add(primary('c', 1, 'own'));
    await start();
    await finishAll();
    const before = keys().length;
    secrets.update(secret('shared'));
    secrets.update(secret('shared', 'elsewhere'));
    expect(keys().slice(before).sort()).toEqual(['ns/a', 'ns/b']);
    await finishAll();
    // b now refers to another Secret; c is gone.
    primaries.update(primary('b', 2, 'own'));
    primaries.delete(primary('c', 1, 'own'));
    await finishAll();
    const afterChanges = keys().length;
    secrets.delete(secret('shared'));
    secrets.add(secret('own'));
    await finishAll();
    expect(keys().slice(afterChanges).sort()).toEqual(['ns/a', 'ns/b']);
  });

  it('aborts the running reconcile of a deleted primary, or one whose spec changed, and runs it again', async () => {
    const { primaries, runs, keys, start } = setUp();
    await start();
    primaries.add(primary('a'));
    primaries.add(primary('b'));
    expect(keys()).toEqual(['ns/a', 'ns/b']);
    primaries.update(primary('a', 1, 'key', { req: '1' }));
    expect(runs[0]?.signal.aborted).toBe(false);
    primaries.update(primary('a', 2));
    primaries.delete(primary('b'));
    expect(runs[0]?.signal.aborted).toBe(true);
    expect(runs[1]?.signal.aborted).toBe(true);
    expect(String((runs[1]?.signal.reason as Error).message)).toContain('deleted');
    runs[0]?.finish();
    runs[1]?.finish();
    await waitFor(() => runs.length === 4, { timeoutMs: 2_000, intervalMs: 2, description: 'the re-runs' });
    expect(keys().slice(2).sort()).toEqual(['ns/a', 'ns/b']);
    expect(runs.slice(2).every((run) => !run.signal.aborted)).toBe(true);
  });

  it('reports a cache with no open watch past the limit as unhealthy, and a stopped queue', async () => {
    const { clock, secrets, controller, start } = setUp();
    await start();
    expect(controller.healthProblems()).toEqual([]);
    secrets.since = clock.now();
    clock.advance(60_000);
    expect(controller.healthProblems()).toEqual([]);
    clock.advance(1_000);
    expect(controller.healthProblems()).toEqual(['secrets: no open watch for 61 s (limit 60 s)']);
    secrets.since = undefined;
    expect(controller.healthProblems()).toEqual([]);
    await controller.stop(0);
    expect(controller.healthProblems()).toEqual(['the work queue is stopped']);
    expect(secrets.stopped).toBe(true);
    expect(await controller.done).toBe(0);
  });
});

describe('healthProblems', () => {
  it('names each stale cache, and a lost lease before a stopped queue', () => {
    const caches = [
      { name: 'configmaps', notWatchingSince: 0 },
      { name: 'secrets', notWatchingSince: undefined },
      { name: 'things', notWatchingSince: 100_000 },
    ];
    expect(healthProblems({ caches, leaseLost: true, queueStopped: true }, 130_000, 60_000)).toEqual([
      'configmaps: no open watch for 130 s (limit 60 s)',
      'lost the leader lease: no longer reconciling',
    ]);
    expect(healthProblems({ caches: [], leaseLost: false, queueStopped: false }, 0, 60_000)).toEqual([]);
  });
});

describe('controllerOwner', () => {
  it('is the controller reference of the given kind, in the child\'s namespace', () => {
    expect(controllerOwner(child('x', 'a'), 'Thing')).toEqual({ namespace: 'ns', name: 'a' });
    expect(controllerOwner(child('x', 'a', 'Other'), 'Thing')).toBeUndefined();
    expect(controllerOwner({ metadata: { namespace: 'ns', name: 'x', ownerReferences: [{ apiVersion: 'v1', kind: 'Thing', name: 'a', uid: 'u' }] } }, 'Thing')).toBeUndefined();
  });
});

describe('ReferenceIndex', () => {
  it('finds the referrers of a key, follows changed references and forgets deleted referrers', () => {
    const index = new ReferenceIndex();
    index.set('ns/a', ['ns/s1']);
    index.set('ns/b', ['ns/s1', 'ns/s2']);
    expect(index.referring('ns/s1').sort()).toEqual(['ns/a', 'ns/b']);
    index.set('ns/a', ['ns/s2']);
    expect(index.referring('ns/s1')).toEqual(['ns/b']);
    expect(index.referring('ns/s2').sort()).toEqual(['ns/a', 'ns/b']);
    index.delete('ns/b');
    expect(index.referring('ns/s1')).toEqual([]);
    expect(index.referring('ns/s2')).toEqual(['ns/a']);
    index.set('ns/a', []);
    expect(index.referring('ns/s2')).toEqual([]);
  });
});
