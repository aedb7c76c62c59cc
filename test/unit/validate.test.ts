import { describe, expect, it } from '@jest/globals';
import { selectUsers } from '../../src/domain/select.js';
import { DEFAULT_ID_RANGE, type IdRange } from '../../src/domain/user.js';
import { validateUsers } from '../../src/domain/validate.js';
import type { WireUser } from '../../src/provider/wire.js';

let serial = 0;
function row(overrides: Partial<WireUser> = {}): WireUser {
  serial++;
  return {
    cluster_id: 'hpc-qig9xu97',
    create_time: '2021-08-17T09:12:40Z',
    update_time: '2021-08-17T09:12:40Z',
    gid_number: String(40000 + serial),
    uid_number: String(40000 + serial),
    hpcuser_id: `hpcuser-${serial}`,
    mod: null,
    nas_mount_point: `/public/shanhe/u${serial}`,
    role: 'member',
    user_id: `usr-${serial}`,
    username: `user${serial}`,
    ...overrides,
  };
}

/** Why one row is skipped: malformed, or outside idRange (the default one unless given). */
function reasonFor(overrides: Partial<WireUser>, idRange: IdRange = DEFAULT_ID_RANGE): string | undefined {
  const result = selectUsers(validateUsers([row(overrides)]), { idRange });
  return result.skipped[0]?.reason;
}

describe('validateUsers', () => {
  it('maps a valid row to the domain type', () => {
    const result = validateUsers([
      row({
        username: 'usr-vceaHsJu',
        uid_number: '41522',
        gid_number: '41523',
        role: 'admin',
        nas_mount_point: '/public/shanhe/s0723',
        user_id: 'usr-vceaHsJu',
        hpcuser_id: 'hpcuser-8a310ir1',
      }),
    ]);
    expect(result).toEqual({
      users: [
        {
          username: 'usr-vceaHsJu',
          uid: 41522,
          gid: 41523,
          role: 'admin',
          nasMountPoint: '/public/shanhe/s0723',
          userId: 'usr-vceaHsJu',
          hpcUserId: 'hpcuser-8a310ir1',
        },
      ],
      skipped: [],
    });
  });

  it('sorts users by username in byte order', () => {
    const names = ['b', 'B', 'a.b', 'a', '_x', '0'];
    const { users } = validateUsers(names.map((username) => row({ username })));
    expect(users.map((u) => u.username)).toEqual(['0', 'B', '_x', 'a', 'a.b', 'b']);
  });

  it.each(['a', 'x'.repeat(32), 'A.b_c-9', '.hidden', '_svc'])('accepts username %j', (username) => {
    expect(reasonFor({ username })).toBeUndefined();
  });

  it.each([
    ['empty', '', 'username is missing'],
    ['null', null, 'username is missing'],
    ['33 characters', 'x'.repeat(33), 'username is longer than 32 characters'],
    ['a leading "-"', '-rf', 'username starts with "-"'],
    ['a colon', 'bad:name', 'username has characters outside [A-Za-z0-9._-]'],
    ['a space', 'a b', 'username has characters outside [A-Za-z0-9._-]'],
    ['a slash', 'a/b', 'username has characters outside [A-Za-z0-9._-]'],
    ['non-ASCII', 'josé', 'username has characters outside [A-Za-z0-9._-]'],
    ['a newline', 'a\nb', 'username has characters outside [A-Za-z0-9._-]'],
    ['a lone dot', '.', 'username "." or starting with ".." cannot name a ConfigMap key'],
    ['a leading ".."', '..x', 'username "." or starting with ".." cannot name a ConfigMap key'],
  ])('skips a username with %s', (_name, username, reason) => {
    expect(reasonFor({ username })).toBe(reason);
  });

  it.each([
    ['missing', null, 'uid is missing'],
    ['signed', '+41522', 'uid "+41522" is not a decimal integer'],
    ['negative', '-5', 'uid "-5" is not a decimal integer'],
    ['fractional', '1000.5', 'uid "1000.5" is not a decimal integer'],
    ['hex', '0x3e8', 'uid "0x3e8" is not a decimal integer'],
    ['padded', ' 41522', 'uid " 41522" is not a decimal integer'],
    ['with a leading zero', '041522', 'uid "041522" is not a decimal integer'],
    ['root', '0', 'uid 0 (root) is never synced'],
    ['below idRange', '999', 'uid 999 is outside idRange 1000-2147483647'],
    ['above the largest id', '2147483648', 'uid 2147483648 is above 2147483647, the largest id synced'],
    ['huge', '9'.repeat(40), `uid ${'9'.repeat(40)} is above 2147483647, the largest id synced`],
  ])('skips a uid that is %s', (_name, uid_number, reason) => {
    expect(reasonFor({ uid_number })).toBe(reason);
  });

  it('checks gid by the same rules', () => {
    expect(reasonFor({ gid_number: 'abc' })).toBe('gid "abc" is not a decimal integer');
    expect(reasonFor({ gid_number: '10' })).toBe('gid 10 is outside idRange 1000-2147483647');
  });

  it('honours a custom idRange, inclusive at both ends', () => {
    const idRange = { min: 5000, max: 6000 };
    expect(reasonFor({ uid_number: '5000', gid_number: '6000' }, idRange)).toBeUndefined();
    expect(reasonFor({ uid_number: '4999', gid_number: '5000' }, idRange)).toBe('uid 4999 is outside idRange 5000-6000');
    expect(reasonFor({ uid_number: '5000', gid_number: '6001' }, idRange)).toBe('gid 6001 is outside idRange 5000-6000');
  });

  it('never syncs uid or gid 0, even when idRange starts at 0', () => {
    const idRange = { min: 0, max: 100 };
    expect(reasonFor({ uid_number: '0', gid_number: '10' }, idRange)).toBe('uid 0 (root) is never synced');
    expect(reasonFor({ uid_number: '10', gid_number: '0' }, idRange)).toBe('gid 0 (root) is never synced');
    expect(reasonFor({ uid_number: '10', gid_number: '10' }, idRange)).toBeUndefined();
  });

  it.each([
    ['missing', null, 'nasMountPoint is missing'],
    ['relative', 'public/x', 'nasMountPoint is not an absolute path'],
    ['with a ".." segment', '/public/../etc', 'nasMountPoint has a ".." segment'],
    ['ending in ".."', '/public/..', 'nasMountPoint has a ".." segment'],
    ['with a colon', '/public/a:b', 'nasMountPoint has ":"'],
    ['with a newline', '/public/a\nroot::0:0', 'nasMountPoint has control characters'],
    ['with a NUL', '/public/a\u0000', 'nasMountPoint has control characters'],
    ['with DEL', '/public/a\u007f', 'nasMountPoint has control characters'],
    ['with a C1 control', '/public/a\u0085', 'nasMountPoint has control characters'],
  ])('skips a nasMountPoint %s', (_name, nas_mount_point, reason) => {
    expect(reasonFor({ nas_mount_point })).toBe(reason);
  });

  it.each(['/', '/public/shanhe/s0723', '/a..b/c', '/public/.hidden', '/public/with space'])(
    'accepts nasMountPoint %j',
    (nas_mount_point) => {
      expect(reasonFor({ nas_mount_point })).toBeUndefined();
    },
  );

  it.each(['boss', 'admin', 'member'])('accepts role %s', (role) => {
    expect(reasonFor({ role })).toBeUndefined();
  });

  it.each([
    ['Admin', 'role "Admin" is not one of boss, admin, member'],
    ['root', 'role "root" is not one of boss, admin, member'],
    [null, 'role null is not one of boss, admin, member'],
  ])('skips role %j', (role, reason) => {
    expect(reasonFor({ role })).toBe(reason);
  });

  it('skips a row without user_id or hpcuser_id', () => {
    expect(reasonFor({ user_id: null })).toBe('user_id is missing');
    expect(reasonFor({ user_id: '' })).toBe('user_id is missing');
    expect(reasonFor({ hpcuser_id: undefined })).toBe('hpcuser_id is missing');
  });

  it('skips every row sharing a uid, and keeps the others', () => {
    const result = validateUsers([
      row({ username: 'alice', uid_number: '5000' }),
      row({ username: 'bob', uid_number: '5000' }),
      row({ username: 'carol', uid_number: '5000' }),
      row({ username: 'dave', uid_number: '5001' }),
    ]);
    expect(result.users.map((u) => u.username)).toEqual(['dave']);
    expect(result.skipped).toEqual([
      { username: 'alice', reason: 'uid 5000 is shared by 3 rows' },
      { username: 'bob', reason: 'uid 5000 is shared by 3 rows' },
      { username: 'carol', reason: 'uid 5000 is shared by 3 rows' },
    ]);
  });

  it('counts a uid claimed by a row that fails another rule', () => {
    const result = validateUsers([
      row({ username: 'alice', uid_number: '5000' }),
      row({ username: 'bad:name', uid_number: '5000' }),
    ]);
    expect(result.users).toEqual([]);
    expect(result.skipped).toEqual([
      { username: 'alice', reason: 'uid 5000 is shared by 2 rows' },
      { username: 'bad:name', reason: 'username has characters outside [A-Za-z0-9._-]' },
    ]);
  });

  it('skips every row of a repeated username', () => {
    const result = validateUsers([
      row({ username: 'alice', uid_number: '5000' }),
      row({ username: 'alice', uid_number: '5001' }),
      row({ username: 'bob', uid_number: '5002' }),
    ]);
    expect(result.users.map((u) => u.username)).toEqual(['bob']);
    expect(result.skipped).toEqual([
      { username: 'alice', reason: 'username appears in 2 rows' },
      { username: 'alice', reason: 'username appears in 2 rows' },
    ]);
  });

  it('lets users share a gid', () => {
    const result = validateUsers([
      row({ username: 'alice', uid_number: '5000', gid_number: '5000' }),
      row({ username: 'bob', uid_number: '5001', gid_number: '5000' }),
    ]);
    expect(result.skipped).toEqual([]);
  });

  it('reports at most 64 characters of a hostile username', () => {
    const { skipped } = validateUsers([row({ username: 'x'.repeat(1000) })]);
    expect(skipped[0]?.username).toBe(`${'x'.repeat(64)}…`);
  });

  it('returns nothing for no rows', () => {
    expect(validateUsers([])).toEqual({ users: [], skipped: [] });
  });
});
