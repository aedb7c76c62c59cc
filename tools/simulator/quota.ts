/** A per-key call budget: `limit` calls in each window of `windowSeconds`. */
export interface QuotaConfig {
  limit: number;
  windowSeconds: number;
}

/** What the provider documents: 2,000 calls per 3,600 s per access key. */
export const PROVIDER_QUOTA: Readonly<QuotaConfig> = Object.freeze({ limit: 2000, windowSeconds: 3600 });

/**
 * Fixed windows per key, each starting at the key's first call after the previous one ended:
 * simple to reason about in tests (N calls pass, call N+1 fails, advance the clock by the
 * window and calls pass again).
 */
export class FixedWindowQuota {
  private readonly windows = new Map<string, { startMs: number; used: number }>();

  constructor(
    private readonly config: QuotaConfig,
    private readonly now: () => number,
  ) {}

  /** Takes one call from the key's budget; false (and nothing taken) when it is spent. */
  take(key: string): boolean {
    const now = this.now();
    let window = this.windows.get(key);
    if (window === undefined || now - window.startMs >= this.config.windowSeconds * 1000) {
      window = { startMs: now, used: 0 };
      this.windows.set(key, window);
    }
    if (window.used >= this.config.limit) return false;
    window.used++;
    return true;
  }
}
