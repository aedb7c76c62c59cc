// Sync requests: the annotation `hpc.shanhe.com/sync-requested: <any new value>` asks for a sync
// now. A leader sees each new value as a watch event and syncs; nothing is written to say it
// did, so an unchanged resync stays write-free. A request made while no replica led is found
// at start-up by when it was made: the apiserver's managedFields time of the annotation,
// compared with the previous leader's last lease renewal.
import type { KubernetesObject, V1ManagedFieldsEntry, V1ObjectMeta } from '@kubernetes/client-node';

export const SYNC_REQUESTED_ANNOTATION = 'hpc.shanhe.com/sync-requested';

/**
 * How long before the previous leader's last renewal a request may have been made and still
 * not handled: it was queued behind other work when that leader stopped.
 */
export const UNHANDLED_REQUEST_MARGIN_MS = 30_000;

const ANNOTATION_FIELD = `f:${SYNC_REQUESTED_ANNOTATION}`;

function ownsSyncRequest(entry: V1ManagedFieldsEntry): boolean {
  const fields = entry.fieldsV1 as { 'f:metadata'?: { 'f:annotations'?: Record<string, unknown> } } | undefined;
  return fields?.['f:metadata']?.['f:annotations']?.[ANNOTATION_FIELD] !== undefined;
}

/**
 * The managedFields entries that own the sync-request annotation, cut to what tells when it was
 * set; the caches drop the rest of managedFields, which list every field of the object again.
 */
export function syncRequestFieldEntries(managedFields: V1ManagedFieldsEntry[] | undefined): V1ManagedFieldsEntry[] {
  return (managedFields ?? []).filter(ownsSyncRequest).map((entry) => ({
    ...(entry.manager === undefined ? {} : { manager: entry.manager }),
    ...(entry.operation === undefined ? {} : { operation: entry.operation }),
    ...(entry.time === undefined ? {} : { time: entry.time }),
    fieldsType: 'FieldsV1',
    fieldsV1: { 'f:metadata': { 'f:annotations': { [ANNOTATION_FIELD]: {} } } },
  }));
}

/**
 * When the sync-request annotation was last set, to the second (managedFields times have no
 * fraction), or undefined when no entry says. An owner's time moves with any field it changes,
 * so this errs late: a request may look newer than it is, never older.
 */
export function syncRequestedAt(metadata: Pick<V1ObjectMeta, 'annotations' | 'managedFields'>): number | undefined {
  if (metadata.annotations?.[SYNC_REQUESTED_ANNOTATION] === undefined) return undefined;
  let newest: number | undefined;
  for (const entry of metadata.managedFields ?? []) {
    if (!ownsSyncRequest(entry)) continue;
    const time = entry.time === undefined ? Number.NaN : new Date(entry.time).getTime();
    if (Number.isFinite(time)) newest = Math.max(newest ?? time, time);
  }
  return newest;
}

/**
 * Whether the object's sync request may have found no leader to handle it: it was made at or
 * after `handledBefore` (the previous leader's last renewal, less UNHANDLED_REQUEST_MARGIN_MS).
 * Without a previous leader to go by (leader election off, or a first start) every request
 * found at start counts as handled, as in controller-runtime; so does one of unknown time.
 */
export function syncRequestPending(object: Pick<KubernetesObject, 'metadata'>, handledBefore: number | undefined): boolean {
  if (handledBefore === undefined || object.metadata === undefined) return false;
  const requestedAt = syncRequestedAt(object.metadata);
  // The second it was made in may have ended after handledBefore.
  return requestedAt !== undefined && requestedAt + 1000 > handledBefore;
}

/** The cut-off for syncRequestPending from the previous leader's last renewal (LeaderElector.previousLeaderRenewTime). */
export function requestsHandledBefore(previousLeaderRenewTime: number | undefined): number | undefined {
  return previousLeaderRenewTime === undefined ? undefined : previousLeaderRenewTime - UNHANDLED_REQUEST_MARGIN_MS;
}
