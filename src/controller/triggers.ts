import type { HpcClusterObject } from '../api/hpccluster.js';
import { usersDigestOf } from '../domain/trusted-users.js';
import { CONTENT_HASH_ANNOTATION, SYNC_ID_ANNOTATION } from '../render/configmaps.js';
import type { CachedConfigMap } from './cached-objects.js';
import type { ObjectKey } from './object-key.js';
import { credentialsSecretOf } from './plan.js';
import { SYNC_REQUESTED_ANNOTATION } from './sync-request.js';

/**
 * Which watch events call for a sync: pure functions, so the rules are testable and the
 * operator's own writes (status, ConfigMaps it just wrote) never feed back into a loop.
 */

/** A spec change (new generation), a sync request, or a deletion; never a status write. */
export function hpcClusterUpdateNeedsSync(object: HpcClusterObject, old: HpcClusterObject | undefined): boolean {
  if (old === undefined) return true;
  if (object.metadata.generation !== old.metadata.generation) return true;
  return object.metadata.annotations?.[SYNC_REQUESTED_ANNOTATION] !== old.metadata.annotations?.[SYNC_REQUESTED_ANNOTATION];
}

/**
 * True when the data of a cached ConfigMap no longer matches the hash the operator wrote
 * beside it (someone edited it), or a new one arrived without that hash.
 */
export function configMapDrifted(cm: CachedConfigMap): boolean {
  return cm.contentHash !== cm.metadata.annotations?.[CONTENT_HASH_ANNOTATION];
}

/** What the operator wrote to a ConfigMap: the content hash of its data, and its sync id. */
export interface WrittenConfigMap {
  contentHash: string;
  syncId: string | undefined;
}

/**
 * Whether an added or updated ConfigMap of an HpcCluster calls for a sync of it. Tenants may
 * write its data and annotations alike, so neither is believed: it is in order when it holds
 * what this process last wrote to it (its own writes never call for a sync), or, when this
 * process has not written it, when it is unedited (configMapDrifted), carries the sync id
 * that its owner's status.usersDigest names and, for `<name>-users`, holds the users.json
 * that digest vouches for.
 */
export function configMapNeedsSync(cm: CachedConfigMap, lastWritten: WrittenConfigMap | undefined, owner: HpcClusterObject | undefined): boolean {
  if (configMapDrifted(cm)) return true;
  const syncId = cm.metadata.annotations?.[SYNC_ID_ANNOTATION];
  if (lastWritten !== undefined) return cm.contentHash !== lastWritten.contentHash || syncId !== lastWritten.syncId;
  const digest = owner?.status?.usersDigest;
  // Nothing vouched for yet: the first sync writes it.
  if (digest === undefined) return false;
  return syncId !== digest || (cm.usersJson !== undefined && usersDigestOf(cm.usersJson) !== digest);
}

/**
 * The Secret keys an HpcCluster's reconcile reads (the Secret->HpcCluster index): none while
 * its spec is invalid or it is suspended, as the reconcile then reads no Secret.
 */
export function referencedSecrets(object: HpcClusterObject): ObjectKey[] {
  const namespace = object.metadata.namespace;
  const name = credentialsSecretOf(object);
  return namespace === undefined || name === undefined ? [] : [{ namespace, name }];
}
