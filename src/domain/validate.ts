import type { WireUser } from '../provider/wire.js';
import { MAX_SYNCED_ID, ROLES, type HpcUser, type Role, type SkippedUser } from './user.js';

/**
 * SPEC "Validation of what the API returns": every row is checked before it reaches a file
 * or a pod. A row breaking a rule is skipped with the first rule it breaks; a row without
 * `user_id` or `hpcuser_id` is skipped too, since status and `users.json` carry both.
 * Rows sharing a uid, or a username, are all skipped, including rows already skipped for
 * another reason: that a second row claims the uid makes the first one ambiguous.
 */

const USERNAME = /^[A-Za-z0-9._][A-Za-z0-9._-]{0,31}$/;
/** Decimal digits without sign or leading zero, so "041522" cannot be read as octal. */
const DECIMAL = /^(0|[1-9][0-9]*)$/;
// eslint-disable-next-line no-control-regex -- control characters are exactly what is refused
const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f-\u009f]/;
/** Long enough to recognise a row; a hostile value cannot bloat status. */
const MAX_REPORTED_USERNAME = 64;

export interface ValidatedUsers {
  /** Sorted by username (code-unit order, the same as byte order for valid names). */
  users: HpcUser[];
  /** Sorted by username, then reason. */
  skipped: SkippedUser[];
}

type RowCheck = { ok: true; user: HpcUser } | { ok: false; reason: string };

function checkUsername(username: string | null | undefined): string | undefined {
  if (username === null || username === undefined || username === '') return 'username is missing';
  if (username.length > 32) return 'username is longer than 32 characters';
  if (username.startsWith('-')) return 'username starts with "-"';
  if (!USERNAME.test(username)) return 'username has characters outside [A-Za-z0-9._-]';
  // `<username>.uid` must be a valid ConfigMap key, and no key may start with "..".
  if (username === '.' || username.startsWith('..')) return 'username "." or starting with ".." cannot name a ConfigMap key';
  return undefined;
}

function checkId(name: 'uid' | 'gid', value: string | null | undefined): { id: number } | { reason: string } {
  if (value === null || value === undefined || value === '') return { reason: `${name} is missing` };
  if (!DECIMAL.test(value)) return { reason: `${name} ${JSON.stringify(value)} is not a decimal integer` };
  const id = Number(value);
  // uid/gid 0 is root: refused whatever idRange says.
  if (id === 0) return { reason: `${name} 0 (root) is never synced` };
  if (id > MAX_SYNCED_ID) return { reason: `${name} ${value} is above ${MAX_SYNCED_ID}, the largest id synced` };
  return { id };
}

function checkNasMountPoint(path: string | null | undefined): string | undefined {
  if (path === null || path === undefined || path === '') return 'nasMountPoint is missing';
  if (!path.startsWith('/')) return 'nasMountPoint is not an absolute path';
  if (CONTROL_CHARACTERS.test(path)) return 'nasMountPoint has control characters';
  if (path.includes(':')) return 'nasMountPoint has ":"';
  if (path.split('/').includes('..')) return 'nasMountPoint has a ".." segment';
  return undefined;
}

function isRole(role: string | null | undefined): role is Role {
  return (ROLES as readonly string[]).includes(role ?? '');
}

function checkRow(row: WireUser): RowCheck {
  const usernameProblem = checkUsername(row.username);
  if (usernameProblem !== undefined) return { ok: false, reason: usernameProblem };
  const uid = checkId('uid', row.uid_number);
  if ('reason' in uid) return { ok: false, reason: uid.reason };
  const gid = checkId('gid', row.gid_number);
  if ('reason' in gid) return { ok: false, reason: gid.reason };
  const nasProblem = checkNasMountPoint(row.nas_mount_point);
  if (nasProblem !== undefined) return { ok: false, reason: nasProblem };
  if (!isRole(row.role)) {
    return { ok: false, reason: `role ${JSON.stringify(row.role ?? null)} is not one of ${ROLES.join(', ')}` };
  }
  if (row.user_id === null || row.user_id === undefined || row.user_id === '') {
    return { ok: false, reason: 'user_id is missing' };
  }
  if (row.hpcuser_id === null || row.hpcuser_id === undefined || row.hpcuser_id === '') {
    return { ok: false, reason: 'hpcuser_id is missing' };
  }
  return {
    ok: true,
    user: {
      username: row.username as string,
      uid: uid.id,
      gid: gid.id,
      role: row.role,
      nasMountPoint: row.nas_mount_point as string,
      userId: row.user_id,
      hpcUserId: row.hpcuser_id,
    },
  };
}

/** Row indexes grouped by a key; only groups of two or more are returned. */
function sharedKeys(keys: (string | undefined)[]): Map<string, number[]> {
  const groups = new Map<string, number[]>();
  keys.forEach((key, index) => {
    if (key === undefined) return;
    const group = groups.get(key);
    if (group === undefined) groups.set(key, [index]);
    else group.push(index);
  });
  return new Map([...groups].filter(([, group]) => group.length > 1));
}

function reportedUsername(username: string | null | undefined): string {
  const name = username ?? '';
  return name.length > MAX_REPORTED_USERNAME ? `${name.slice(0, MAX_REPORTED_USERNAME)}…` : name;
}

function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The order of `skipped`: by username, then reason. */
export const compareSkipped = (a: SkippedUser, b: SkippedUser): number =>
  compareStrings(a.username, b.username) || compareStrings(a.reason, b.reason);

/**
 * Splits API rows into well-formed users and skipped rows, each skipped row with one reason.
 * Whether the HpcCluster wants a well-formed user (idRange, roles) is `selectUsers`' choice.
 */
export function validateUsers(rows: readonly WireUser[]): ValidatedUsers {
  const checks = rows.map((row) => checkRow(row));
  const duplicateReason = new Map<number, string>();
  // A uid that is a well-formed number counts as claimed even when its row fails another rule.
  const uids = rows.map((row) =>
    row.uid_number != null && /^[0-9]+$/.test(row.uid_number) ? row.uid_number.replace(/^0+(?=[0-9])/, '') : undefined,
  );
  for (const [uid, indexes] of sharedKeys(uids)) {
    for (const index of indexes) duplicateReason.set(index, `uid ${uid} is shared by ${indexes.length} rows`);
  }
  const usernames = rows.map((row) => (row.username == null || row.username === '' ? undefined : row.username));
  for (const [, indexes] of sharedKeys(usernames)) {
    for (const index of indexes) {
      if (!duplicateReason.has(index)) duplicateReason.set(index, `username appears in ${indexes.length} rows`);
    }
  }

  const users: HpcUser[] = [];
  const skipped: SkippedUser[] = [];
  checks.forEach((check, index) => {
    const username = reportedUsername(rows[index]?.username);
    if (!check.ok) skipped.push({ username, reason: check.reason });
    else {
      const duplicate = duplicateReason.get(index);
      if (duplicate !== undefined) skipped.push({ username, reason: duplicate });
      else users.push(check.user);
    }
  });
  users.sort((a, b) => compareStrings(a.username, b.username));
  skipped.sort(compareSkipped);
  return { users, skipped };
}
