import type { RateLimit } from '../provider/rate-limiter.js';

/** Whether a sync may have its calls now, and if not, when to ask again. */
export type Reservation = { granted: true } | { granted: false; retryAt: number };

/**
 * A token bucket that never makes anyone wait: a sync reserves what it expects to spend
 * before it starts and is told "now" or "come back at T"; every call it then makes is
 * taken at once, even below zero (a list that grew since its last sync), and the debt
 * delays later reservations. A reservation is released when the sync ends: until then
 * its calls count twice, which errs on the safe side.
 */
export class CallBucket {
  private tokens: number;
  private updatedAt: number;
  private reserved = 0;
  private perMs: number;
  /**
   * When the last refused sync was told to come back, per share kept (periodic and
   * on-demand syncs queue apart): later refusals are told to come after it.
   */
  private readonly lastRetryAt = new Map<number, number>();

  constructor(
    private rateLimit: RateLimit,
    now: number,
  ) {
    this.tokens = rateLimit.capacity;
    this.updatedAt = now;
    this.perMs = rateLimit.refill / rateLimit.intervalMs;
  }

  get limit(): RateLimit {
    return this.rateLimit;
  }

  /**
   * The key's rate changed (its Secrets declare another): what was spent stays spent, so a
   * larger bucket does not start full and a smaller one starts as far below its capacity.
   */
  setLimit(limit: RateLimit, now: number): void {
    this.refillTo(now);
    const spent = this.rateLimit.capacity - this.tokens;
    this.rateLimit = limit;
    this.perMs = limit.refill / limit.intervalMs;
    this.tokens = limit.capacity - spent;
  }

  /**
   * Reserves `cost` calls when the bucket holds them and still `keep` more (the share kept
   * for on-demand syncs). A sync dearer than the whole bucket needs a full bucket. Refused
   * syncs are told to come back one after another, each when the refill will have brought
   * its calls since the one before: told the same moment, a hundred would come back together,
   * one would go and 99 be refused again, and so on.
   */
  reserve(cost: number, keep: number, now: number): Reservation {
    const calls = Math.min(this.limit.capacity, Math.max(1, cost));
    const need = Math.min(this.limit.capacity, calls + keep);
    const short = need - this.available(now);
    if (short > 0) {
      const previous = this.lastRetryAt.get(keep) ?? now;
      const behind = previous > now ? previous + Math.ceil(calls / this.perMs) : now;
      const retryAt = Math.max(now + Math.ceil(short / this.perMs), behind);
      this.lastRetryAt.set(keep, retryAt);
      return { granted: false, retryAt };
    }
    this.reserved += cost;
    return { granted: true };
  }

  /** Gives back a reservation when its sync ends. */
  release(cost: number): void {
    this.reserved = Math.max(0, this.reserved - cost);
  }

  /** One call made: taken at once, whatever is left. */
  spend(now: number): void {
    this.refillTo(now);
    this.tokens -= 1;
  }

  /** Tokens neither spent nor reserved (fractional while refilling; negative while in debt). */
  available(now: number): number {
    this.refillTo(now);
    return this.tokens - this.reserved;
  }

  private refillTo(now: number): void {
    this.tokens = Math.min(this.rateLimit.capacity, this.tokens + Math.max(0, now - this.updatedAt) * this.perMs);
    this.updatedAt = Math.max(this.updatedAt, now);
  }
}
