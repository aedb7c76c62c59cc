import { createHash } from 'node:crypto';
import { describe, expect, it } from '@jest/globals';
import { trustedUsersJson, usersDigestOf, usersTrusted } from '../../src/domain/trusted-users.js';
import { nextStatus } from '../../src/controller/status.js';
import { renderUsersData, syncIdOf, USERS_JSON_KEY } from '../../src/render/configmaps.js';
import type { HpcUser } from '../../src/domain/user.js';

const ann: HpcUser = { username: 'ann', uid: 30001, gid: 30001, role: 'member', nasMountPoint: '/public/ann', userId: 'usr-ann', hpcUserId: 'hpcuser-ann' };
const text = renderUsersData([ann])[USERS_JSON_KEY] ?? '';
const owner = { uid: 'uid-1', usersDigest: usersDigestOf(text) };
const controlledBy = (uid: string) => [{ uid, controller: true }];

describe('trustedUsersJson', () => {
  it('trusts the owner\'s own ConfigMap when its users.json hashes to status.usersDigest', () => {
    expect(usersDigestOf(text)).toBe(createHash('sha256').update(text).digest('hex'));
    expect(trustedUsersJson(owner, { ownerReferences: controlledBy('uid-1'), usersJson: text })).toBe(text);
  });

  it('refuses an edited users.json', () => {
    const edited = text.replace('30001', '0');
    expect(trustedUsersJson(owner, { ownerReferences: controlledBy('uid-1'), usersJson: edited })).toBeUndefined();
  });

  it('refuses a look-alike the HpcCluster does not control, even with the same text', () => {
    expect(trustedUsersJson(owner, { ownerReferences: controlledBy('uid-2'), usersJson: text })).toBeUndefined();
    expect(trustedUsersJson(owner, { ownerReferences: [{ uid: 'uid-1', controller: false }], usersJson: text })).toBeUndefined();
    expect(trustedUsersJson(owner, { usersJson: text })).toBeUndefined();
  });

  it('trusts nothing before the first sync wrote a digest, or without a ConfigMap', () => {
    expect(trustedUsersJson({ uid: 'uid-1' }, { ownerReferences: controlledBy('uid-1'), usersJson: text })).toBeUndefined();
    expect(trustedUsersJson(owner, undefined)).toBeUndefined();
  });

  it('is the sync id a synced status records, so status and ConfigMap agree', () => {
    const status = nextStatus(undefined, 1, { reason: 'Synced', users: [ann], skipped: [], usersDigest: syncIdOf([ann]) }, new Date(0), []);
    expect(status.usersDigest).toBe(owner.usersDigest);
  });
});

describe('usersTrusted', () => {
  const digest = usersDigestOf(text);

  it('trusts a known digest without the text: the owner\'s own ConfigMap, at the digest status records', () => {
    expect(usersTrusted(owner, { ownerReferences: controlledBy('uid-1'), usersDigest: digest })).toBe(true);
  });

  it('refuses another digest, another controller, an unknown digest, and everything before a first sync', () => {
    expect(usersTrusted(owner, { ownerReferences: controlledBy('uid-1'), usersDigest: usersDigestOf(`${text} `) })).toBe(false);
    expect(usersTrusted(owner, { ownerReferences: controlledBy('uid-2'), usersDigest: digest })).toBe(false);
    expect(usersTrusted(owner, { ownerReferences: controlledBy('uid-1') })).toBe(false);
    expect(usersTrusted({ uid: 'uid-1' }, { ownerReferences: controlledBy('uid-1'), usersDigest: digest })).toBe(false);
    expect(usersTrusted(owner, undefined)).toBe(false);
  });
});
