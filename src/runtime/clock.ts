/** Time and timers as the operator sees them; tests pass a manual clock. */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  /** Runs `callback` after `delayMs`; returns a function that cancels it. */
  schedule(callback: () => void, delayMs: number): () => void;
}

/** Node's timers hold at most 2^31-1 ms (~24.8 days); a longer delay would fire after 1 ms. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

export const systemClock: Clock = {
  now: () => Date.now(),
  schedule(callback, delayMs) {
    // A delay past what one timer holds is waited out in steps, so it never fires early.
    let timer: NodeJS.Timeout;
    const arm = (remainingMs: number): void => {
      timer = remainingMs > MAX_TIMER_MS ? setTimeout(() => arm(remainingMs - MAX_TIMER_MS), MAX_TIMER_MS) : setTimeout(callback, remainingMs);
    };
    arm(delayMs);
    return () => clearTimeout(timer);
  },
};

/** Resolves after `ms` on `clock`; rejects with the signal's reason if it aborts first. */
export function sleep(clock: Clock, ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    if (signal?.aborted === true) {
      reject(signal.reason as Error);
      return;
    }
    const onAbort = () => {
      cancel();
      reject(signal?.reason as Error);
    };
    const cancel = clock.schedule(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** RFC 3339 in UTC and whole seconds, `YYYY-MM-DDThh:mm:ssZ`: the provider's timestamps and status times. */
export function formatTimestamp(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}
