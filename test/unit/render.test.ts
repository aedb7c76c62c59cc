import { usersDigestOf } from '../../src/domain/trusted-users.js';
import { describe, expect, it } from '@jest/globals';
import type { HpcUser } from '../../src/domain/user.js';
import {
  configMapManifest,
  configMapSizeProblem,
  contentHashOf,
  parseUsersJson,
  renderConfigMaps,
  summaryOf,
  syncIdOf,
  renderNssData,
  renderUsersData,
  USUAL_MAX_USERS,
} from '../../src/render/configmaps.js';

const alice: HpcUser = { username: 'alice', uid: 41522, gid: 41522, role: 'member', nasMountPoint: '/public/shanhe/s0723', userId: 'usr-a', hpcUserId: 'hpcuser-a' };
const bob: HpcUser = { username: 'bob', uid: 41523, gid: 41522, role: 'admin', nasMountPoint: '/public/shanhe/bob', userId: 'usr-b', hpcUserId: 'hpcuser-b' };
const carol: HpcUser = { username: 'carol', uid: 41524, gid: 50000, role: 'boss', nasMountPoint: '/public/carol', userId: 'usr-c', hpcUserId: 'hpcuser-c' };

describe('renderUsersData', () => {
  it('writes users.json sorted by username and one key per user field', () => {
    const data = renderUsersData([bob, alice]);
    expect(JSON.parse(data['users.json'] ?? '')).toEqual([alice, bob]);
    expect(data).toMatchObject({ 'alice.uid': '41522', 'alice.gid': '41522', 'alice.nas': '/public/shanhe/s0723', 'bob.uid': '41523' });
    expect(Object.keys(data)).toHaveLength(1 + 2 * 3);
  });

  it('is byte-identical whatever the input order', () => {
    expect(renderUsersData([carol, alice, bob])).toEqual(renderUsersData([bob, carol, alice]));
    expect(contentHashOf(renderUsersData([carol, alice, bob]))).toBe(contentHashOf(renderUsersData([alice, bob, carol])));
  });
});

describe('renderNssData', () => {
  it('writes passwd lines in SPEC form', () => {
    expect(renderNssData([bob, alice]).passwd).toBe(
      'alice:x:41522:41522:member:/public/shanhe/s0723:/bin/sh\nbob:x:41523:41522:admin:/public/shanhe/bob:/bin/sh\n',
    );
  });

  it('names a group after the user whose uid is the gid, else hpc<gid>, one line per gid', () => {
    expect(renderNssData([carol, bob, alice]).group).toBe('alice:x:41522:alice,bob\nhpc50000:x:50000:carol\n');
  });

  it('renders empty files for no users', () => {
    expect(renderNssData([])).toEqual({ group: '', passwd: '' });
  });
});

describe('contentHashOf', () => {
  it('changes when a value or a key changes', () => {
    const base = contentHashOf({ a: '1', b: '2' });
    expect(contentHashOf({ a: '1', b: '3' })).not.toBe(base);
    expect(contentHashOf({ a: '1', c: '2' })).not.toBe(base);
    expect(contentHashOf({ a: '12', b: '' })).not.toBe(contentHashOf({ a: '1', b: '2' }));
  });
});

describe('renderConfigMaps', () => {
  it('names the two ConfigMaps after the resource and counts their bytes', () => {
    const [users, nss] = renderConfigMaps('chem-lab', [alice]);
    expect(users?.name).toBe('chem-lab-users');
    expect(nss?.name).toBe('chem-lab-nss');
    const expectedSize = Object.entries(users?.data ?? {}).reduce((n, [k, v]) => n + Buffer.byteLength(k) + Buffer.byteLength(v), 0);
    expect(users?.size).toBe(expectedSize);
  });

  it('gives both ConfigMaps the sync id syncIdOf works out from users.json alone', () => {
    const [users, nss] = renderConfigMaps('chem-lab', [alice]);
    expect(syncIdOf([alice])).toBe(users?.syncId);
    expect(nss?.syncId).toBe(users?.syncId);
    expect(syncIdOf([{ ...alice, uid: alice.uid + 1 }])).not.toBe(users?.syncId);
    expect(summaryOf(users!)).toEqual({ name: 'chem-lab-users', contentHash: users?.contentHash, size: users?.size, syncId: users?.syncId });
  });

  it('fits the users of the usual size the README promises, and names the filter to use past the limit', () => {
    const usual = (count: number): HpcUser[] =>
      Array.from({ length: count }, (_, i) => {
        const username = `usr-${String(i).padStart(8, '0')}`;
        const uid = 10_000 + i;
        return { username, uid, gid: uid, role: 'member', nasMountPoint: `/public/shanhe/${username}`, userId: username, hpcUserId: `hpcuser-${String(i).padStart(8, '0')}` };
      });
    expect(configMapSizeProblem(renderConfigMaps('chem-lab', usual(USUAL_MAX_USERS)))).toBeUndefined();
    const problem = configMapSizeProblem(renderConfigMaps('chem-lab', usual(USUAL_MAX_USERS + 200)));
    expect(problem).toMatch(/^ConfigMap chem-lab-users would hold \d+ bytes, over the 1048576-byte limit/);
    expect(problem).toContain('spec.filter.searchWord');
  });

  it('builds the manifest with labels, the content hash, the sync id and a controller ownerReference', () => {
    const [users, nss] = renderConfigMaps('chem-lab', [alice]);
    if (users === undefined || nss === undefined) throw new Error('no ConfigMaps');
    // One sync id for both: the sha256 of the users.json, as status.usersDigest records it.
    expect(users.syncId).toBe(usersDigestOf(users.data['users.json'] ?? ''));
    expect(nss.syncId).toBe(users.syncId);
    expect(renderConfigMaps('chem-lab', [alice, bob])[1]?.syncId).not.toBe(users.syncId);
    const manifest = configMapManifest({ name: 'chem-lab', namespace: 'research', uid: 'uid-1' }, users);
    expect(manifest.metadata).toEqual({
      name: 'chem-lab-users',
      namespace: 'research',
      labels: { 'app.kubernetes.io/managed-by': 'hpc-user-operator', 'hpc.shanhe.com/cluster': 'chem-lab' },
      annotations: { 'hpc.shanhe.com/content-hash': users.contentHash, 'hpc.shanhe.com/sync-id': users.syncId },
      ownerReferences: [{ apiVersion: 'hpc.shanhe.com/v1alpha1', kind: 'HpcCluster', name: 'chem-lab', uid: 'uid-1', controller: true, blockOwnerDeletion: true }],
    });
    expect(configMapManifest({ name: 'chem-lab', namespace: 'research' }, users).metadata.ownerReferences).toBeUndefined();
  });
});

describe('parseUsersJson', () => {
  it('reads back what renderUsersData wrote', () => {
    expect(parseUsersJson(renderUsersData([bob, alice])['users.json'])).toEqual([alice, bob]);
  });

  it.each([undefined, '', 'not json', '{"a":1}', '[{"username":"x"}]'])('returns undefined for %j', (text) => {
    expect(parseUsersJson(text)).toBeUndefined();
  });
});
