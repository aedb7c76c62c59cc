/** The provider's user roles, as SPEC lists them. */
export const ROLES = ['boss', 'admin', 'member'] as const;
export type Role = (typeof ROLES)[number];

/** One validated HPC user: the shape written to status and to `users.json`. */
export interface HpcUser {
  username: string;
  uid: number;
  gid: number;
  role: Role;
  nasMountPoint: string;
  userId: string;
  hpcUserId: string;
}

/** A row the API returned that failed validation, with the rule it broke. */
export interface SkippedUser {
  username: string;
  reason: string;
}

/** The inclusive uid/gid range a user must fall in (SPEC `idRange`). */
export interface IdRange {
  min: number;
  max: number;
}

/** The largest uid or gid ever synced (a signed 32-bit id), whatever idRange says. */
export const MAX_SYNCED_ID = 2147483647;

export const DEFAULT_ID_RANGE: IdRange = { min: 1000, max: MAX_SYNCED_ID };
