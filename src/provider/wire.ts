import { z } from 'zod';

/**
 * The provider's wire format for ListUsers, tolerant of both sides of every contradiction in
 * its documents (`user_set`/`users_set`, either action name, `mod` null).
 */

export const LIST_USERS_PATH = '/api/user';
/** The server never returns more rows than this, whatever `limit` says. */
export const MAX_PAGE_SIZE = 100;
export const DEFAULT_PAGE_SIZE = 10;
export const API_VERSION = '1';

/** `YYYY-MM-DDThh:mm:ssZ`, UTC, no milliseconds. */
export function formatTimestamp(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

const wireString = z.string().nullable().optional();

/** One user row as sent: every value a string or null. */
export const wireUserSchema = z.object({
  cluster_id: wireString,
  create_time: wireString,
  update_time: wireString,
  gid_number: wireString,
  uid_number: wireString,
  hpcuser_id: wireString,
  mod: wireString,
  nas_mount_point: wireString,
  role: wireString,
  user_id: wireString,
  username: wireString,
});
export type WireUser = z.infer<typeof wireUserSchema>;

/** Any response carries ret_code; non-zero means failure with a message. */
export const wireErrorSchema = z.object({
  ret_code: z.number().int(),
  message: z.string().optional(),
});

const listUsersSuccessSchema = z
  .object({
    ret_code: z.literal(0),
    action: z.string().optional(),
    total_count: z.number().int().nonnegative(),
    user_set: z.array(wireUserSchema).optional(),
    users_set: z.array(wireUserSchema).optional(),
  })
  .refine((r) => r.user_set !== undefined || r.users_set !== undefined, {
    message: 'neither user_set nor users_set is present',
  })
  .refine((r) => r.user_set === undefined || r.users_set === undefined, {
    message: 'both user_set and users_set are present',
  });

export interface ListUsersPage {
  totalCount: number;
  rows: WireUser[];
}

/** Reads a successful ListUsers body into one page; throws with a readable reason otherwise. */
export function parseListUsersPage(body: unknown): ListUsersPage {
  const parsed = listUsersSuccessSchema.safeParse(body);
  if (!parsed.success) {
    throw new Error(`ListUsers response is not the documented shape: ${z.prettifyError(parsed.error).replace(/\n/g, '; ')}`);
  }
  const rows = parsed.data.user_set ?? parsed.data.users_set ?? [];
  return { totalCount: parsed.data.total_count, rows };
}
