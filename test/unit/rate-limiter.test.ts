import { describe, expect, it } from '@jest/globals';
import { PROVIDER_RATE_LIMIT, rateLimitOf, RateLimiterRegistry, TokenBucket } from '../../src/provider/rate-limiter.js';
import { accessKeyIdentity } from '../../src/provider/key-identity.js';
import { ManualClock } from '../support/manual-clock.js';

/** Lets every settled promise run its callbacks. */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

function track(promise: Promise<void>): { state: 'pending' | 'granted' | 'refused' } {
  const tracked = { state: 'pending' as 'pending' | 'granted' | 'refused' };
  promise.then(
    () => (tracked.state = 'granted'),
    () => (tracked.state = 'refused'),
  );
  return tracked;
}

describe('TokenBucket', () => {
  const oneASecond = { capacity: 2, refill: 1, intervalMs: 1000 };

  it('grants a burst of `capacity` at once, then one token per refill interval', async () => {
    const clock = new ManualClock();
    const bucket = new TokenBucket(oneASecond, clock);
    const first = track(bucket.acquire());
    const second = track(bucket.acquire());
    const third = track(bucket.acquire());
    await settle();
    expect([first.state, second.state, third.state]).toEqual(['granted', 'granted', 'pending']);

    clock.advance(999);
    await settle();
    expect(third.state).toBe('pending');
    clock.advance(1);
    await settle();
    expect(third.state).toBe('granted');
  });

  it('serves waiters in arrival order', async () => {
    const clock = new ManualClock();
    const bucket = new TokenBucket({ capacity: 1, refill: 1, intervalMs: 1000 }, clock);
    await bucket.acquire();
    const order: string[] = [];
    const waiting = ['a', 'b', 'c'].map((name) => bucket.acquire().then(() => order.push(name)));
    for (let i = 0; i < 3; i++) {
      await settle();
      clock.advance(1000);
    }
    await Promise.all(waiting);
    expect(order).toEqual(['a', 'b', 'c']);
  });

  it('refills no further than its capacity', async () => {
    const clock = new ManualClock();
    const bucket = new TokenBucket(oneASecond, clock);
    await bucket.acquire();
    clock.advance(60_000);
    expect(bucket.available()).toBe(2);
  });

  it('lets an aborted waiter go without spending a token, even behind others', async () => {
    const clock = new ManualClock();
    const bucket = new TokenBucket({ capacity: 1, refill: 1, intervalMs: 1000 }, clock);
    await bucket.acquire();
    const ahead = track(bucket.acquire());
    const aborts = new AbortController();
    const behind = track(bucket.acquire(aborts.signal));
    const last = track(bucket.acquire());
    aborts.abort(new Error('reconcile cancelled'));
    await settle();
    expect(behind.state).toBe('refused');

    clock.advance(1000);
    await settle();
    expect(ahead.state).toBe('granted');
    clock.advance(1000);
    await settle();
    expect(last.state).toBe('granted');
  });

  it('refuses at once when the signal is already aborted', async () => {
    const bucket = new TokenBucket(oneASecond, new ManualClock());
    await expect(bucket.acquire(AbortSignal.abort(new Error('stop')))).rejects.toThrow('stop');
    expect(bucket.available()).toBe(2);
  });

  it('rejects a limit that could never grant a token', () => {
    expect(() => new TokenBucket({ capacity: 0, refill: 1, intervalMs: 1 })).toThrow(RangeError);
    expect(() => new TokenBucket({ capacity: 1, refill: 0, intervalMs: 1 })).toThrow(RangeError);
  });
});

describe('PROVIDER_RATE_LIMIT', () => {
  it('keeps any 3,600 s window within the documented 2,000 calls', () => {
    const { capacity, refill, intervalMs } = PROVIDER_RATE_LIMIT;
    expect(capacity + (refill * 3_600_000) / intervalMs).toBeLessThanOrEqual(2000);
  });
});

describe('RateLimiterRegistry', () => {
  const ENDPOINT = 'https://hpc.api.shanhe.com/';
  it('gives every user of one access key the same bucket, and other keys their own', () => {
    const registry = new RateLimiterRegistry();
    const key1 = accessKeyIdentity(ENDPOINT, 'KEY1', 'secret-1');
    expect(registry.forKey(key1)).toBe(registry.forKey(accessKeyIdentity(ENDPOINT, 'KEY1', 'secret-1')));
    expect(registry.forKey(key1)).not.toBe(registry.forKey(accessKeyIdentity(ENDPOINT, 'KEY2', 'secret-1')));
  });

  it('keeps a tenant who knows only the access key id (not its secret) off that key\'s budget', async () => {
    const clock = new ManualClock();
    const registry = new RateLimiterRegistry({ capacity: 1, refill: 1, intervalMs: 3_600_000 }, clock);
    const owner = registry.forKey(accessKeyIdentity(ENDPOINT, 'SHARED-ID', 'the-real-secret'));
    const intruder = registry.forKey(accessKeyIdentity(ENDPOINT, 'SHARED-ID', 'a-guess'));
    await intruder.acquire();
    expect(intruder.available()).toBeLessThan(1);
    expect(owner.available()).toBe(1);
    expect(registry.forKey(accessKeyIdentity('https://elsewhere.example/', 'SHARED-ID', 'the-real-secret'))).not.toBe(owner);
  });
});

describe('rateLimitOf', () => {
  it.each([
    [2000, { capacity: 100, refill: 1900 }],
    [10, { capacity: 1, refill: 9 }],
    [1, { capacity: 1, refill: 1 }],
  ])('keeps %i calls per interval as a burst plus refill', (calls, expected) => {
    expect(rateLimitOf(calls, 60_000)).toEqual({ ...expected, intervalMs: 60_000 });
  });
});
