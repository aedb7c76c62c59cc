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
  message: z.string().nullish(),
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

/** At most this many schema problems are named in an error message; the rest are counted. */
const MAX_ISSUES_NAMED = 3;

function describeIssues(error: z.ZodError): string {
  const named = error.issues.slice(0, MAX_ISSUES_NAMED).map((issue) => {
    const path = issue.path.map((key) => (typeof key === 'number' ? `[${key}]` : `.${String(key)}`)).join('');
    return path === '' ? issue.message : `${path.replace(/^\./, '')}: ${issue.message}`;
  });
  const more = error.issues.length - named.length;
  return more > 0 ? `${named.join('; ')}; and ${more} more` : named.join('; ');
}

/** Reads a successful ListUsers body into one page; throws with a readable reason otherwise. */
export function parseListUsersPage(body: unknown): ListUsersPage {
  const parsed = listUsersSuccessSchema.safeParse(body);
  if (!parsed.success) {
    throw new Error(`ListUsers response is not the documented shape: ${describeIssues(parsed.error)}`);
  }
  const rows = parsed.data.user_set ?? parsed.data.users_set ?? [];
  return { totalCount: parsed.data.total_count, rows };
}

/** A ListUsers answer: a page, or the provider's refusal with its ret_code. */
export type ListUsersResponse =
  | { ok: true; page: ListUsersPage }
  | { ok: false; retCode: number; message: string };

/** A body that is not the provider's at all: not JSON, or JSON without a ret_code. */
export class NotProviderAnswerError extends Error {
  override readonly name = 'NotProviderAnswerError';
}

/**
 * Reads a raw ListUsers body (either a page or `{ret_code, message}`); throws an Error saying
 * what is wrong when it is not JSON or not the documented shape. The message never quotes
 * the body, which is the provider's to fill.
 */
export function parseListUsersResponse(text: string): ListUsersResponse {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new NotProviderAnswerError(`ListUsers response is not JSON (${Buffer.byteLength(text)} bytes)`);
  }
  const failure = wireErrorSchema.safeParse(body);
  if (!failure.success) {
    throw new NotProviderAnswerError(`ListUsers response is not the documented shape: ${describeIssues(failure.error)}`);
  }
  if (failure.data.ret_code !== 0) {
    return { ok: false, retCode: failure.data.ret_code, message: failure.data.message ?? '' };
  }
  return { ok: true, page: parseListUsersPage(body) };
}
