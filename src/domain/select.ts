import type { IdRange, Role } from './user.js';
import { compareSkipped, type ValidatedUsers } from './validate.js';

/**
 * Which users an HpcCluster syncs is decided here and nowhere else: the provider hands over
 * every well-formed row (validateUsers), and the spec's idRange and roles choose among them.
 * A user outside idRange is skipped and reported, as SPEC asks; the role filter only narrows
 * what was asked for, silently.
 */
export interface UserSelection {
  idRange: IdRange;
  roles?: readonly Role[] | undefined;
}

function outsideRange(name: 'uid' | 'gid', id: number, range: IdRange): string | undefined {
  return id < range.min || id > range.max ? `${name} ${id} is outside idRange ${range.min}-${range.max}` : undefined;
}

export function selectUsers(valid: ValidatedUsers, { idRange, roles }: UserSelection): ValidatedUsers {
  const users = [];
  const skipped = [...valid.skipped];
  for (const user of valid.users) {
    const outside = outsideRange('uid', user.uid, idRange) ?? outsideRange('gid', user.gid, idRange);
    if (outside !== undefined) skipped.push({ username: user.username, reason: outside });
    else if (roles === undefined || roles.includes(user.role)) users.push(user);
  }
  return { users, skipped: skipped.sort(compareSkipped) };
}
