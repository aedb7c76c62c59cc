import { sleep, systemClock, type Clock } from '../runtime/clock.js';
import type { AccessKeyIdentity } from './key-identity.js';

/**
 * Client-side call budget per access key. The provider documents 2,000 calls per 3,600 s
 * per key and does not say whether the window is fixed or sliding, so the default bucket
 * holds a burst of 100 (one 10,000-user listing) and refills at 1,900 per hour: no
 * 3,600 s window, however placed, sees more than 2,000 calls from one process.
 */
export interface RateLimit {
  /** Tokens available at once (the burst). */
  capacity: number;
  /** Tokens added per `intervalMs`. */
  refill: number;
  intervalMs: number;
}

/**
 * A bucket that keeps every window of `intervalMs` at or under `calls`: a burst of one
 * twentieth of them, the rest refilled evenly over the interval.
 */
export function rateLimitOf(calls: number, intervalMs: number): RateLimit {
  const capacity = Math.max(1, Math.floor(calls / 20));
  return { capacity, refill: Math.max(1, calls - capacity), intervalMs };
}

export const PROVIDER_RATE_LIMIT: RateLimit = rateLimitOf(2000, 3_600_000);

/** What a client takes one token from before each HTTP attempt. */
export interface CallLimiter {
  acquire(signal?: AbortSignal): Promise<void>;
}

/** The limiter of each access key, by its identity. */
export interface CallLimiters {
  forKey(key: AccessKeyIdentity): CallLimiter;
}

/** Hands out one token per API call; waiters are served in arrival order. */
export class TokenBucket implements CallLimiter {
  private tokens: number;
  private updatedAt: number;
  private readonly perMs: number;
  /** Settles when every earlier waiter has its token; keeps the queue first-come first-served. */
  private queue: Promise<void> = Promise.resolve();
  private waiting = 0;

  constructor(
    private readonly limit: RateLimit,
    private readonly clock: Clock = systemClock,
  ) {
    if (!(limit.capacity >= 1) || !(limit.refill > 0) || !(limit.intervalMs > 0)) {
      throw new RangeError('a rate limit needs capacity >= 1 and a positive refill rate');
    }
    this.tokens = limit.capacity;
    this.updatedAt = clock.now();
    this.perMs = limit.refill / limit.intervalMs;
  }

  /** Waits for a token; rejects with the signal's reason if it aborts first (no token spent). */
  acquire(signal?: AbortSignal): Promise<void> {
    if (signal?.aborted === true) return Promise.reject(signal.reason as Error);
    // The common case: nobody queued and a token in the bucket.
    if (this.waiting === 0 && this.available() >= 1) {
      this.tokens -= 1;
      return Promise.resolve();
    }
    this.waiting++;
    const turn = this.queue.then(() => this.take(signal)).finally(() => this.waiting--);
    this.queue = turn.catch(() => undefined);
    if (signal === undefined) return turn;
    // A waiter behind others still leaves as soon as it is aborted.
    return new Promise<void>((resolve, reject) => {
      const onAbort = () => reject(signal.reason as Error);
      signal.addEventListener('abort', onAbort, { once: true });
      turn.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
    });
  }

  /** Tokens available now (fractional while refilling). */
  available(): number {
    this.refillToNow();
    return this.tokens;
  }

  private async take(signal?: AbortSignal): Promise<void> {
    for (;;) {
      signal?.throwIfAborted();
      this.refillToNow();
      if (this.tokens >= 1) {
        this.tokens -= 1;
        return;
      }
      await sleep(this.clock, Math.ceil((1 - this.tokens) / this.perMs), signal);
    }
  }

  private refillToNow(): void {
    const now = this.clock.now();
    this.tokens = Math.min(this.limit.capacity, this.tokens + (now - this.updatedAt) * this.perMs);
    this.updatedAt = now;
  }
}

/**
 * One bucket per access key identity (endpoint, key id and secret digest): every cluster
 * using the same key shares its budget, and nobody who merely knows a key id can spend it.
 */
export class RateLimiterRegistry implements CallLimiters {
  private readonly buckets = new Map<string, TokenBucket>();

  constructor(
    private readonly limit: RateLimit = PROVIDER_RATE_LIMIT,
    private readonly clock: Clock = systemClock,
  ) {}

  forKey(key: AccessKeyIdentity): TokenBucket {
    let bucket = this.buckets.get(key.id);
    if (bucket === undefined) {
      bucket = new TokenBucket(this.limit, this.clock);
      this.buckets.set(key.id, bucket);
    }
    return bucket;
  }
}

/** The buckets of this process; clients default to it so that one key has one budget. */
export const sharedRateLimiters = new RateLimiterRegistry();
