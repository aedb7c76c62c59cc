/**
 * The one model of a failed sync: the Ready reason SPEC names, a message that says what to fix
 * (never a secret), and when trying again can help. Provider errors become one in a single
 * place (`failureOf` in provider/user-source.ts); the controller's error policy
 * (controller/policy.ts) turns it into conditions, the queue's next step and the metric label.
 */

export const FAILURE_REASONS = [
  'InvalidSpec',
  'CredentialsNotFound',
  'AuthenticationFailed',
  'EndpointNotAllowed',
  'ListUsersFailed',
  'SyncLimitExceeded',
  'QuotaExceeded',
  'ConfigMapTooLarge',
  'ConfigMapConflict',
  'ConfigMapWriteFailed',
  'RemovalHeld',
] as const;
export type FailureReason = (typeof FAILURE_REASONS)[number];

/**
 * When trying again can help:
 * - `never`: only a change of the spec, the Secret or a sync request can (kstatus Stalled)
 * - `backoff`: soon; the work queue's per-key exponential back-off says when
 * - `{ afterMs }`: not before this long (a spent quota window, the next periodic sync)
 */
export type Retry = 'never' | 'backoff' | { afterMs: number };

export interface SyncFailure {
  reason: FailureReason;
  message: string;
  retry: Retry;
}
