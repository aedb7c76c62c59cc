import { describe, expect, test } from '@jest/globals';
import { waitFor } from '../../tools/harness/wait-for.js';

describe('waitFor', () => {
  test('resolves with the first truthy value, retrying falsy values and errors', async () => {
    let calls = 0;
    const value = await waitFor(
      () => {
        calls++;
        if (calls === 1) throw new Error('not yet');
        return calls === 3 && 'ready';
      },
      { intervalMs: 1 },
    );
    expect(value).toBe('ready');
    expect(calls).toBe(3);
  });

  test('fails after the deadline, naming what it waited for and the last error', async () => {
    await expect(
      waitFor(
        () => {
          throw new Error('still starting');
        },
        { timeoutMs: 20, intervalMs: 5, description: 'the server' },
      ),
    ).rejects.toThrow('timed out after 20 ms waiting for the server; last error: still starting');
  });
});
