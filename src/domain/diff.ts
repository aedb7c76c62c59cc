import type { HpcUser } from './user.js';

/** Usernames added, removed and changed between two user lists. */
export interface UserDiff {
  added: string[];
  removed: string[];
  changed: string[];
}

const sameUser = (a: HpcUser, b: HpcUser): boolean =>
  a.uid === b.uid &&
  a.gid === b.gid &&
  a.role === b.role &&
  a.nasMountPoint === b.nasMountPoint &&
  a.userId === b.userId &&
  a.hpcUserId === b.hpcUserId;

export function diffUsers(before: readonly HpcUser[], after: readonly HpcUser[]): UserDiff {
  const previous = new Map(before.map((u) => [u.username, u]));
  const diff: UserDiff = { added: [], removed: [], changed: [] };
  for (const user of after) {
    const old = previous.get(user.username);
    if (old === undefined) diff.added.push(user.username);
    else if (!sameUser(old, user)) diff.changed.push(user.username);
    previous.delete(user.username);
  }
  diff.removed = [...previous.keys()];
  for (const list of [diff.added, diff.removed, diff.changed]) list.sort();
  return diff;
}

export const isEmptyDiff = (d: UserDiff): boolean => d.added.length + d.removed.length + d.changed.length === 0;

/**
 * The mass-removal guard: true when removing `removed` of `previous` synced users exceeds
 * `maxPercent`. Nothing synced before means nothing can be removed.
 */
export function removalExceedsLimit(previous: number, removed: number, maxPercent: number): boolean {
  return previous > 0 && removed * 100 > maxPercent * previous;
}

/** "2 added (a, b), 1 removed (c)": for events, naming at most `maxNames` users per part. */
export function describeDiff(d: UserDiff, maxNames = 10): string {
  const part = (verb: string, names: string[]): string | undefined => {
    if (names.length === 0) return undefined;
    const shown = names.slice(0, maxNames).join(', ');
    const more = names.length > maxNames ? `, +${names.length - maxNames} more` : '';
    return `${names.length} ${verb} (${shown}${more})`;
  };
  return [part('added', d.added), part('removed', d.removed), part('changed', d.changed)]
    .filter((p): p is string => p !== undefined)
    .join(', ');
}
