import type { V1ConfigMap } from '@kubernetes/client-node';
import { contentHashOf, USERS_JSON_KEY } from '../render/configmaps.js';

/**
 * The operator's own ConfigMaps as its cache keeps them. A users ConfigMap of 1,000 users has
 * some 3,000 keys, and both ConfigMaps of every HpcCluster are cached; all the controller needs
 * of them is the hash of what they hold (drift, and whether a write is due) and the last good
 * users.json (the diff and the removal guard). The hash is kept under a key no real ConfigMap
 * can have (keys are made of [-._a-zA-Z0-9]); managedFields, which list every key again, go.
 */
const OBSERVED_HASH_KEY = '#observed-content-hash';

export function slimConfigMap(cm: V1ConfigMap): V1ConfigMap {
  const data = cm.data ?? {};
  const usersJson = data[USERS_JSON_KEY];
  const metadata = { ...cm.metadata };
  delete metadata.managedFields;
  return {
    ...cm,
    metadata,
    data: { [OBSERVED_HASH_KEY]: contentHashOf(data), ...(usersJson === undefined ? {} : { [USERS_JSON_KEY]: usersJson }) },
  };
}

/** The content hash of the data a cached (slimmed) ConfigMap held. */
export function observedContentHash(cm: V1ConfigMap): string | undefined {
  return cm.data?.[OBSERVED_HASH_KEY];
}
