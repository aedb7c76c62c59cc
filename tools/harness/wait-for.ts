// Polls a condition until it yields a value or a deadline passes: tests wait for states,
// never for fixed amounts of time.
export interface WaitForOptions {
  timeoutMs?: number;
  intervalMs?: number;
  /** What is being waited for, for the timeout message. */
  description?: string;
}

/**
 * Resolves with the first truthy value `condition` returns. A throwing condition counts as
 * "not yet"; its last error is reported if the deadline passes.
 */
export async function waitFor<T>(
  condition: () => T | undefined | null | false | Promise<T | undefined | null | false>,
  { timeoutMs = 30_000, intervalMs = 100, description = 'condition' }: WaitForOptions = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await condition();
      if (value) return value;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() >= deadline) {
      const cause = lastError instanceof Error ? `; last error: ${lastError.message}` : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${description}${cause}`, { cause: lastError });
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
