import { describe, expect, it } from '@jest/globals';
import { pino } from 'pino';
import type { HpcClusterObject } from '../../../src/api/hpccluster.js';
import type { CachedConfigMap } from '../../../src/controller/cached-objects.js';
import { OperatorMetrics } from '../../../src/controller/metrics.js';
import type { ConfigMapState } from '../../../src/controller/plan.js';
import { SYNC_ID_ANNOTATION } from '../../../src/render/configmaps.js';
import type { CertificateKeeper } from '../../../src/webhook/certificate-keeper.js';
import { PodIdentityWebhook } from '../../../src/webhook/webhook.js';
import { FakeCache } from '../../support/fake-cache.js';

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
    const hpcClusters = new FakeCache<HpcClusterObject>('hpcclusters');
    const configMaps = new FakeCache<CachedConfigMap>('configmaps');
    // Filled before the webhook listens: only the HpcClusters' events below schedule reads.
    for (const name of names) configMaps.add(usersConfigMap(name));
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
