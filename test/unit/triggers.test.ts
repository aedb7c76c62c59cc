import { describe, expect, it } from '@jest/globals';
import type { V1ConfigMap } from '@kubernetes/client-node';
import type { HpcClusterObject } from '../../src/api/hpccluster.js';
import { cachedConfigMap } from '../../src/controller/cached-objects.js';
import { configMapDrifted, configMapNeedsSync, hpcClusterUpdateNeedsSync, referencedSecrets } from '../../src/controller/triggers.js';
import { CONTENT_HASH_ANNOTATION, configMapManifest, contentHashOf, renderConfigMaps, SYNC_ID_ANNOTATION } from '../../src/render/configmaps.js';

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

  it('calls for a sync when a ConfigMap is not what the operator wrote, whatever its annotations say', () => {
    const mine = cachedConfigMap(written);
    const syncId = rendered!.syncId;
    const owner = { ...object(1), status: { usersDigest: syncId } };
    const lastWritten = { contentHash: rendered!.contentHash, syncId };
    // Its own write, known to this process or vouched for by status: no sync.
    expect(configMapNeedsSync(mine, lastWritten, owner)).toBe(false);
    expect(configMapNeedsSync(mine, undefined, owner)).toBe(false);
    // Not vouched for yet (the first sync is still writing): no sync either.
    expect(configMapNeedsSync(mine, undefined, object(1))).toBe(false);
    // A forged users.json with a content hash to match, annotations copied from the real one.
    const forgedData = { ...written.data, 'users.json': '[]\n' };
    const forged = cachedConfigMap({
      ...written,
      metadata: { ...written.metadata, annotations: { ...written.metadata?.annotations, [CONTENT_HASH_ANNOTATION]: contentHashOf(forgedData) } },
      data: forgedData,
    });
    expect(configMapDrifted(forged)).toBe(false);
    expect(configMapNeedsSync(forged, lastWritten, owner)).toBe(true);
    expect(configMapNeedsSync(forged, undefined, owner)).toBe(true);
    // A sync id that is not status's: a pair left half-written, or another's write.
    const other = cachedConfigMap({ ...written, metadata: { ...written.metadata, annotations: { ...written.metadata?.annotations, [SYNC_ID_ANNOTATION]: 'x' } } });
    expect(configMapNeedsSync(other, undefined, owner)).toBe(true);
    expect(configMapNeedsSync(other, lastWritten, owner)).toBe(true);
    // The operator's next write, before status follows: ours, no sync.
    expect(configMapNeedsSync(mine, lastWritten, { ...owner, status: { usersDigest: 'f'.repeat(64) } })).toBe(false);
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
