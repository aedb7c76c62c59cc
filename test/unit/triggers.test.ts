import { describe, expect, it } from '@jest/globals';
import type { V1ConfigMap } from '@kubernetes/client-node';
import type { HpcClusterObject } from '../../src/api/hpccluster.js';
import { nextStatus } from '../../src/controller/status.js';
import { cachedConfigMap } from '../../src/controller/cached-objects.js';
import { configMapDrifted, hpcClusterUpdateNeedsSync, referencedSecrets, startupDelayMs } from '../../src/controller/triggers.js';
import { configMapManifest, contentHashOf, renderConfigMaps } from '../../src/render/configmaps.js';

const object = (generation: number, annotations: Record<string, string> = {}): HpcClusterObject => ({
  apiVersion: 'hpc.shanhe.com/v1alpha1',
  kind: 'HpcCluster',
  metadata: { name: 'c', namespace: 'ns', generation, annotations },
  spec: { clusterId: 'hpc-1', zone: 'z', credentialsSecretRef: { name: 's' }, syncInterval: '10m' },
});

describe('hpcClusterUpdateNeedsSync', () => {
  it('syncs on a new generation or a new sync request, not on a status write', () => {
    expect(hpcClusterUpdateNeedsSync(object(2), object(1))).toBe(true);
    expect(hpcClusterUpdateNeedsSync(object(1, { 'hpc.shanhe.com/sync-requested': 'b' }), object(1, { 'hpc.shanhe.com/sync-requested': 'a' }))).toBe(true);
    expect(hpcClusterUpdateNeedsSync({ ...object(1), status: { userCount: 3 } }, object(1))).toBe(false);
    expect(hpcClusterUpdateNeedsSync(object(1, { unrelated: 'x' }), object(1))).toBe(false);
  });
});

describe('ConfigMap events', () => {
  const [rendered] = renderConfigMaps('c', [{ username: 'a', uid: 1001, gid: 1001, role: 'member', nasMountPoint: '/h/a', userId: 'u', hpcUserId: 'h' }]);
  const written = configMapManifest({ name: 'c', namespace: 'ns', uid: 'uid-1' }, rendered!) as V1ConfigMap;

  it('sees no drift in what the operator wrote, and drift in an edit or a ConfigMap without the hash', () => {
    expect(configMapDrifted(cachedConfigMap(written))).toBe(false);
    expect(configMapDrifted(cachedConfigMap({ ...written, data: { ...written.data, 'a.uid': '0' } }))).toBe(true);
    expect(configMapDrifted(cachedConfigMap({ ...written, metadata: { ...written.metadata, annotations: {} } }))).toBe(true);
  });

  it('caches a typed slim record: the content hash, users.json and the controller reference, no managedFields', () => {
    const other = { apiVersion: 'v1', kind: 'Pod', name: 'p', uid: 'uid-2' };
    const cached = cachedConfigMap({
      ...written,
      metadata: { ...written.metadata, resourceVersion: '7', managedFields: [{ manager: 'x' }], ownerReferences: [other, ...(written.metadata?.ownerReferences ?? [])] },
    });
    expect(cached).toEqual({
      metadata: {
        name: 'c-users',
        namespace: 'ns',
        resourceVersion: '7',
        labels: written.metadata?.labels,
        annotations: written.metadata?.annotations,
        ownerReferences: written.metadata?.ownerReferences,
      },
      contentHash: contentHashOf(written.data ?? {}),
      usersJson: written.data?.['users.json'],
    });
    expect(JSON.stringify(cached)).not.toContain('a.uid');
  });
});

describe('referencedSecrets', () => {
  it('names the Secret of a valid spec in the same namespace, and none of an invalid or suspended one', () => {
    expect(referencedSecrets(object(1))).toEqual([{ namespace: 'ns', name: 's' }]);
    expect(referencedSecrets({ ...object(1), spec: { clusterId: 'hpc-1' } })).toEqual([]);
    expect(referencedSecrets({ ...object(1), spec: { clusterId: 'hpc-1', zone: 'z', credentialsSecretRef: { name: 's' }, suspend: true } })).toEqual([]);
  });
});

describe('startupDelayMs', () => {
  const synced = (at: Date): HpcClusterObject => ({
    ...object(1),
    status: nextStatus(undefined, 1, { reason: 'Synced', users: [], skipped: [] }, at, ['c-users', 'c-nss']),
  });
  const t = Date.parse('2026-01-01T00:00:00Z');

  it('waits for the next periodic sync of a resource that is current', () => {
    expect(startupDelayMs(synced(new Date(t)), true, t + 60_000, () => 0)).toBe(540_000);
  });

  it('spreads overdue resources over a tenth of the interval', () => {
    expect(startupDelayMs(synced(new Date(t)), true, t + 3_600_000, () => 0.5)).toBe(30_000);
  });

  it('syncs at once when a ConfigMap is missing, the spec is new, or the last sync failed', () => {
    expect(startupDelayMs(synced(new Date(t)), false, t + 1, () => 0)).toBe(0);
    expect(startupDelayMs({ ...synced(new Date(t)), metadata: { ...object(2).metadata } }, true, t + 1, () => 0)).toBe(0);
    const failed = { ...object(1), status: nextStatus(undefined, 1, { reason: 'ListUsersFailed', message: 'x', retry: 'backoff' }, new Date(t), []) };
    expect(startupDelayMs(failed, true, t + 1, () => 0)).toBe(0);
  });
});
