import { describe, expect, it } from '@jest/globals';
import { selectUsers } from '../../src/domain/select.js';
import type { HpcUser, Role } from '../../src/domain/user.js';

const user = (username: string, uid: number, role: Role = 'member', gid = uid): HpcUser => ({
  username,
  uid,
  gid,
  role,
  nasMountPoint: `/h/${username}`,
  userId: `usr-${username}`,
  hpcUserId: `hpcuser-${username}`,
});

describe('selectUsers', () => {
  const valid = {
    users: [user('ann', 1500, 'admin'), user('ben', 999), user('cat', 2500, 'member'), user('dan', 1600, 'boss', 3000)],
    skipped: [{ username: 'bad:name', reason: 'username has characters outside [A-Za-z0-9._-]' }],
  };

  it('skips and reports users outside idRange, uid first, keeping the malformed rows in order', () => {
    const result = selectUsers(valid, { idRange: { min: 1000, max: 2000 } });
    expect(result.users.map((u) => u.username)).toEqual(['ann']);
    expect(result.skipped).toEqual([
      { username: 'bad:name', reason: 'username has characters outside [A-Za-z0-9._-]' },
      { username: 'ben', reason: 'uid 999 is outside idRange 1000-2000' },
      { username: 'cat', reason: 'uid 2500 is outside idRange 1000-2000' },
      { username: 'dan', reason: 'gid 3000 is outside idRange 1000-2000' },
    ]);
  });

  it('keeps only the roles asked for, silently, after the idRange', () => {
    const result = selectUsers(valid, { idRange: { min: 1000, max: 5000 }, roles: ['member', 'boss'] });
    expect(result.users.map((u) => u.username)).toEqual(['cat', 'dan']);
    expect(result.skipped.map((s) => s.username)).toEqual(['bad:name', 'ben']);
  });

  it('keeps every role when none is asked for', () => {
    expect(selectUsers(valid, { idRange: { min: 1, max: 5000 } }).users).toHaveLength(4);
  });
});
