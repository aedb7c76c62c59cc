import { describe, expect, it } from '@jest/globals';
import type { KubernetesObject } from '@kubernetes/client-node';
import { pino } from 'pino';
import type { HpcClusterObject } from '../../../src/api/hpccluster.js';
import type { CachedConfigMap } from '../../../src/controller/cached-objects.js';
import type { InformerEvent, InformerHandler } from '../../../src/controller/informer.js';
import { OperatorMetrics } from '../../../src/controller/metrics.js';
import type { ConfigMapState } from '../../../src/controller/plan.js';
import { SYNC_ID_ANNOTATION } from '../../../src/render/configmaps.js';
import type { CertificateKeeper } from '../../../src/webhook/certificate-keeper.js';
import { PodIdentityWebhook } from '../../../src/webhook/webhook.js';

/** A cache of a few objects whose events the test fires. */
class FakeCache<T extends KubernetesObject & { metadata?: { namespace?: string; name?: string } }> {
  private readonly handlers: Record<InformerEvent, InformerHandler<T>[]> = { add: [], update: [], delete: [] };
  constructor(private readonly objects: T[]) {}
  get(namespace: string, name: string): T | undefined {
    return this.objects.find((o) => o.metadata?.namespace === namespace && o.metadata.name === name);
  }
  on(event: InformerEvent, handler: InformerHandler<T>): void {
    this.handlers[event].push(handler);
  }
  add(object: T): void {
    for (const handler of this.handlers.add) handler(object);
  }
}

/** A promise and its settlers. */
function deferred<T>() {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => ((resolve = res), (reject = rej)));
  return { promise, resolve, reject };
}

const cluster = (name: string): HpcClusterObject =>
  ({ metadata: { namespace: 'research', name, uid: `uid-${name}` }, status: { usersDigest: `digest-${name}` } }) as HpcClusterObject;
const usersConfigMap = (name: string): CachedConfigMap => ({
  metadata: { namespace: 'research', name: `${name}-users`, resourceVersion: '7', annotations: { [SYNC_ID_ANNOTATION]: `digest-${name}` }, ownerReferences: [] },
});

describe('PodIdentityWebhook.indexCaughtUp', () => {
  function webhookOver(names: string[]) {
    const hpcClusters = new FakeCache(names.map(cluster));
    const configMaps = new FakeCache(names.map(usersConfigMap));
    const reads = new Map(names.map((name) => [`${name}-users`, deferred<ConfigMapState | undefined>()]));
    const webhook = new PodIdentityWebhook({
      addr: '127.0.0.1:0',
      hpcClusters,
      configMaps,
      readConfigMap: (key) => reads.get(key.name)?.promise ?? Promise.resolve(undefined),
      cachesSynced: () => true,
      certificates: {} as CertificateKeeper,
      metrics: new OperatorMetrics(),
      logger: pino({ level: 'silent' }),
    });
    return { webhook, hpcClusters, reads };
  }

  /** Whether `promise` has settled once everything queued so far has run. */
  async function settled(promise: Promise<unknown>): Promise<boolean> {
    let done = false;
    void promise.then(() => (done = true));
    await new Promise((resolve) => setImmediate(resolve));
    return done;
  }

  it('resolves at once when nothing is being read', async () => {
    const { webhook } = webhookOver([]);
    expect(await settled(webhook.indexCaughtUp())).toBe(true);
  });

  it('resolves once every user list scheduled has been read, a failed read included', async () => {
    const { webhook, hpcClusters, reads } = webhookOver(['chem', 'bio']);
    hpcClusters.add(cluster('chem'));
    hpcClusters.add(cluster('bio'));
    const caughtUp = webhook.indexCaughtUp();
    expect(await settled(caughtUp)).toBe(false);
    reads.get('chem-users')?.resolve(undefined);
    expect(await settled(caughtUp)).toBe(false);
    reads.get('bio-users')?.reject(new Error('connection reset'));
    expect(await settled(caughtUp)).toBe(true);
  });
});
