import { describe, expect, it } from '@jest/globals';
import { CallBucket } from '../../../src/budget/bucket.js';

const limit = { capacity: 10, refill: 10, intervalMs: 10_000 }; // one token a second

describe('CallBucket', () => {
  it('grants a reservation the bucket holds and says when to come back otherwise', () => {
    const bucket = new CallBucket(limit, 0);
    expect(bucket.reserve(6, 0, 0)).toEqual({ granted: true });
    expect(bucket.available(0)).toBe(4);
    // While the sync runs its reservation and its calls do not add up twice for long.
    for (let i = 0; i < 6; i++) bucket.spend(0);
    bucket.release(6);
    expect(bucket.available(0)).toBe(4);
    // 6 more are 2 short: two seconds of refill.
    expect(bucket.reserve(6, 0, 0)).toEqual({ granted: false, retryAt: 2000 });
    expect(bucket.reserve(6, 0, 2000)).toEqual({ granted: true });
  });

  it('counts spent calls at once, below zero too, and the debt delays the next reservation', () => {
    const bucket = new CallBucket(limit, 0);
    expect(bucket.reserve(2, 0, 0).granted).toBe(true);
    for (let i = 0; i < 12; i++) bucket.spend(0); // the list grew: 12 calls for 2 reserved
    bucket.release(2);
    expect(bucket.available(0)).toBe(-2);
    expect(bucket.reserve(1, 0, 0)).toEqual({ granted: false, retryAt: 3000 });
  });

  it('tells refused syncs to come back one after another at the refill rate, so each goes when it comes', () => {
    const bucket = new CallBucket(limit, 0);
    expect(bucket.reserve(10, 0, 0).granted).toBe(true);
    for (let i = 0; i < 10; i++) bucket.spend(0);
    bucket.release(10);
    // 30 syncs of one call find the bucket empty: told 1 s, 2 s, ... 30 s.
    const retries = Array.from({ length: 30 }, () => bucket.reserve(1, 0, 0));
    const times = retries.map((r) => (r.granted ? NaN : r.retryAt));
    expect(times).toEqual(Array.from({ length: 30 }, (_, i) => (i + 1) * 1000));
    // Each comes back when told and goes: no sync is refused twice.
    for (const at of times) {
      expect(bucket.reserve(1, 0, at)).toEqual({ granted: true });
      bucket.spend(at);
      bucket.release(1);
    }
    // Periodic syncs (keeping a share) queue apart: an on-demand one is not put behind them.
    expect(bucket.reserve(1, 2, 30_000)).toEqual({ granted: false, retryAt: 33_000 });
    expect(bucket.reserve(1, 2, 30_000)).toEqual({ granted: false, retryAt: 34_000 });
    expect(bucket.reserve(1, 0, 30_000)).toEqual({ granted: false, retryAt: 31_000 });
  });

  it('keeps a share back from periodic syncs that on-demand syncs may use', () => {
    const bucket = new CallBucket(limit, 0);
    expect(bucket.reserve(8, 0, 0).granted).toBe(true);
    expect(bucket.reserve(1, 2, 0).granted).toBe(false);
    expect(bucket.reserve(1, 0, 0).granted).toBe(true);
  });

  it('lets a sync dearer than the whole bucket go with a full bucket', () => {
    const bucket = new CallBucket(limit, 0);
    expect(bucket.reserve(50, 0, 0)).toEqual({ granted: true });
    bucket.release(50);
    expect(bucket.available(0)).toBe(10);
  });

  it('never refills above capacity', () => {
    const bucket = new CallBucket(limit, 0);
    expect(bucket.available(1_000_000)).toBe(10);
  });
});
