/**
 * Exponential back-off with ±20% jitter, shared by the work queue (per key), the informer
 * (per restart) and the provider client (per attempt): `min(maxMs, baseMs * 2^(failures-1)) * uniform[0.8, 1.2)`.
 * Not full jitter: a retry never comes sooner than 80% of the exponential step, so a failing
 * resource cannot spend the provider's quota faster than the step allows; the spread still
 * keeps many keys that failed together from retrying together.
 */
export interface BackoffPolicy {
  baseMs: number;
  maxMs: number;
}

const jitterFraction = 0.2;

/** The delay before the next attempt after `failures` consecutive failures (counted from 1). */
export function backoffDelayMs(failures: number, policy: BackoffPolicy, random: () => number = Math.random): number {
  const step = Math.min(policy.maxMs, policy.baseMs * 2 ** Math.max(0, failures - 1));
  return Math.round(step * (1 - jitterFraction + 2 * jitterFraction * random()));
}
