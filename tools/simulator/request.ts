import { RetCode } from '../../src/provider/errors.js';
import { SIGNATURE_METHOD, SIGNATURE_VERSION, verifySignedQuery } from '../../src/provider/signature.js';
import { API_VERSION, DEFAULT_PAGE_SIZE } from '../../src/provider/wire.js';
import type { ListingQuery } from './listing.js';

/** The provider refuses a timestamp more than this far from its clock (either way). */
export const TIMESTAMP_WINDOW_MS = 60_000;
const TIMESTAMP_FORMAT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/;
const NON_NEGATIVE_INTEGER = /^\d+$/;

/** An authenticated, well-formed ListUsers request. */
export interface ListUsersRequest extends ListingQuery {
  accessKeyId: string;
  zone: string;
  clusterId?: string;
}

export type RequestCheck = { ok: true; request: ListUsersRequest } | { ok: false; retCode: number; message: string };

function refused(retCode: number, message: string): RequestCheck {
  return { ok: false, retCode, message };
}

/**
 * Checks a ListUsers request as received (`rawQuery` is the undecoded text after `?`):
 * signature (1200, or 1100 when it cannot be read), required common parameters (1100),
 * timestamp format (1100) and window (1300), limit and offset (1100).
 */
export function checkListUsersRequest(
  method: string,
  path: string,
  rawQuery: string,
  secretFor: (accessKeyId: string) => string | undefined,
  nowMs: number,
): RequestCheck {
  const signed = verifySignedQuery(method, path, rawQuery, secretFor);
  if (!signed.ok) {
    const retCode = signed.reason === 'unknown-key' || signed.reason === 'bad-signature' ? RetCode.AuthenticationFailed : RetCode.BadRequest;
    return refused(retCode, retCode === RetCode.AuthenticationFailed ? `authentication failed: ${signed.detail}` : signed.detail);
  }
  const params = signed.params;
  for (const name of ['zone', 'timestamp', 'version', 'signature_method', 'signature_version']) {
    if (params[name] === undefined || params[name] === '') return refused(RetCode.BadRequest, `parameter ${name} is missing`);
  }
  const expected: Record<string, string> = {
    version: API_VERSION,
    signature_method: SIGNATURE_METHOD,
    signature_version: SIGNATURE_VERSION,
  };
  for (const [name, value] of Object.entries(expected)) {
    if (params[name] !== value) return refused(RetCode.BadRequest, `parameter ${name} must be ${value}`);
  }

  const timestamp = params.timestamp as string;
  const timestampMs = Date.parse(timestamp);
  if (!TIMESTAMP_FORMAT.test(timestamp) || Number.isNaN(timestampMs)) {
    return refused(RetCode.BadRequest, 'parameter timestamp must be YYYY-MM-DDThh:mm:ssZ (UTC)');
  }
  if (Math.abs(timestampMs - nowMs) > TIMESTAMP_WINDOW_MS) {
    return refused(
      RetCode.RequestExpired,
      `request expired: timestamp ${timestamp} is more than ${TIMESTAMP_WINDOW_MS / 1000} s from the server time ${new Date(nowMs).toISOString()}`,
    );
  }

  const numbers: Record<'limit' | 'offset', number> = { limit: DEFAULT_PAGE_SIZE, offset: 0 };
  for (const name of ['limit', 'offset'] as const) {
    const value = params[name];
    if (value === undefined || value === '') continue;
    if (!NON_NEGATIVE_INTEGER.test(value)) return refused(RetCode.BadRequest, `parameter ${name} must be a non-negative integer`);
    numbers[name] = Number(value);
  }

  return {
    ok: true,
    request: {
      accessKeyId: params.access_key_id as string,
      zone: params.zone as string,
      clusterId: params.cluster_id === '' ? undefined : params.cluster_id,
      userId: params.user_id,
      searchWord: params.search_word,
      limit: numbers.limit,
      offset: numbers.offset,
    },
  };
}
