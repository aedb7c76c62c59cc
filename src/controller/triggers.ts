import type { HpcClusterObject } from '../api/hpccluster.js';
import { CONFIGMAP_ROLES, configMapNameOf } from './configmap-contents.js';
import type { ObjectKey } from './object-key.js';
import { credentialsSecretOf } from './plan.js';
import { readyCondition } from './status.js';
import { SYNC_REQUESTED_ANNOTATION } from './sync-request.js';

/**
 * Which watch events call for a sync: pure functions, so the rules are testable and the
 * operator's own writes (status, ConfigMaps it just wrote) never feed back into a loop.
 * ConfigMap events are weighed by what their contents are known to be (configmap-contents.ts).
 */

/** A spec change (new generation), a sync request, or a deletion; never a status write. */
export function hpcClusterUpdateNeedsSync(object: HpcClusterObject, old: HpcClusterObject | undefined): boolean {
  if (old === undefined) return true;
  if (object.metadata.generation !== old.metadata.generation) return true;
  return object.metadata.annotations?.[SYNC_REQUESTED_ANNOTATION] !== old.metadata.annotations?.[SYNC_REQUESTED_ANNOTATION];
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

/**
 * The ConfigMap names an HpcCluster in ConfigMapConflict waits for (the ConfigMap->HpcCluster
 * index): another's ConfigMap holds one, and its removal calls for a sync at once. Only then,
 * so that the operator's own writes never feed back.
 */
export function configMapNamesAwaited(object: HpcClusterObject): ObjectKey[] {
  const { namespace, name } = object.metadata;
  if (namespace === undefined || name === undefined || readyCondition(object.status)?.reason !== 'ConfigMapConflict') return [];
  return CONFIGMAP_ROLES.map((role) => ({ namespace, name: configMapNameOf(role, name) }));
}
