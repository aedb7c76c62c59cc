/**
 * Provider failures, typed by what the caller should do about them.
 * - retryable: try again soon (network, timeout, HTTP 5xx, expired timestamp, server errors,
 *   a malformed or inconsistent answer)
 * - quota: the key's call budget is spent; back off for a long time
 * - permanent: retrying cannot help until the configuration or credentials change
 */
export type ProviderErrorKind = 'retryable' | 'quota' | 'permanent';

/** ret_codes the provider documents, by meaning. */
export const RetCode = {
  BadRequest: 1100,
  AuthenticationFailed: 1200,
  RequestExpired: 1300,
  AccessDenied: 1400,
  NotFound: 2100,
  QuotaExceeded: 2500,
  InternalError: 5000,
  ServerBusy: 5100,
  ServiceUpdating: 5300,
} as const;

const RETRYABLE_RET_CODES = new Set<number>([
  RetCode.RequestExpired,
  RetCode.InternalError,
  RetCode.ServerBusy,
  RetCode.ServiceUpdating,
]);

export function kindOfRetCode(retCode: number): ProviderErrorKind {
  if (retCode === RetCode.QuotaExceeded) return 'quota';
  return RETRYABLE_RET_CODES.has(retCode) ? 'retryable' : 'permanent';
}

/**
 * What went wrong, finer than the kind: for logs, metrics labels and the controller's
 * choice of Ready reason (together with `retCode`).
 */
export type ProviderErrorCode =
  | 'ret-code' // the provider answered with a non-zero ret_code
  | 'http-status' // a non-2xx answer without a ret_code body
  | 'network' // connection refused, reset, DNS, TLS
  | 'timeout' // no complete answer within the request timeout
  | 'malformed-response' // a body that is not JSON or not the documented shape
  | 'inconsistent-pages' // the pages of one listing do not add up
  | 'sync-limit' // the listing passed the operator's deadline or caps (rows, bytes)
  | 'configuration' // the client was asked for something it refuses (e.g. plain http)
  | 'endpoint-not-allowed'; // the endpoint is not on the operator's allow-list

export class ProviderError extends Error {
  override readonly name = 'ProviderError';
  constructor(
    readonly kind: ProviderErrorKind,
    message: string,
    /**
     * `cause`: for a failure that left no valid answer, what it was (ECONNREFUSED, a TLS code,
     * HTTP 404, a redirect): for the key's owner on the command line, never for status.
     */
    readonly details: { code?: ProviderErrorCode; retCode?: number; httpStatus?: number; cause?: string } = {},
  ) {
    super(message);
  }
}
