import type { KubernetesObject, V1ObjectMeta, V1OwnerReference } from '@kubernetes/client-node';
import type { HpcClusterObject } from '../api/hpccluster.js';
import { PROVIDER_RATE_LIMIT_ANNOTATION } from '../budget/declared-rate.js';
import { syncRequestFieldEntries } from './sync-request.js';

/**
 * The typed, slim forms the informer caches keep, each made once as the object arrives.
 * Every HpcCluster's two ConfigMaps are cached (and anyone's of those names), and a users
 * ConfigMap of 1,000 users has some 3,000 keys, which is why they are watched as metadata
 * only; managedFields list every field again. The caches keep what the controller reads and
 * nothing else.
 */

/**
 * What the controller reads of a ConfigMap it may write: metadata only, as the watch sends it
 * (configmap-contents.ts says how the data is known without keeping it).
 */
export interface CachedConfigMap extends KubernetesObject {
  metadata: Pick<V1ObjectMeta, 'resourceVersion' | 'labels' | 'annotations'> & {
    name: string;
    namespace: string;
    /** Only the controller reference, if there is one: ownership is all that is read. */
    ownerReferences: V1OwnerReference[];
  };
}

/** The cached form of a ConfigMap's metadata (PartialObjectMetadata, or a whole ConfigMap). */
export function cachedConfigMap(cm: KubernetesObject): CachedConfigMap {
  const meta = cm.metadata ?? {};
  const controller = meta.ownerReferences?.find((ref) => ref.controller === true);
  return {
    metadata: {
      name: meta.name ?? '',
      namespace: meta.namespace ?? '',
      ...(meta.resourceVersion === undefined ? {} : { resourceVersion: meta.resourceVersion }),
      ...(meta.labels === undefined ? {} : { labels: meta.labels }),
      ...(meta.annotations === undefined ? {} : { annotations: meta.annotations }),
      ownerReferences: controller === undefined ? [] : [controller],
    },
  };
}

/**
 * What the controller reads of a Secret's metadata: its identity, version, labels (the opt-in)
 * and the one annotation it reads. Nothing else is kept: `kubectl apply` leaves the whole
 * Secret, data in clear, in the last-applied-configuration annotation.
 */
export function cachedSecretMetadata(secret: KubernetesObject): KubernetesObject {
  const meta = secret.metadata ?? {};
  const declaredRate = meta.annotations?.[PROVIDER_RATE_LIMIT_ANNOTATION];
  return {
    metadata: {
      ...(meta.name === undefined ? {} : { name: meta.name }),
      ...(meta.namespace === undefined ? {} : { namespace: meta.namespace }),
      ...(meta.resourceVersion === undefined ? {} : { resourceVersion: meta.resourceVersion }),
      ...(meta.labels === undefined ? {} : { labels: meta.labels }),
      ...(declaredRate === undefined ? {} : { annotations: { [PROVIDER_RATE_LIMIT_ANNOTATION]: declaredRate } }),
    },
  };
}

/**
 * The HpcCluster as the controller reads it: without status.users (up to 500 users, the bulk
 * of the object), which usersDigest stands for when deciding a write (controller/status.ts),
 * and with, of its managedFields, only what tells when its sync request was made
 * (sync-request.ts); the rest lists every field of the object again and is never read.
 */
export function cachedHpcCluster(object: HpcClusterObject): HpcClusterObject {
  const metadata = { ...object.metadata };
  if (metadata.managedFields !== undefined) {
    const requestFields = syncRequestFieldEntries(metadata.managedFields);
    if (requestFields.length === 0) delete metadata.managedFields;
    else metadata.managedFields = requestFields;
  }
  if (object.status?.users === undefined) return { ...object, metadata };
  const status = { ...object.status };
  delete status.users;
  return { ...object, metadata, status };
}
