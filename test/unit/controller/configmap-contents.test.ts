// What the operator's ConfigMaps hold, known without keeping their data: which versions are
// vouched for, what a ConfigMap read whole must hold to be in order, and the writes in flight.
import { describe, expect, it } from '@jest/globals';
import type { HpcClusterObject } from '../../../src/api/hpccluster.js';
import { cachedConfigMap } from '../../../src/controller/cached-objects.js';
import {
  ConfigMapLedger,
  contentsClaimed,
  contentsInOrder,
  contentsOfData,
  mayBeAnHpcClustersConfigMap,
  roleOf,
  versionsWorthRecording,
  vouchedContents,
} from '../../../src/controller/configmap-contents.js';
import { usersDigestOf } from '../../../src/domain/trusted-users.js';
import { CONTENT_HASH_ANNOTATION, configMapManifest, contentHashOf, renderConfigMaps, SYNC_ID_ANNOTATION } from '../../../src/render/configmaps.js';

const [usersCm, nssCm] = renderConfigMaps('c', [{ username: 'a', uid: 1001, gid: 1001, role: 'member', nasMountPoint: '/h/a', userId: 'u', hpcUserId: 'h' }]);
if (usersCm === undefined || nssCm === undefined) throw new Error('rendered nothing');
const written = configMapManifest({ name: 'c', namespace: 'ns', uid: 'uid-1' }, usersCm);
const annotations = written.metadata.annotations;
const owner = (usersDigest?: string): Pick<HpcClusterObject, 'status'> => ({ status: usersDigest === undefined ? {} : { usersDigest } });
const KEY = { namespace: 'ns', name: 'c-users' };

describe('what a ConfigMap holds', () => {
  it('read whole: the hash of its data and of its users.json; claimed: what the operator wrote says the same', () => {
    const read = contentsOfData(written.data);
    expect(read).toEqual({ dataHash: contentHashOf(written.data), usersDigest: usersDigestOf(written.data['users.json'] ?? '') });
    expect(contentsClaimed(annotations, 'users')).toEqual(read);
    expect(contentsOfData(nssCm.data).usersDigest).toBeUndefined();
    expect(contentsClaimed({ [SYNC_ID_ANNOTATION]: 'x' }, 'users')).toBeUndefined();
    expect([roleOf('c-users', 'c'), roleOf('c-nss', 'c'), roleOf('c-other', 'c')]).toEqual(['users', 'nss', undefined]);
  });

  it('tells the names an HpcCluster\'s ConfigMap may have (the cache keeps those, anyone\'s) from the rest', () => {
    const names = ['lab-users', 'lab-nss', 'a-b-users', '-users', 'users', 'nss', 'lab-users-old', 'kube-root-ca.crt', 'lab-nss.bak'];
    expect(names.filter(mayBeAnHpcClustersConfigMap)).toEqual(['lab-users', 'lab-nss', 'a-b-users']);
  });

  it('believes annotations only at a version this process knows or status records as written', () => {
    const known = contentsOfData(written.data);
    const at = (resourceVersion: string) => ({ resourceVersion, annotations });
    expect(vouchedContents(at('7'), 'users', known, undefined)).toBe(known);
    expect(vouchedContents(at('7'), 'users', undefined, { configMapVersions: { users: '7' } })).toEqual(known);
    // Another version, or the other ConfigMap's: the annotations may be anyone's.
    expect(vouchedContents(at('8'), 'users', undefined, { configMapVersions: { users: '7' } })).toBeUndefined();
    expect(vouchedContents(at('7'), 'users', undefined, { configMapVersions: { nss: '7' } })).toBeUndefined();
    expect(vouchedContents(at('7'), 'users', undefined, undefined)).toBeUndefined();
  });

  it("is in order read whole when unedited and of the sync status names, whatever its annotations claim", () => {
    const digest = usersCm.syncId;
    expect(contentsInOrder(annotations, contentsOfData(written.data), 'users', owner(digest))).toBe(true);
    // A forged users.json with a content hash to match and the real sync id.
    const forged = { ...written.data, 'users.json': '[]\n' };
    const forgedAnnotations = { ...annotations, [CONTENT_HASH_ANNOTATION]: contentHashOf(forged) };
    expect(contentsInOrder(forgedAnnotations, contentsOfData(forged), 'users', owner(digest))).toBe(false);
    // An edit without a matching hash; a sync id that is not status's (half-written pair, another's write).
    expect(contentsInOrder(annotations, contentsOfData({ ...written.data, 'a.uid': '0' }), 'users', owner(digest))).toBe(false);
    expect(contentsInOrder({ ...annotations, [SYNC_ID_ANNOTATION]: 'x' }, contentsOfData(written.data), 'users', owner(digest))).toBe(false);
    // Nothing vouched for before a first sync, which writes it anyway.
    expect(contentsInOrder(annotations, contentsOfData(written.data), 'users', owner())).toBe(true);
  });
});

describe('versionsWorthRecording', () => {
  it("records the versions of the owner's own ConfigMaps whose annotations tell their contents truly", () => {
    const state = { resourceVersion: '7', ...contentsOfData(written.data), annotations, ownerReferences: [{ uid: 'uid-1', controller: true }] };
    expect(versionsWorthRecording({ users: state }, 'uid-1')).toEqual({ users: '7' });
    // Not the owner's, contents unknown, or annotations that do not tell the data it holds.
    expect(versionsWorthRecording({ users: state }, 'uid-2')).toEqual({});
    expect(versionsWorthRecording({ users: { ...state, dataHash: undefined } }, 'uid-1')).toEqual({});
    expect(versionsWorthRecording({ users: { ...state, usersDigest: usersDigestOf('[]\n') } }, 'uid-1')).toEqual({});
    expect(versionsWorthRecording({ nss: { ...state, ...contentsOfData(nssCm.data) } }, 'uid-1')).toEqual({});
  });
});

describe('ConfigMapLedger', () => {
  const contents = contentsOfData(written.data);

  it('knows a written version from its answer on, and a read version, and nothing else', () => {
    const ledger = new ConfigMapLedger();
    ledger.writing(KEY, contents, annotations[SYNC_ID_ANNOTATION], '3');
    expect(ledger.at(KEY, undefined)).toBeUndefined();
    ledger.written(KEY, '4');
    expect(ledger.at(KEY, '4')).toBe(contents);
    expect(ledger.at(KEY, '3')).toBeUndefined();
    ledger.read(KEY, '5', contentsOfData(nssCm.data));
    expect(ledger.at(KEY, '4')).toBeUndefined();
    expect(ledger.at(KEY, '5')?.dataHash).toBe(contentHashOf(nssCm.data));
    ledger.forget(KEY);
    expect(ledger.at(KEY, '5')).toBeUndefined();
  });

  it('takes a watched version for a write in flight only when it is the replaced one or carries what is written; the answer says which', async () => {
    const ledger = new ConfigMapLedger();
    ledger.writing(KEY, contents, annotations[SYNC_ID_ANNOTATION], '3');
    const cached = (resourceVersion: string, with_ = annotations) => cachedConfigMap({ metadata: { ...written.metadata, resourceVersion, annotations: with_ } });
    const write = ledger.inFlight(KEY, cached('4').metadata);
    expect(write?.replacing).toBe('3');
    expect(ledger.inFlight(KEY, cached('3', {}).metadata)).toBe(write);
    expect(ledger.inFlight(KEY, cached('4', { ...annotations, [SYNC_ID_ANNOTATION]: 'x' }).metadata)).toBeUndefined();
    // A read during the write does not replace what it is about to know.
    ledger.read(KEY, '9', contentsOfData(nssCm.data));
    ledger.written(KEY, '4');
    expect(await write?.answer).toBe('4');
    expect(ledger.inFlight(KEY, cached('4').metadata)).toBeUndefined();
    expect(ledger.at(KEY, '4')).toBe(contents);
    // A failed write settles its answer with nothing and knows nothing.
    ledger.writing(KEY, contents, annotations[SYNC_ID_ANNOTATION], '4');
    const failed = ledger.inFlight(KEY, cached('5').metadata);
    ledger.written(KEY, undefined);
    expect(await failed?.answer).toBeUndefined();
    expect(ledger.at(KEY, '4')).toBeUndefined();
  });

  it('caches a ConfigMap as typed, slim metadata: no data, no managedFields, only the controller reference', () => {
    const other = { apiVersion: 'v1', kind: 'Pod', name: 'p', uid: 'uid-2' };
    const cached = cachedConfigMap({
      ...written,
      metadata: { ...written.metadata, resourceVersion: '7', managedFields: [{ manager: 'x' }], ownerReferences: [other, ...(written.metadata.ownerReferences ?? [])] },
    });
    expect(cached).toEqual({
      metadata: { name: 'c-users', namespace: 'ns', resourceVersion: '7', labels: written.metadata.labels, annotations, ownerReferences: written.metadata.ownerReferences },
    });
  });
});
