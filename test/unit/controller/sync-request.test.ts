// When a sync request was made, and whether it may have found no leader to handle it.
import { describe, expect, it } from '@jest/globals';
import type { V1ManagedFieldsEntry } from '@kubernetes/client-node';
import { API_VERSION, KIND, type HpcClusterObject } from '../../../src/api/hpccluster.js';
import { cachedHpcCluster } from '../../../src/controller/cached-objects.js';
import {
  requestsHandledBefore,
  SYNC_REQUESTED_ANNOTATION,
  syncRequestedAt,
  syncRequestPending,
  UNHANDLED_REQUEST_MARGIN_MS,
} from '../../../src/controller/sync-request.js';

const annotations = (fields: Record<string, unknown>) => ({ 'f:metadata': { 'f:annotations': fields } });
const applied: V1ManagedFieldsEntry = {
  manager: 'kubectl-client-side-apply',
  operation: 'Update',
  time: new Date('2026-11-30T10:00:00Z'),
  fieldsType: 'FieldsV1',
  fieldsV1: { ...annotations({ '.': {}, 'f:kubectl.kubernetes.io/last-applied-configuration': {} }), 'f:spec': { 'f:clusterId': {} } },
};
const annotated = (time: string): V1ManagedFieldsEntry => ({
  manager: 'kubectl-annotate',
  operation: 'Update',
  time: time as unknown as Date,
  fieldsType: 'FieldsV1',
  fieldsV1: annotations({ [`f:${SYNC_REQUESTED_ANNOTATION}`]: {}, 'f:other': {} }),
});
const requested = (...managedFields: V1ManagedFieldsEntry[]): HpcClusterObject => ({
  apiVersion: API_VERSION,
  kind: KIND,
  metadata: { name: 'lab', annotations: { [SYNC_REQUESTED_ANNOTATION]: 'now', other: 'x' }, managedFields },
});

describe('sync requests', () => {
  it('were made when the newest entry owning the annotation says', () => {
    expect(syncRequestedAt(requested(applied, annotated('2026-11-30T10:05:00Z')).metadata)).toBe(Date.parse('2026-11-30T10:05:00Z'));
    expect(syncRequestedAt(requested(annotated('2026-11-30T10:05:00Z'), { ...annotated('2026-11-30T10:07:00Z'), manager: 'gitops' }).metadata)).toBe(
      Date.parse('2026-11-30T10:07:00Z'),
    );
    // The spec's owner is not the request's.
    expect(syncRequestedAt(requested(applied).metadata)).toBeUndefined();
    // No request: no time, whoever owned it once.
    expect(syncRequestedAt({ managedFields: [annotated('2026-11-30T10:05:00Z')] })).toBeUndefined();
  });

  it('are pending when made since the previous leader was last seen, less the margin for its queue', () => {
    const lastSeen = Date.parse('2026-11-30T10:05:00.400Z');
    const handledBefore = requestsHandledBefore(lastSeen);
    expect(handledBefore).toBe(lastSeen - UNHANDLED_REQUEST_MARGIN_MS);
    expect(syncRequestPending(requested(annotated('2026-11-30T10:06:00Z')), handledBefore)).toBe(true);
    // Within the margin: it may have sat in the previous leader's queue.
    expect(syncRequestPending(requested(annotated('2026-11-30T10:04:50Z')), handledBefore)).toBe(true);
    // The second 10:04:30 may have ended after the cut-off at 10:04:30.400.
    expect(syncRequestPending(requested(annotated('2026-11-30T10:04:30Z')), handledBefore)).toBe(true);
    expect(syncRequestPending(requested(annotated('2026-11-30T10:04:29Z')), handledBefore)).toBe(false);
    // With no previous leader known every request counts as handled, and so does one of unknown time.
    expect(syncRequestPending(requested(annotated('2026-11-30T10:06:00Z')), requestsHandledBefore(undefined))).toBe(false);
    expect(syncRequestPending(requested(applied), handledBefore)).toBe(false);
  });

  it('keep their time in the cache, which drops every other managedFields entry', () => {
    const object = requested(applied, annotated('2026-11-30T10:05:00Z'));
    const cached = cachedHpcCluster(object);
    expect(cached.metadata.managedFields).toEqual([
      {
        manager: 'kubectl-annotate',
        operation: 'Update',
        time: '2026-11-30T10:05:00Z',
        fieldsType: 'FieldsV1',
        fieldsV1: annotations({ [`f:${SYNC_REQUESTED_ANNOTATION}`]: {} }),
      },
    ]);
    expect(syncRequestedAt(cached.metadata)).toBe(syncRequestedAt(object.metadata));
    expect(cachedHpcCluster(requested(applied)).metadata.managedFields).toBeUndefined();
    // The object read is left as it was.
    expect(object.metadata.managedFields).toHaveLength(2);
  });

  it('leave status.users out of the cache, and the rest of status in', () => {
    const users = [{ username: 'ann', uid: 5001, gid: 5001, role: 'member' as const, nasMountPoint: '/n/ann', userId: 'u-1', hpcUserId: 'h-1' }];
    const object = { ...requested(), status: { userCount: 1, users, usersDigest: 'd', usersTruncated: false } };
    expect(cachedHpcCluster(object).status).toEqual({ userCount: 1, usersDigest: 'd', usersTruncated: false });
    expect(object.status.users).toBe(users);
  });
});
