import { backoffDelayMs } from '../runtime/backoff.js';
import { sleep, systemClock, type Clock } from '../runtime/clock.js';
import { ProviderError } from './errors.js';

/**
 * Retries inside one API call: bounded, exponential with jitter, and only for errors of
 * kind `retryable`. Permanent errors surface at once. Quota errors also surface at once:
 * the provider's window is an hour long, so the long back-off belongs to the caller (the
 * controller requeues after `QUOTA_BACKOFF_MS`) rather than to a request holding a worker.
 */
export interface RetryPolicy {
  /** Attempts in all, the first included; 1 means no retry. */
  maxAttempts: number;
  /** The first back-off; doubles per retry up to `maxDelayMs`. */
  baseDelayMs: number;
  maxDelayMs: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = { maxAttempts: 4, baseDelayMs: 500, maxDelayMs: 8_000 };

/** How long a caller should wait after a quota error before calling again with that key. */
export const QUOTA_BACKOFF_MS = 15 * 60_000;

export interface RetryContext {
  clock?: Clock;
  random?: () => number;
  signal?: AbortSignal;
}

/** Runs `attempt` (given its 1-based number) until it succeeds or may not be retried. */
export async function withRetry<T>(
  attempt: (attemptNumber: number) => Promise<T>,
  policy: RetryPolicy,
  { clock = systemClock, random = Math.random, signal }: RetryContext = {},
): Promise<T> {
  for (let attemptNumber = 1; ; attemptNumber++) {
    try {
      return await attempt(attemptNumber);
    } catch (err) {
      if (!(err instanceof ProviderError) || err.kind !== 'retryable' || signal?.aborted === true) throw err;
      if (attemptNumber >= policy.maxAttempts) {
        if (attemptNumber === 1) throw err;
        throw new ProviderError(err.kind, `${err.message} (gave up after ${attemptNumber} attempts)`, err.details);
      }
      await sleep(clock, backoffDelayMs(attemptNumber, { baseMs: policy.baseDelayMs, maxMs: policy.maxDelayMs }, random), signal);
    }
  }
}
