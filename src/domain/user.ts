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

export const DEFAULT_ID_RANGE: IdRange = { min: 1000, max: 2147483647 };
