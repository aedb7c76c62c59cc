// The KubePort on the apiserver, over a recorded client: what it reads of a Secret and when,
// and what it asks back of a status write.
import { describe, expect, it } from '@jest/globals';
import type { KubernetesObject, V1Secret } from '@kubernetes/client-node';
import { CREDENTIALS_LABEL, CREDENTIALS_LABEL_VALUE } from '../../../src/api/hpccluster.js';
import { KubeApiPort } from '../../../src/controller/kube.js';
import { KubeApiError, MERGE_PATCH, METADATA_ONLY, type KubeClient, type RequestOptions } from '../../../src/kube/client.js';

const KEY = { namespace: 'research', name: 'keys' };
const LENT = { [CREDENTIALS_LABEL]: CREDENTIALS_LABEL_VALUE };
const base64 = (text: string): string => Buffer.from(text).toString('base64');

/** The apiserver's Secret (as a GET answers it) and the metadata watch's view of it, which may lag. */
function setup() {
  let stored: V1Secret | undefined = { metadata: { ...KEY, resourceVersion: '10', labels: LENT }, data: { access_key_id: base64('AKID'), secret_access_key: base64('first') } };
  let watched: KubernetesObject | undefined = { metadata: stored.metadata };
  const gets: { path: string; resourceVersion: string | undefined }[] = [];
  const client = {
    get: (path: string, options?: { query?: { resourceVersion?: string } }) => {
      gets.push({ path, resourceVersion: options?.query?.resourceVersion });
      return stored === undefined ? Promise.reject(new KubeApiError(404, 'NotFound', 'secrets "keys" not found', `GET ${path}`)) : Promise.resolve(stored);
    },
  } as unknown as KubeClient;
  const none = { get: () => undefined };
  const port = new KubeApiPort(client, none, none, { get: (namespace, name) => (namespace === KEY.namespace && name === KEY.name ? watched : undefined) }, 'test');
  /** The Secret changes; the watch shows it at once unless `watchLags`. */
  const update = (secret: V1Secret | undefined, watchLags = false) => {
    stored = secret;
    if (!watchLags) watched = secret === undefined ? undefined : { metadata: secret.metadata };
  };
  return { port, gets, update };
}

describe('KubeApiPort.readSecret', () => {
  it('reads a lent Secret once, and again only when the watch shows a new version', async () => {
    const { port, gets, update } = setup();
    expect(await port.readSecret(KEY)).toEqual({ state: 'lent', data: { access_key_id: 'AKID', secret_access_key: 'first' }, resourceVersion: '10' });
    expect(await port.readSecret(KEY)).toEqual({ state: 'lent', data: { access_key_id: 'AKID', secret_access_key: 'first' }, resourceVersion: '10' });
    // Read no older than the version the watch showed: the apiserver answers from its watch cache.
    expect(gets).toEqual([{ path: '/api/v1/namespaces/research/secrets/keys', resourceVersion: '10' }]);

    update({ metadata: { ...KEY, resourceVersion: '11', labels: LENT }, data: { access_key_id: base64('AKID'), secret_access_key: base64('rotated') } });
    expect(await port.readSecret(KEY)).toMatchObject({ state: 'lent', data: { secret_access_key: 'rotated' }, resourceVersion: '11' });
    expect(gets.map((get) => get.resourceVersion)).toEqual(['10', '11']);
  });

  it('keeps nothing of a Secret that is gone or no longer lent', async () => {
    const { port, gets, update } = setup();
    await port.readSecret(KEY);
    // The label removed: the metadata says so, nothing is read, and what was read is dropped.
    const unlabelled: V1Secret = { metadata: { ...KEY, resourceVersion: '11', labels: {} }, data: { secret_access_key: base64('first') } };
    update(unlabelled);
    expect(await port.readSecret(KEY)).toEqual({ state: 'not-lent' });
    expect(gets).toHaveLength(1);
    // Lent again: read again.
    update({ metadata: { ...KEY, resourceVersion: '12', labels: LENT }, data: { access_key_id: base64('AKID'), secret_access_key: base64('first') } });
    expect(await port.readSecret(KEY)).toMatchObject({ state: 'lent', resourceVersion: '12' });
    expect(gets).toHaveLength(2);

    // Deleted: the watch's delete event drops what was read, and a read finds it gone.
    update(undefined, true);
    port.forgetSecret(KEY);
    expect(await port.readSecret(KEY)).toEqual({ state: 'missing' });
    expect(gets).toHaveLength(3);
    update(undefined);
    expect(await port.readSecret(KEY)).toEqual({ state: 'missing' });
    expect(gets).toHaveLength(3);
  });

  it('decides lending by the Secret as read when the watch lags behind a removed label', async () => {
    const { port, update } = setup();
    update({ metadata: { ...KEY, resourceVersion: '11', labels: {} }, data: { secret_access_key: base64('first') } }, true);
    expect(await port.readSecret(KEY)).toEqual({ state: 'not-lent' });
  });
});

describe('KubeApiPort.writeStatus', () => {
  it('merge-patches status at the version it planned from, and asks only metadata back', async () => {
    const sent: { method: string; path: string; options: RequestOptions }[] = [];
    const client = {
      send: (method: string, path: string, options: RequestOptions) => {
        sent.push({ method, path, options });
        return Promise.resolve();
      },
    } as unknown as KubeClient;
    const none = { get: () => undefined };
    await new KubeApiPort(client, none, none, none, 'test').writeStatus({ namespace: 'research', name: 'lab' }, { userCount: 2 }, '41');
    expect(sent).toEqual([
      {
        method: 'PATCH',
        path: '/apis/hpc.shanhe.com/v1alpha1/namespaces/research/hpcclusters/lab/status',
        options: { body: { metadata: { resourceVersion: '41' }, status: { userCount: 2 } }, contentType: MERGE_PATCH, accept: METADATA_ONLY },
      },
    ]);
  });
});
