import { describe, expect, it } from '@jest/globals';
import { concurrencyLimit } from '../../src/runtime/limit.js';

/** A task that runs until released, recording how many ran at once. */
function gate() {
  let release!: () => void;
  const done = new Promise<void>((resolve) => (release = resolve));
  return { done, release };
}

describe('concurrencyLimit', () => {
  it('runs at most n at once, the rest in order, and never more when a new task arrives as one finishes', async () => {
    const limit = concurrencyLimit(2);
    let running = 0;
    let most = 0;
    const started: number[] = [];
    const gates = [gate(), gate(), gate(), gate()];
    const run = (i: number) =>
      limit(async () => {
        running++;
        most = Math.max(most, running);
        started.push(i);
        await gates[i]?.done;
        running--;
        return i;
      });
    const results = [run(0), run(1), run(2)];
    await Promise.resolve();
    expect(started).toEqual([0, 1]);
    gates[0]?.release();
    // A newcomer right as a slot frees must queue behind task 2, not squeeze in beside it.
    results.push(run(3));
    await results[0];
    await new Promise((resolve) => setImmediate(resolve));
    expect(started).toEqual([0, 1, 2]);
    for (const g of gates) g.release();
    expect(await Promise.all(results)).toEqual([0, 1, 2, 3]);
    expect(started).toEqual([0, 1, 2, 3]);
    expect(most).toBe(2);
  });

  it('frees the slot of a task that fails', async () => {
    const limit = concurrencyLimit(1);
    await expect(limit(() => Promise.reject(new Error('no')))).rejects.toThrow('no');
    expect(await limit(() => Promise.resolve('next'))).toBe('next');
  });
});
