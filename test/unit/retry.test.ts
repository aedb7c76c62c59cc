import { describe, expect, it } from '@jest/globals';
import type { Clock } from '../../src/runtime/clock.js';
import { ProviderError } from '../../src/provider/errors.js';
import { withRetry, type RetryPolicy } from '../../src/provider/retry.js';

const POLICY: RetryPolicy = { maxAttempts: 4, baseDelayMs: 100, maxDelayMs: 300 };

/** Fires every timer at once and records the delays asked for. */
function instantClock(): Clock & { delays: number[] } {
  const delays: number[] = [];
  return {
    delays,
    now: () => 0,
    schedule(callback, delayMs) {
      delays.push(delayMs);
      queueMicrotask(callback);
      return () => undefined;
    },
  };
}

function failing(errors: Error[]): { attempts: number; run: () => Promise<string> } {
  const state = {
    attempts: 0,
    run: () => {
      const error = errors[state.attempts++];
      return error === undefined ? Promise.resolve('ok') : Promise.reject(error);
    },
  };
  return state;
}

const retryable = () => new ProviderError('retryable', 'server busy', { retCode: 5100 });

describe('withRetry', () => {
  it('retries retryable errors until one attempt succeeds', async () => {
    const clock = instantClock();
    const call = failing([retryable(), retryable()]);
    await expect(withRetry(call.run, POLICY, { clock, random: () => 0.5 })).resolves.toBe('ok');
    expect(call.attempts).toBe(3);
    // random 0.5 sits in the middle of the ±20% jitter: the bare exponential steps.
    expect(clock.delays).toEqual([100, 200]);
  });

  it('gives up after maxAttempts and says so', async () => {
    const call = failing(Array.from({ length: 10 }, retryable));
    await expect(withRetry(call.run, POLICY, { clock: instantClock() })).rejects.toThrow(
      'server busy (gave up after 4 attempts)',
    );
    expect(call.attempts).toBe(4);
  });

  it.each([
    ['permanent', new ProviderError('permanent', 'bad signature', { retCode: 1200 })],
    ['quota', new ProviderError('quota', 'quota exceeded', { retCode: 2500 })],
    ['not a provider error', new TypeError('bug')],
  ])('does not retry an error that is %s', async (_name, error) => {
    const call = failing([error]);
    await expect(withRetry(call.run, POLICY, { clock: instantClock() })).rejects.toBe(error);
    expect(call.attempts).toBe(1);
  });

  it('stops waiting when its signal aborts during a back-off', async () => {
    const aborts = new AbortController();
    const clock: Clock = {
      now: () => 0,
      schedule: () => {
        queueMicrotask(() => aborts.abort(new Error('shutting down')));
        return () => undefined;
      },
    };
    const call = failing([retryable(), retryable()]);
    await expect(withRetry(call.run, POLICY, { clock, signal: aborts.signal })).rejects.toThrow('shutting down');
    expect(call.attempts).toBe(1);
  });
});
