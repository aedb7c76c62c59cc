// ResilientInformer against a real kube-apiserver: the shared control plane for most cases,
// a TCP proxy to cut one informer off, and a control plane of this file's own for the
// kube-apiserver restart and the etcd compaction (done to the shared one, they would disturb
// the other test files).
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { CoreV1Api, type CoreV1Event, type KubeConfig, type V1ConfigMap } from '@kubernetes/client-node';
import { pino } from 'pino';
import {
  ResilientInformer,
  type InformerRestartReason,
  type ResilientInformerOptions,
} from '../../src/controller/informer.js';
import { compactEtcd } from '../support/etcd.js';
import { KubeClient, type Query } from '../../src/kube/client.js';
import { createTestNamespace, deleteTestNamespace, kubeClientOf, testKubeConfig } from '../../tools/harness/cluster.js';
import { kubeAccessFromKubeConfig } from '../../src/kube/access.js';
import { useOwnControlPlane } from '../support/own-control-plane.js';
import { apiServerAddress, TcpProxy } from '../support/tcp-proxy.js';
import { waitFor } from '../../tools/harness/wait-for.js';

interface RecordedEvent {
  type: 'add' | 'update' | 'delete';
  name: string;
  oldResourceVersion?: string;
}

const fastBackoff = { baseMs: 50, maxMs: 500 };
const waitOptions = { timeoutMs: 30_000, intervalMs: 50 };

let informers: { stop(): void }[] = [];

afterEach(() => {
  for (const informer of informers) informer.stop();
  informers = [];
});

/** An informer on the ConfigMaps of `namespace`, with every event and restart recorded. */
function configMapInformer(
  kubeConfig: KubeConfig,
  namespace: string,
  overrides: Partial<ResilientInformerOptions<V1ConfigMap>> = {},
) {
  const events: RecordedEvent[] = [];
  const restarts: InformerRestartReason[] = [];
  const informer = new ResilientInformer<V1ConfigMap>({
    name: 'configmaps',
    client: kubeClientOf(kubeConfig),
    path: `/api/v1/namespaces/${namespace}/configmaps`,
    backoff: fastBackoff,
    onRestart: (reason) => restarts.push(reason),
    ...overrides,
  });
  informers.push(informer);
  for (const type of ['add', 'update', 'delete'] as const) {
    informer.on(type, (object, old) =>
      events.push({
        type,
        name: object.metadata?.name ?? '',
        ...(old?.metadata?.resourceVersion === undefined ? {} : { oldResourceVersion: old.metadata.resourceVersion }),
      }),
    );
  }
  const seen = (type: RecordedEvent['type'], name: string) =>
    waitFor(() => events.some((event) => event.type === type && event.name === name), {
      ...waitOptions,
      description: `${type} event for ${name}`,
    });
  return { informer, events, restarts, seen };
}

/** A pino logger whose records the test can read. */
function capturedLogger() {
  const records: { msg?: string; end?: string }[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => records.push(JSON.parse(line) as { msg?: string }) });
  return { logger, records };
}

/** An API client whose lists go through `list` first (to fail, delay or falsify them). */
function clientWithList(kubeConfig: KubeConfig, list: (real: () => Promise<string>) => Promise<string>): KubeClient {
  return new (class extends KubeClient {
    override list<T>(path: string, query: Query, pageSize: number, onItem: (item: T) => void, options?: Parameters<KubeClient['list']>[4]): Promise<string> {
      return list(() => super.list(path, query, pageSize, onItem, options));
    }
  })(kubeAccessFromKubeConfig(kubeConfig));
}

function configMap(name: string, labels?: Record<string, string>, data: Record<string, string> = { k: 'v' }): V1ConfigMap {
  return { metadata: { name, ...(labels ? { labels } : {}) }, data };
}

describe('ResilientInformer on the shared control plane', () => {
  let kubeConfig: KubeConfig;
  let core: CoreV1Api;
  const namespaces: string[] = [];

  beforeAll(() => {
    kubeConfig = testKubeConfig();
    core = kubeConfig.makeApiClient(CoreV1Api);
  });

  afterAll(async () => {
    await Promise.all(namespaces.map((namespace) => deleteTestNamespace(kubeConfig, namespace)));
  });

  async function namespace(): Promise<string> {
    const name = await createTestNamespace(kubeConfig, 'informer');
    namespaces.push(name);
    return name;
  }

  it('lists what exists, then follows adds, updates and deletes', async () => {
    const ns = await namespace();
    await core.createNamespacedConfigMap({ namespace: ns, body: configMap('before') });
    const { informer, events, seen } = configMapInformer(kubeConfig, ns);
    await informer.start();
    expect(informer.hasSynced()).toBe(true);
    expect(informer.get(ns, 'before')?.data).toEqual({ k: 'v' });
    expect(events).toEqual([{ type: 'add', name: 'before' }]);

    await core.createNamespacedConfigMap({ namespace: ns, body: configMap('after') });
    await seen('add', 'after');
    const previous = informer.get(ns, 'before');
    await core.replaceNamespacedConfigMap({ namespace: ns, name: 'before', body: configMap('before', undefined, { k: 'v2' }) });
    await seen('update', 'before');
    expect(informer.get(ns, 'before')?.data).toEqual({ k: 'v2' });
    expect(events.find((event) => event.type === 'update')?.oldResourceVersion).toBe(previous?.metadata?.resourceVersion);
    await core.deleteNamespacedConfigMap({ namespace: ns, name: 'after' });
    await seen('delete', 'after');
    expect(informer.get(ns, 'after')).toBeUndefined();
    expect(informer.list().map((object) => object.metadata?.name)).toEqual(['before']);
  });

  it('lists and watches only what the label selector matches', async () => {
    const ns = await namespace();
    const selected = { 'app.kubernetes.io/managed-by': 'hpc-user-operator' };
    await core.createNamespacedConfigMap({ namespace: ns, body: configMap('labelled', selected) });
    await core.createNamespacedConfigMap({ namespace: ns, body: configMap('unlabelled') });
    const { informer, events, seen } = configMapInformer(kubeConfig, ns, {
      labelSelector: 'app.kubernetes.io/managed-by=hpc-user-operator',
    });
    await informer.start();
    expect(informer.list().map((object) => object.metadata?.name)).toEqual(['labelled']);

    await core.createNamespacedConfigMap({ namespace: ns, body: configMap('unlabelled-later') });
    await core.createNamespacedConfigMap({ namespace: ns, body: configMap('labelled-later', selected) });
    await seen('add', 'labelled-later');
    // Losing the label takes the object out of the selection: the watch reports a delete.
    await core.replaceNamespacedConfigMap({ namespace: ns, name: 'labelled', body: configMap('labelled') });
    await seen('delete', 'labelled');
    expect(events.map((event) => event.name)).not.toContain('unlabelled-later');
    expect(events.map((event) => event.name)).not.toContain('unlabelled');
    expect(informer.list().map((object) => object.metadata?.name)).toEqual(['labelled-later']);
  });

  it('keeps only what `keep` selects, listed or watched; one no longer kept leaves as a delete', async () => {
    const ns = await namespace();
    await core.createNamespacedConfigMap({ namespace: ns, body: configMap('kept-a') });
    await core.createNamespacedConfigMap({ namespace: ns, body: configMap('other-a') });
    const { informer, events, seen } = configMapInformer(kubeConfig, ns, {
      keep: (cm) => cm.metadata?.name?.startsWith('kept-') === true && cm.data?.k !== 'dropped',
    });
    await informer.start();
    expect(informer.list().map((object) => object.metadata?.name)).toEqual(['kept-a']);

    await core.createNamespacedConfigMap({ namespace: ns, body: configMap('other-b') });
    await core.replaceNamespacedConfigMap({ namespace: ns, name: 'other-a', body: configMap('other-a', undefined, { k: 'v2' }) });
    await core.deleteNamespacedConfigMap({ namespace: ns, name: 'other-b' });
    await core.createNamespacedConfigMap({ namespace: ns, body: configMap('kept-b') });
    await seen('add', 'kept-b');
    await core.replaceNamespacedConfigMap({ namespace: ns, name: 'kept-a', body: configMap('kept-a', undefined, { k: 'dropped' }) });
    await seen('delete', 'kept-a');
    expect(events.map((event) => `${event.type} ${event.name}`)).toEqual(['add kept-a', 'add kept-b', 'delete kept-a']);
    expect(informer.list().map((object) => object.metadata?.name)).toEqual(['kept-b']);
  });

  it('reads objects that span many chunks whole, characters of several bytes included', async () => {
    const ns = await namespace();
    // About 400 KB of text in which 2-, 3- and 4-byte characters straddle the chunk boundaries.
    const text = 'aü€😀'.repeat(40_000);
    await core.createNamespacedConfigMap({ namespace: ns, body: configMap('listed', undefined, { text }) });
    const { informer, seen } = configMapInformer(kubeConfig, ns);
    await informer.start();
    expect(informer.get(ns, 'listed')?.data?.text).toBe(text);
    await core.createNamespacedConfigMap({ namespace: ns, body: configMap('watched', undefined, { text: `${text}.` }) });
    await seen('add', 'watched');
    expect(informer.get(ns, 'watched')?.data?.text).toBe(`${text}.`);
  });

  it('caches and hands out objects as the transform leaves them', async () => {
    const ns = await namespace();
    await core.createNamespacedConfigMap({ namespace: ns, body: configMap('secretive', undefined, { token: 'hunter2' }) });
    const handedOut: V1ConfigMap[] = [];
    const { informer, seen } = configMapInformer(kubeConfig, ns, { transform: (object) => ({ ...object, data: {} }) });
    informer.on('add', (object) => handedOut.push(object));
    await informer.start();
    await core.createNamespacedConfigMap({ namespace: ns, body: configMap('secretive-later', undefined, { token: 'x' }) });
    await seen('add', 'secretive-later');
    expect(informer.list().map((object) => object.data)).toEqual([{}, {}]);
    expect(handedOut.map((object) => object.data)).toEqual([{}, {}]);
  });

  it('watches again from the last resourceVersion each time the server ends a watch', async () => {
    const ns = await namespace();
    const { logger, records } = capturedLogger();
    const { informer, restarts, seen } = configMapInformer(kubeConfig, ns, { watchTimeoutSeconds: 1, logger });
    await informer.start();
    const closedWatches = () => records.filter((record) => record.msg === 'watch ended' && record.end === 'closed').length;
    await waitFor(() => closedWatches() >= 2, { ...waitOptions, description: 'two watches ended by the server' });
    await core.createNamespacedConfigMap({ namespace: ns, body: configMap('between-watches') });
    await seen('add', 'between-watches');
    expect(restarts).toEqual([]);
    expect(records.filter((record) => record.msg === 'listed')).toHaveLength(1);
  });

  it('replaces a watch that stays silent past the watchdog', async () => {
    const ns = await namespace();
    const { informer, restarts, seen } = configMapInformer(kubeConfig, ns, { silenceTimeoutMs: 300 });
    await informer.start();
    await waitFor(() => restarts.filter((reason) => reason === 'silent').length >= 2, {
      ...waitOptions,
      description: 'two silent-watch restarts',
    });
    await core.createNamespacedConfigMap({ namespace: ns, body: configMap('after-silence') });
    await seen('add', 'after-silence');
    expect(informer.restarts).toBe(restarts.length);
  });

  it('retries a failing list with back-off until it succeeds', async () => {
    const ns = await namespace();
    await core.createNamespacedConfigMap({ namespace: ns, body: configMap('existing') });
    let failuresLeft = 2;
    const client = clientWithList(kubeConfig, (real) => (failuresLeft-- > 0 ? Promise.reject(new Error('list refused')) : real()));
    const { informer, restarts } = configMapInformer(kubeConfig, ns, { client });
    await informer.start();
    expect(restarts).toEqual(['error', 'error']);
    expect(informer.get(ns, 'existing')).toBeDefined();
  });

  it('rejects start() when stopped before the first list', async () => {
    const ns = await namespace();
    let releaseList: (() => void) | undefined;
    const client = clientWithList(kubeConfig, async (real) => {
      await new Promise<void>((resolve) => (releaseList = resolve));
      return real();
    });
    const { informer, restarts } = configMapInformer(kubeConfig, ns, { client });
    const started = informer.start();
    informer.stop();
    await expect(started).rejects.toThrow(/stopped before it synced/);
    releaseList?.();
    expect(informer.hasSynced()).toBe(false);
    expect(restarts).toEqual([]);
  });

  it('after being cut off, re-lists and emits what changed meanwhile', async () => {
    const ns = await namespace();
    for (const name of ['kept', 'changed', 'removed']) {
      await core.createNamespacedConfigMap({ namespace: ns, body: configMap(name) });
    }
    const proxy = await TcpProxy.start(apiServerAddress(kubeConfig));
    try {
      const { informer, events, restarts, seen } = configMapInformer(proxy.kubeConfigThrough(kubeConfig), ns);
      await informer.start();
      expect(events).toHaveLength(3);

      proxy.cut();
      await waitFor(() => restarts.includes('error'), { ...waitOptions, description: 'the informer to notice the cut' });
      await core.deleteNamespacedConfigMap({ namespace: ns, name: 'removed' });
      await core.replaceNamespacedConfigMap({ namespace: ns, name: 'changed', body: configMap('changed', undefined, { k: 'v2' }) });
      await core.createNamespacedConfigMap({ namespace: ns, body: configMap('created') });
      proxy.restore();

      await seen('delete', 'removed');
      await seen('update', 'changed');
      await seen('add', 'created');
      expect(events.filter((event) => event.name === 'kept')).toEqual([{ type: 'add', name: 'kept' }]);
      expect(informer.list().map((object) => object.metadata?.name).sort()).toEqual(['changed', 'created', 'kept']);
      expect(informer.get(ns, 'changed')?.data).toEqual({ k: 'v2' });
    } finally {
      await proxy.close();
    }
  });

  it('replaces a watch whose connection died silently', async () => {
    const ns = await namespace();
    const proxy = await TcpProxy.start(apiServerAddress(kubeConfig));
    try {
      const { informer, restarts, seen } = configMapInformer(proxy.kubeConfigThrough(kubeConfig), ns, { silenceTimeoutMs: 1_000 });
      await informer.start();
      proxy.stall();
      await waitFor(() => restarts.includes('silent'), { ...waitOptions, description: 'the watchdog to replace the stalled watch' });
      proxy.restore();
      await core.createNamespacedConfigMap({ namespace: ns, body: configMap('after-stall') });
      await seen('add', 'after-stall');
    } finally {
      await proxy.close();
    }
  });
});

describe('ResilientInformer on a control plane of its own', () => {
  const own = useOwnControlPlane();

  it('sees objects created and deleted after the apiserver came back', async () => {
    const { controlPlane, kubeConfig } = own;
    const core = kubeConfig.makeApiClient(CoreV1Api);
    const ns = await createTestNamespace(kubeConfig, 'informer-restart');
    await core.createNamespacedConfigMap({ namespace: ns, body: configMap('before-restart') });
    const { informer, restarts, seen } = configMapInformer(kubeConfig, ns);
    await informer.start();
    await seen('add', 'before-restart');

    await controlPlane.stopApiServer();
    await waitFor(() => restarts.includes('error'), { ...waitOptions, description: 'the informer to notice the apiserver is gone' });
    await controlPlane.startApiServer();

    await core.createNamespacedConfigMap({ namespace: ns, body: configMap('after-restart') });
    await seen('add', 'after-restart');
    await core.deleteNamespacedConfigMap({ namespace: ns, name: 'before-restart' });
    await seen('delete', 'before-restart');
    expect(informer.list().map((object) => object.metadata?.name)).toEqual(['after-restart']);
  });

  it('re-lists after a 410 Gone', async () => {
    const { controlPlane, kubeConfig } = own;
    // Core Events skip the watch cache, so a watch from a compacted revision reaches etcd
    // and ends in 410 Gone; a cached resource would be served from the cache's full state.
    const core = kubeConfig.makeApiClient(CoreV1Api);
    const ns = await createTestNamespace(kubeConfig, 'informer-gone');
    const event = (name: string): CoreV1Event => ({
      metadata: { name },
      involvedObject: { kind: 'ConfigMap', name: 'any', namespace: ns },
      reason: 'Test',
      message: name,
    });
    await core.createNamespacedEvent({ namespace: ns, body: event('before-compaction') });
    const staleResourceVersion = (await core.listNamespacedEvent({ namespace: ns })).metadata?.resourceVersion;
    await core.createNamespacedEvent({ namespace: ns, body: event('compacted-1') });
    await core.createNamespacedEvent({ namespace: ns, body: event('compacted-2') });
    const latest = (await core.listNamespacedEvent({ namespace: ns })).metadata?.resourceVersion ?? '';
    await compactEtcd(controlPlane, latest);

    let lists = 0;
    const restarts: InformerRestartReason[] = [];
    const informer = new ResilientInformer<CoreV1Event>({
      name: 'events',
      // The first list answers with no items and the resourceVersion from before the compaction.
      client: clientWithList(kubeConfig, (real) => (++lists === 1 ? Promise.resolve(staleResourceVersion ?? '') : real())),
      path: `/api/v1/namespaces/${ns}/events`,
      backoff: fastBackoff,
      onRestart: (reason) => restarts.push(reason),
    });
    informers.push(informer);
    const added: string[] = [];
    informer.on('add', (object) => added.push(object.metadata?.name ?? ''));
    await informer.start();
    await waitFor(() => restarts.includes('gone'), { ...waitOptions, description: 'a restart after 410 Gone' });
    await waitFor(() => added.length === 3, { ...waitOptions, description: 'the re-list to add every event' });
    expect(added.sort()).toEqual(['before-compaction', 'compacted-1', 'compacted-2']);
    expect(restarts).not.toContain('error');
    await core.createNamespacedEvent({ namespace: ns, body: event('after-gone') });
    await waitFor(() => added.includes('after-gone'), { ...waitOptions, description: 'the watch to resume' });
  });
});
