import { describe, expect, it } from '@jest/globals';
import { MAX_TIMER_MS, systemClock } from '../../src/runtime/clock.js';

describe('systemClock.schedule', () => {
  it('does not fire a delay longer than one Node timer holds early (Node would fire it after 1 ms)', async () => {
    const fired: string[] = [];
    const cancelLong = systemClock.schedule(() => fired.push('long'), MAX_TIMER_MS + 1);
    const cancelHuge = systemClock.schedule(() => fired.push('huge'), 1000 * 3_600_000);
    try {
      // A short timer as the condition: both long ones had their chance to misfire before it.
      await new Promise<void>((resolve) => systemClock.schedule(resolve, 20));
      expect(fired).toEqual([]);
    } finally {
      cancelLong();
      cancelHuge();
    }
  });

  it('fires an ordinary delay, and not once cancelled', async () => {
    const fired: string[] = [];
    systemClock.schedule(() => fired.push('cancelled'), 1)();
    await new Promise<void>((resolve) => systemClock.schedule(() => {
      fired.push('fired');
      resolve();
    }, 5));
    expect(fired).toEqual(['fired']);
  });
});
