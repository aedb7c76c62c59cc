import { describe, expect, it } from '@jest/globals';
import { describeDiff, diffUsers, isEmptyDiff, removalExceedsLimit } from '../../src/domain/diff.js';
import type { HpcUser } from '../../src/domain/user.js';

const user = (username: string, uid: number, over: Partial<HpcUser> = {}): HpcUser => ({
  username, uid, gid: uid, role: 'member', nasMountPoint: `/home/${username}`, userId: `usr-${username}`, hpcUserId: `hpcuser-${username}`, ...over,
});

describe('diffUsers', () => {
  it('finds added, removed and changed users by username', () => {
    const before = [user('a', 1001), user('b', 1002), user('c', 1003)];
    const after = [user('a', 1001), user('c', 1003, { nasMountPoint: '/elsewhere' }), user('d', 1004)];
    expect(diffUsers(before, after)).toEqual({ added: ['d'], removed: ['b'], changed: ['c'] });
  });

  it('is empty for the same users in another order', () => {
    expect(isEmptyDiff(diffUsers([user('a', 1001), user('b', 1002)], [user('b', 1002), user('a', 1001)]))).toBe(true);
  });
});

describe('removalExceedsLimit', () => {
  it.each([
    [10, 5, 50, false],
    [10, 6, 50, true],
    [10, 10, 100, false],
    [0, 0, 0, false],
    [3, 1, 0, true],
  ])('%i synced, %i removed, limit %i%% → held: %s', (previous, removed, limit, held) => {
    expect(removalExceedsLimit(previous, removed, limit)).toBe(held);
  });
});

describe('describeDiff', () => {
  it('names users per part and counts the rest', () => {
    expect(describeDiff({ added: ['a', 'b', 'c'], removed: ['x'], changed: [] }, 2)).toBe('3 added (a, b, +1 more), 1 removed (x)');
  });
});
