import type { V1ConfigMap } from '@kubernetes/client-node';
import { KIND, type HpcClusterObject } from '../api/hpccluster.js';
import { parseDuration } from '../api/duration.js';
import { CONTENT_HASH_ANNOTATION } from '../render/configmaps.js';
import { observedContentHash } from './configmap-cache.js';
import { readyCondition } from './status.js';
import { SYNC_REQUESTED_ANNOTATION } from './plan.js';
import type { ObjectKey } from './reconcile.js';

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

/** The HpcCluster that controls a ConfigMap, from its controller ownerReference. */
export function ownerOfConfigMap(cm: V1ConfigMap): ObjectKey | undefined {
  const owner = cm.metadata?.ownerReferences?.find((ref) => ref.controller === true && ref.kind === KIND);
  const namespace = cm.metadata?.namespace;
  return owner === undefined || namespace === undefined ? undefined : { namespace, name: owner.name };
}

/**
 * True when someone changed the data of a cached ConfigMap so that it no longer matches the
 * hash the operator wrote.
 */
export function configMapDrifted(cm: V1ConfigMap): boolean {
  return observedContentHash(cm) !== cm.metadata?.annotations?.[CONTENT_HASH_ANNOTATION];
}

/**
 * When to sync a resource found at start-up. One whose last sync is current is due at its
 * next periodic sync, so a restart does not make every resource call the API at once;
 * anything else (new generation, a failure, a missing ConfigMap) is due now.
 */
export function startupDelayMs(object: HpcClusterObject, configMapsPresent: boolean, now: number, random: () => number): number {
  const status = object.status;
  const ready = readyCondition(status);
  if (!configMapsPresent || ready?.status !== 'True' || ready.reason !== 'Synced') return 0;
  if (status?.observedGeneration !== object.metadata.generation) return 0;
  const interval = parseDuration((object.spec as { syncInterval?: string } | undefined)?.syncInterval ?? '') ?? 0;
  const lastSync = Date.parse(status?.lastSuccessfulSyncTime ?? '');
  if (interval === 0 || !Number.isFinite(lastSync)) return 0;
  const remaining = lastSync + interval - now;
  // Spread what is already due over a tenth of the interval instead of all at once.
  return remaining > 0 ? remaining : Math.round(random() * interval * 0.1);
}
