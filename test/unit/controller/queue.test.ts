import { afterEach, describe, expect, it } from '@jest/globals';
import { backoffDelayMs } from '../../../src/runtime/backoff.js';
import {
  WorkQueue,
  type ReconcileReport,
  type ReconcileResult,
  type WorkQueueOptions,
} from '../../../src/controller/queue.js';
import { ManualClock } from '../../support/manual-clock.js';
import { waitFor } from '../../../tools/harness/wait-for.js';

/** One reconcile the test finishes by hand. */
interface Call {
  key: string;
  signal: AbortSignal;
  succeed(result?: ReconcileResult): void;
  fail(error: unknown): void;
}

/** A reconciler whose calls stay in flight until the test settles them. */
class ScriptedReconciler {
  readonly calls: Call[] = [];
  private readonly running = new Map<string, number>();
  maxRunningOneKey = 0;
  maxRunning = 0;

  readonly reconcile = (key: string, signal: AbortSignal): Promise<ReconcileResult> =>
    new Promise<ReconcileResult>((resolve, reject) => {
      const runningNow = (this.running.get(key) ?? 0) + 1;
      this.running.set(key, runningNow);
      this.maxRunningOneKey = Math.max(this.maxRunningOneKey, runningNow);
      this.maxRunning = Math.max(this.maxRunning, this.runningTotal());
      const settle = () => this.running.set(key, (this.running.get(key) ?? 1) - 1);
      this.calls.push({
        key,
        signal,
        succeed: (result = { outcome: 'success' }) => {
          settle();
          resolve(result);
        },
        fail: (error) => {
          settle();
          reject(error instanceof Error ? error : new Error(String(error)));
        },
      });
    });

  runningTotal(): number {
    return [...this.running.values()].reduce((sum, count) => sum + count, 0);
  }

  call(index: number): Call {
    const call = this.calls[index];
    if (!call) throw new Error(`no call #${String(index)} (made ${String(this.calls.length)})`);
    return call;
  }

  keys(): string[] {
    return this.calls.map((call) => call.key);
  }
}

const fast = { intervalMs: 2, timeoutMs: 5_000 };
let queues: WorkQueue[] = [];

function makeQueue(overrides: Partial<WorkQueueOptions> = {}) {
  const clock = new ManualClock();
  const reports: ReconcileReport[] = [];
  const depths: number[] = [];
  const queue = new WorkQueue({
    concurrency: 1,
    clock,
    // 0.5 puts the jitter factor at exactly 1: delays are the plain exponential steps.
    random: () => 0.5,
    onReconciled: (report) => reports.push(report),
    onDepthChange: (depth) => depths.push(depth),
    ...overrides,
  });
  queues.push(queue);
  const reconciler = new ScriptedReconciler();
  return { queue, clock, reconciler, reports, depths };
}

afterEach(async () => {
  await Promise.all(queues.map((queue) => queue.shutdown(0)));
  queues = [];
});

describe('backoffDelayMs', () => {
  const policy = { baseMs: 1_000, maxMs: 300_000 };

  it('doubles per failure from the base and stops at the ceiling', () => {
    const delays = [1, 2, 3, 4, 10, 30].map((failures) => backoffDelayMs(failures, policy, () => 0.5));
    expect(delays).toEqual([1_000, 2_000, 4_000, 8_000, 300_000, 300_000]);
  });

  it('spreads each step by ±20%', () => {
    expect(backoffDelayMs(3, policy, () => 0)).toBe(3_200);
    expect(backoffDelayMs(3, policy, () => 0.999_999)).toBe(4_800);
  });
});

describe('WorkQueue', () => {
  it('runs a key added several times before start once', async () => {
    const { queue, reconciler } = makeQueue();
    queue.add('ns/a');
    queue.add('ns/a');
    queue.add('ns/a');
    expect(queue.depth()).toBe(1);
    queue.start(reconciler.reconcile);
    expect(reconciler.keys()).toEqual(['ns/a']);
    reconciler.call(0).succeed();
    await waitFor(() => queue.depth() === 0 && reconciler.runningTotal() === 0, fast);
    expect(reconciler.keys()).toEqual(['ns/a']);
  });

  it('never runs one key twice at once: a key added while in flight runs once more afterwards', async () => {
    const { queue, reconciler, reports } = makeQueue({ concurrency: 4 });
    queue.start(reconciler.reconcile);
    queue.add('ns/a');
    queue.add('ns/a');
    queue.add('ns/a');
    expect(reconciler.keys()).toEqual(['ns/a']);
    reconciler.call(0).succeed();
    await waitFor(() => reconciler.calls.length === 2, { ...fast, description: 'the second run' });
    reconciler.call(1).succeed();
    await waitFor(() => reports.length === 2, fast);
    expect(reconciler.calls).toHaveLength(2);
    expect(reconciler.maxRunningOneKey).toBe(1);
  });

  it('runs at most `concurrency` keys at once and reports the depth of the rest', async () => {
    const { queue, reconciler, depths } = makeQueue({ concurrency: 2 });
    for (const key of ['a', 'b', 'c', 'd', 'e']) queue.add(key);
    expect(queue.depth()).toBe(5);
    queue.start(reconciler.reconcile);
    expect(reconciler.keys()).toEqual(['a', 'b']);
    expect(queue.depth()).toBe(3);
    reconciler.call(0).succeed();
    await waitFor(() => reconciler.calls.length === 3, fast);
    expect(reconciler.keys()).toEqual(['a', 'b', 'c']);
    for (const index of [1, 2]) reconciler.call(index).succeed();
    await waitFor(() => reconciler.calls.length === 5, fast);
    for (const index of [3, 4]) reconciler.call(index).succeed();
    await waitFor(() => reconciler.runningTotal() === 0, fast);
    expect(reconciler.maxRunning).toBe(2);
    expect(depths.at(-1)).toBe(0);
    expect(Math.max(...depths)).toBe(5);
  });

  it('backs a failing key off exponentially and resets the back-off after a success', async () => {
    const { queue, clock, reconciler, reports } = makeQueue();
    queue.start(reconciler.reconcile);
    queue.add('ns/a');
    const failAndExpectRetryIn = async (index: number, delayMs: number) => {
      reconciler.call(index).fail(new Error('provider down'));
      await waitFor(() => clock.pendingDelays().length === 1, fast);
      expect(clock.pendingDelays()).toEqual([delayMs]);
      clock.advance(delayMs - 1);
      expect(reconciler.calls).toHaveLength(index + 1);
      clock.advance(1);
      expect(reconciler.calls).toHaveLength(index + 2);
    };
    await failAndExpectRetryIn(0, 1_000);
    await failAndExpectRetryIn(1, 2_000);
    await failAndExpectRetryIn(2, 4_000);
    reconciler.call(3).succeed();
    await waitFor(() => reports.length === 4, fast);
    expect(clock.pendingDelays()).toEqual([]);
    queue.add('ns/a');
    await failAndExpectRetryIn(4, 1_000);
    expect(reports.map((report) => report.outcome)).toEqual(['error', 'error', 'error', 'success', 'error']);
    expect(reports[0]?.error).toEqual(new Error('provider down'));
  });

  it('caps the back-off at maxBackoffMs', async () => {
    const { queue, clock, reconciler } = makeQueue({ baseBackoffMs: 1_000, maxBackoffMs: 3_000 });
    queue.start(reconciler.reconcile);
    queue.add('k');
    for (const [index, delayMs] of [1_000, 2_000, 3_000, 3_000].entries()) {
      reconciler.call(index).fail(new Error('still down'));
      await waitFor(() => clock.pendingDelays().length === 1, fast);
      expect(clock.pendingDelays()).toEqual([delayMs]);
      clock.advance(delayMs);
    }
  });

  it('schedules the next run after requeueAfterMs on success', async () => {
    const { queue, clock, reconciler } = makeQueue();
    queue.start(reconciler.reconcile);
    queue.add('k');
    reconciler.call(0).succeed({ outcome: 'success', requeueAfterMs: 600_000 });
    await waitFor(() => clock.pendingDelays().length === 1, fast);
    expect(clock.pendingDelays()).toEqual([600_000]);
    clock.advance(600_000);
    expect(reconciler.calls).toHaveLength(2);
  });

  /** A queue whose key 'k' failed once (thrown) and runs again after its first back-off. */
  async function afterOneFailure() {
    const made = makeQueue();
    made.queue.start(made.reconciler.reconcile);
    made.queue.add('k');
    made.reconciler.call(0).fail(new Error('down'));
    await waitFor(() => made.clock.pendingDelays().length === 1, fast);
    made.clock.advance(1_000);
    return made;
  }

  it('requeues a requeue_after result after exactly requeueAfterMs, leaving the back-off as it was', async () => {
    const { clock, reconciler, reports } = await afterOneFailure();
    reconciler.call(1).succeed({ outcome: 'requeue_after', requeueAfterMs: 900_000 });
    await waitFor(() => clock.pendingDelays().length === 1, fast);
    expect(clock.pendingDelays()).toEqual([900_000]);
    clock.advance(900_000);
    // The quota wait did not count: the next failure is the second, not the third.
    reconciler.call(2).succeed({ outcome: 'error' });
    await waitFor(() => clock.pendingDelays().length === 1, fast);
    expect(clock.pendingDelays()).toEqual([2_000]);
    expect(reports.map((report) => report.outcome)).toEqual(['error', 'requeue_after', 'error']);
  });

  it('backs off a returned error as it does a thrown one, and reports no thrown error for it', async () => {
    const { queue, clock, reconciler, reports } = makeQueue();
    queue.start(reconciler.reconcile);
    queue.add('k');
    reconciler.call(0).succeed({ outcome: 'error' });
    await waitFor(() => clock.pendingDelays().length === 1, fast);
    expect(clock.pendingDelays()).toEqual([1_000]);
    expect(reports).toEqual([{ key: 'k', outcome: 'error', durationSeconds: 0 }]);
  });

  it('leaves a stalled key until it is added again, with its back-off reset', async () => {
    const { queue, clock, reconciler, reports } = await afterOneFailure();
    reconciler.call(1).succeed({ outcome: 'stalled' });
    await waitFor(() => reports.length === 2, fast);
    expect(clock.pendingDelays()).toEqual([]);
    queue.add('k');
    reconciler.call(2).fail(new Error('down'));
    await waitFor(() => clock.pendingDelays().length === 1, fast);
    expect(clock.pendingDelays()).toEqual([1_000]);
    expect(reports.map((report) => report.outcome)).toEqual(['error', 'stalled', 'error']);
  });

  it('keeps the earliest due time when a key is scheduled twice', async () => {
    const { queue, clock, reconciler } = makeQueue();
    queue.start(reconciler.reconcile);
    queue.addAfter('later-first', 5_000);
    queue.addAfter('later-first', 1_000);
    queue.addAfter('sooner-first', 1_000);
    queue.addAfter('sooner-first', 5_000);
    expect(clock.pendingDelays()).toEqual([1_000, 1_000]);
    clock.advance(1_000);
    expect(reconciler.keys()).toEqual(['later-first']);
    reconciler.call(0).succeed();
    await waitFor(() => reconciler.calls.length === 2, fast);
    reconciler.call(1).succeed();
    await waitFor(() => reconciler.runningTotal() === 0, fast);
    clock.advance(10_000);
    expect(reconciler.keys()).toEqual(['later-first', 'sooner-first']);
  });

  it('runs a scheduled key at once when it is added, and only once', async () => {
    const { queue, clock, reconciler } = makeQueue();
    queue.start(reconciler.reconcile);
    queue.addAfter('k', 60_000);
    queue.add('k');
    expect(reconciler.keys()).toEqual(['k']);
    expect(clock.pendingDelays()).toEqual([]);
    reconciler.call(0).succeed();
    await waitFor(() => reconciler.runningTotal() === 0, fast);
    clock.advance(60_000);
    expect(reconciler.calls).toHaveLength(1);
  });

  it('runs a key that failed while it was re-added at once, not after its back-off', async () => {
    const { queue, reconciler } = makeQueue();
    queue.start(reconciler.reconcile);
    queue.add('k');
    queue.add('k');
    reconciler.call(0).fail(new Error('conflict'));
    await waitFor(() => reconciler.calls.length === 2, fast);
  });

  it('on shutdown drops waiting keys, clears its timers and waits for in-flight reconciles', async () => {
    const { queue, clock, reconciler } = makeQueue({ concurrency: 1 });
    queue.start(reconciler.reconcile);
    queue.add('running');
    queue.add('waiting');
    queue.addAfter('scheduled', 10_000);
    let shutDown = false;
    const shutdown = queue.shutdown(30_000).then(() => {
      shutDown = true;
    });
    expect(queue.depth()).toBe(0);
    expect(clock.pendingDelays()).toEqual([30_000]);
    queue.add('after-shutdown');
    expect(shutDown).toBe(false);
    reconciler.call(0).succeed({ outcome: 'success', requeueAfterMs: 1_000 });
    await shutdown;
    expect(reconciler.keys()).toEqual(['running']);
    expect(reconciler.call(0).signal.aborted).toBe(false);
    expect(clock.pendingDelays()).toEqual([]);
  });

  it('aborts the signals of reconciles still running at the drain deadline', async () => {
    const { queue, clock, reconciler } = makeQueue({ concurrency: 2 });
    queue.start(reconciler.reconcile);
    queue.add('a');
    queue.add('b');
    const shutdown = queue.shutdown(5_000);
    reconciler.call(0).succeed();
    await waitFor(() => reconciler.runningTotal() === 1, fast);
    expect(reconciler.call(1).signal.aborted).toBe(false);
    clock.advance(5_000);
    await shutdown;
    expect(reconciler.call(1).signal.aborted).toBe(true);
    expect(reconciler.call(0).signal.aborted).toBe(false);
    expect(clock.pendingDelays()).toEqual([]);
  });

  it('abort fires the running reconcile\'s signal and runs the key again at once, without a failure, a report or its requeue', async () => {
    const { queue, clock, reconciler, reports } = makeQueue({ concurrency: 2 });
    queue.start(reconciler.reconcile);
    queue.add('k');
    queue.add('other');
    queue.abort('k', new Error('deleted'));
    expect(reconciler.call(0).signal.aborted).toBe(true);
    expect(reconciler.call(1).signal.aborted).toBe(false);
    reconciler.call(0).succeed({ outcome: 'success', requeueAfterMs: 60_000 });
    await waitFor(() => reconciler.calls.length === 3, { ...fast, description: 'the re-run' });
    expect(reconciler.call(2)).toMatchObject({ key: 'k' });
    expect(reconciler.call(2).signal.aborted).toBe(false);
    expect(clock.pendingDelays()).toEqual([]);
    // A failure of the aborted run counted nothing: the re-run's first failure backs off 1 s.
    queue.abort('k', new Error('changed'));
    reconciler.call(2).fail(new Error('aborted'));
    await waitFor(() => reconciler.calls.length === 4, { ...fast, description: 'the second re-run' });
    reconciler.call(3).fail(new Error('provider down'));
    await waitFor(() => clock.pendingDelays().length === 1, fast);
    expect(clock.pendingDelays()).toEqual([1_000]);
    // Only the run that was not aborted is reported (the metrics and the failure log line).
    expect(reports.filter((report) => report.key === 'k').map((report) => report.outcome)).toEqual(['error']);
  });

  it('abort of a key that is not running does nothing', () => {
    const { queue, reconciler } = makeQueue();
    queue.start(reconciler.reconcile);
    queue.abort('idle', new Error('deleted'));
    expect(reconciler.calls).toHaveLength(0);
    expect(queue.depth()).toBe(0);
  });

  it('reports each reconcile with its outcome and duration', async () => {
    const { queue, clock, reconciler, reports } = makeQueue();
    queue.start(reconciler.reconcile);
    queue.add('k');
    clock.advance(1_500);
    reconciler.call(0).succeed();
    await waitFor(() => reports.length === 1, fast);
    expect(reports[0]).toEqual({ key: 'k', outcome: 'success', durationSeconds: 1.5 });
  });
});
