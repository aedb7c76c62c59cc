import { describe, expect, it } from '@jest/globals';
import type { HpcClusterObject } from '../../src/api/hpccluster.js';
import { configMapNamesAwaited, hpcClusterUpdateNeedsSync, referencedSecrets } from '../../src/controller/triggers.js';

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

describe('referencedSecrets', () => {
  it('names the Secret of a valid spec in the same namespace, and none of an invalid or suspended one', () => {
    expect(referencedSecrets(object(1))).toEqual([{ namespace: 'ns', name: 's' }]);
    expect(referencedSecrets({ ...object(1), spec: { clusterId: 'hpc-1' } })).toEqual([]);
    expect(referencedSecrets({ ...object(1), spec: { clusterId: 'hpc-1', zone: 'z', credentialsSecretRef: { name: 's' }, suspend: true } })).toEqual([]);
  });
});

describe('configMapNamesAwaited', () => {
  const ready = (reason: string): HpcClusterObject['status'] => ({ conditions: [{ type: 'Ready', status: 'False', reason, message: '', lastTransitionTime: '2027-01-15T08:00:00Z' }] });
  it('names its two ConfigMaps while another holds one of the names, and none otherwise', () => {
    expect(configMapNamesAwaited({ ...object(1), status: ready('ConfigMapConflict') })).toEqual([
      { namespace: 'ns', name: 'c-users' },
      { namespace: 'ns', name: 'c-nss' },
    ]);
    expect(configMapNamesAwaited({ ...object(1), status: ready('CredentialsNotFound') })).toEqual([]);
    expect(configMapNamesAwaited(object(1))).toEqual([]);
  });
});
