import { randomBytes } from 'node:crypto';
import type { CoreV1Event, KubernetesObject, V1ConfigMap, V1Secret } from '@kubernetes/client-node';
import { API_VERSION, GROUP, isLentToOperator, KIND, PLURAL, VERSION, type HpcClusterObject, type HpcClusterStatus } from '../api/hpccluster.js';
import { PROVIDER_RATE_LIMIT_ANNOTATION } from '../budget/declared-rate.js';
import { USERS_JSON_KEY, type ConfigMapManifest } from '../render/configmaps.js';
import { contentsOfData } from './configmap-contents.js';
import { cachedConfigMap, type CachedConfigMap } from './cached-objects.js';
import { isNotFound, MERGE_PATCH, METADATA_ONLY, type KubeClient } from '../kube/client.js';
import { keyOf, type ObjectKey } from './object-key.js';
import type { ConfigMapState, StatusPatch } from './plan.js';
import type { KubePort } from './reconcile.js';
import type { SecretRead } from './sync.js';

/** Reads a cached object by namespace and name (an informer's cache). */
export interface ObjectCache<T> {
  get(namespace: string, name: string): T | undefined;
}

export const COMPONENT = 'hpc-user-operator';
/** Events longer than this are cut; the apiserver refuses messages above 1 KiB. */
const MAX_EVENT_MESSAGE = 1024;

const configMapPath = (namespace: string, name?: string): string => `/api/v1/namespaces/${namespace}/configmaps${name === undefined ? '' : `/${name}`}`;

/**
 * A read of a version at least as new as `resourceVersion`: the apiserver answers it from its
 * watch cache instead of a quorum read of etcd, and never older than what this process saw.
 * Without one, the latest version (from etcd).
 */
const notOlderThanQuery = (resourceVersion: string | undefined): { query?: { resourceVersion: string } } =>
  resourceVersion === undefined ? {} : { query: { resourceVersion } };

/** What the reconcile reads of a ConfigMap's metadata. */
function configMapState(cm: CachedConfigMap): ConfigMapState {
  const meta = cm.metadata;
  return {
    resourceVersion: meta.resourceVersion,
    labels: meta.labels,
    annotations: meta.annotations,
    ownerReferences: meta.ownerReferences.map((ref) => ({ uid: ref.uid, controller: ref.controller === true, kind: ref.kind, name: ref.name })),
  };
}

/** The KubePort on a real apiserver: reads from informer caches, writes through the API. */
export class KubeApiPort implements KubePort {
  constructor(
    private readonly client: KubeClient,
    private readonly hpcClusters: ObjectCache<HpcClusterObject>,
    private readonly configMaps: ObjectCache<CachedConfigMap>,
    /** Secrets' metadata only: whether one is lent to the operator is known before its data is read. */
    private readonly secrets: ObjectCache<KubernetesObject>,
    private readonly instance: string,
  ) {}

  /**
   * Each lent Secret's data as last read, with its resourceVersion: a reconcile of a Secret the
   * watch shows unchanged reads nothing. Dropped when the Secret goes or is no longer lent.
   */
  private readonly secretData = new Map<string, { data: Readonly<Record<string, string>>; resourceVersion: string }>();

  getHpcCluster(key: ObjectKey): HpcClusterObject | undefined {
    return this.hpcClusters.get(key.namespace, key.name);
  }

  getConfigMap(key: ObjectKey): ConfigMapState | undefined {
    const cm = this.configMaps.get(key.namespace, key.name);
    return cm === undefined ? undefined : configMapState(cm);
  }

  async readConfigMap(key: ObjectKey, notOlderThan: string | undefined): Promise<ConfigMapState | undefined> {
    try {
      const cm = await this.client.get<V1ConfigMap>(configMapPath(key.namespace, key.name), notOlderThanQuery(notOlderThan));
      const data = cm.data ?? {};
      const usersJson = data[USERS_JSON_KEY];
      return { ...configMapState(cachedConfigMap(cm)), ...contentsOfData(data), ...(usersJson === undefined ? {} : { usersJson }) };
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  async readHpcClusterStatus(key: ObjectKey): Promise<HpcClusterStatus | undefined> {
    try {
      return (await this.client.get<HpcClusterObject>(`/apis/${GROUP}/${VERSION}/namespaces/${key.namespace}/${PLURAL}/${key.name}`)).status;
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  async readSecret(key: ObjectKey): Promise<SecretRead> {
    const metadata = this.secrets.get(key.namespace, key.name)?.metadata;
    if (metadata === undefined || !isLentToOperator(metadata.labels)) {
      this.forgetSecret(key);
      return { state: metadata === undefined ? 'missing' : 'not-lent' };
    }
    // The key's declared rate is metadata, from the cache like the label above.
    const providerRateLimit = metadata.annotations?.[PROVIDER_RATE_LIMIT_ANNOTATION];
    const rate = providerRateLimit === undefined ? {} : { providerRateLimit };
    // The watch says the Secret is still the version read: its data is too.
    const known = this.secretData.get(keyOf(key));
    if (known !== undefined && known.resourceVersion === metadata.resourceVersion) return { state: 'lent', ...known, ...rate };
    let secret: V1Secret;
    try {
      // At least as new as the cache's version: the apiserver answers from its watch cache.
      secret = await this.client.get<V1Secret>(`/api/v1/namespaces/${key.namespace}/secrets/${key.name}`, notOlderThanQuery(metadata.resourceVersion));
    } catch (err) {
      if (isNotFound(err)) {
        this.forgetSecret(key);
        return { state: 'missing' };
      }
      throw err;
    }
    // The label may have gone since the cache saw it: the Secret as read decides.
    if (!isLentToOperator(secret.metadata?.labels)) {
      this.forgetSecret(key);
      return { state: 'not-lent' };
    }
    const data: Record<string, string> = {};
    for (const [k, v] of Object.entries(secret.data ?? {})) data[k] = Buffer.from(v, 'base64').toString('utf8');
    for (const [k, v] of Object.entries(secret.stringData ?? {})) data[k] = v;
    const read = { data: Object.freeze(data), resourceVersion: secret.metadata?.resourceVersion ?? '' };
    this.secretData.set(keyOf(key), read);
    return { state: 'lent', ...read, ...rate };
  }

  /** Drops what was read of a Secret that is gone or no longer lent. */
  forgetSecret(key: ObjectKey): void {
    this.secretData.delete(keyOf(key));
  }

  async writeConfigMap(manifest: ConfigMapManifest, existing: ConfigMapState | undefined): Promise<string> {
    const { namespace, name } = manifest.metadata;
    // The answer is the object written: its metadata (the version it got) is all that is read.
    const written = (answer: KubernetesObject): string => answer.metadata?.resourceVersion ?? '';
    if (existing === undefined) {
      return written(await this.client.request<KubernetesObject>('POST', configMapPath(namespace), { body: manifest, accept: METADATA_ONLY }));
    }
    // Keep labels and annotations others added; the data is ours alone and is replaced whole.
    const body: V1ConfigMap = {
      ...manifest,
      metadata: {
        ...manifest.metadata,
        labels: { ...existing.labels, ...manifest.metadata.labels },
        annotations: { ...existing.annotations, ...manifest.metadata.annotations },
        ...(existing.resourceVersion === undefined ? {} : { resourceVersion: existing.resourceVersion }),
      },
    };
    return written(await this.client.request<KubernetesObject>('PUT', configMapPath(namespace, name), { body, accept: METADATA_ONLY }));
  }

  async writeStatus(key: ObjectKey, status: StatusPatch, resourceVersion: string | undefined): Promise<void> {
    await this.client.send('PATCH', `/apis/${GROUP}/${VERSION}/namespaces/${key.namespace}/${PLURAL}/${key.name}/status`, {
      body: { ...(resourceVersion === undefined ? {} : { metadata: { resourceVersion } }), status },
      contentType: MERGE_PATCH,
      // The answer is not read: asked as metadata, the apiserver neither encodes nor sends the
      // status back (150 KB with 1,000 users).
      accept: METADATA_ONLY,
    });
  }

  async recordEvent(object: HpcClusterObject, type: 'Normal' | 'Warning', reason: string, message: string): Promise<void> {
    const namespace = object.metadata.namespace ?? 'default';
    const now = new Date();
    const body: CoreV1Event = {
        metadata: { name: `${object.metadata.name ?? 'hpccluster'}.${randomBytes(8).toString('hex')}`, namespace },
        involvedObject: {
          apiVersion: API_VERSION,
          kind: KIND,
          name: object.metadata.name ?? '',
          namespace,
          ...(object.metadata.uid === undefined ? {} : { uid: object.metadata.uid }),
          ...(object.metadata.resourceVersion === undefined ? {} : { resourceVersion: object.metadata.resourceVersion }),
        },
        type,
        reason,
        message: message.length > MAX_EVENT_MESSAGE ? `${message.slice(0, MAX_EVENT_MESSAGE - 1)}…` : message,
        source: { component: COMPONENT },
        reportingComponent: COMPONENT,
        reportingInstance: this.instance,
        firstTimestamp: now,
        lastTimestamp: now,
        count: 1,
      };
    await this.client.send('POST', `/api/v1/namespaces/${namespace}/events`, { body: { apiVersion: 'v1', kind: 'Event', ...body } });
  }
}
