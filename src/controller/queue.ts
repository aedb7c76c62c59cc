// A work queue in the manner of controller-runtime's: keys, not objects, are queued; a key
// runs at most once at a time; failures back off per key; shutdown drains with a deadline.
import { pino, type Logger } from 'pino';
import { backoffDelayMs } from '../runtime/backoff.js';
import { systemClock, type Clock } from '../runtime/clock.js';

/**
 * How a reconcile ended, which is also what the queue does next with its key and the `result`
 * label of the reconcile metrics (kube-rs's Action, with the outcome named):
 * - `success`: done; runs again after `requeueAfterMs` when given
 * - `stalled`: failed in a way retrying cannot mend; runs again only when the key is added
 * - `requeue_after`: failed, and may be retried after exactly `requeueAfterMs`
 * - `error`: failed, retried after the key's exponential back-off (as is anything thrown),
 *   or after `retryAfterMs` when the reconciler keeps its own count (one that survives restarts)
 * The back-off counts consecutive `error`s: `success` and `stalled` reset it, and a
 * `requeue_after` (a quota window, say) leaves it as it is.
 */
export type ReconcileResult =
  | { outcome: 'success'; requeueAfterMs?: number }
  | { outcome: 'stalled' }
  | { outcome: 'requeue_after'; requeueAfterMs: number }
  | { outcome: 'error'; retryAfterMs?: number };

export type ReconcileOutcome = ReconcileResult['outcome'];

/**
 * Reconciles one key; `signal` aborts when the queue shuts down past its drain deadline. It
 * returns its failures; what it throws is unexpected and counts as an `error`.
 */
export type Reconciler<K> = (key: K, signal: AbortSignal) => Promise<ReconcileResult>;

export interface ReconcileReport {
  key: string;
  outcome: ReconcileOutcome;
  durationSeconds: number;
  /** What the reconciler threw, if it threw. */
  error?: unknown;
}

export interface WorkQueueOptions {
  /** Reconciles that may run at once (distinct keys). */
  concurrency: number;
  /** First back-off after a failure; doubles per consecutive failure of the key. Default 1 s. */
  baseBackoffMs?: number;
  /** Ceiling of the back-off. Default 5 min. */
  maxBackoffMs?: number;
  random?: () => number;
  clock?: Clock;
  /** Called whenever the number of keys waiting to run now changes (the queue depth metric). */
  onDepthChange?: (depth: number) => void;
  /** Called after every reconcile (the reconcile metrics). */
  onReconciled?: (report: ReconcileReport) => void;
  logger?: Logger;
}

export class WorkQueue {
  private readonly concurrency: number;
  private readonly backoff: { baseMs: number; maxMs: number };
  private readonly random: () => number;
  private readonly clock: Clock;
  private readonly onDepthChange: ((depth: number) => void) | undefined;
  private readonly onReconciled: ((report: ReconcileReport) => void) | undefined;
  private readonly logger: Logger;

  /** Keys due now, in order of arrival. */
  private readonly ready: string[] = [];
  /** Keys that must run (again): those in `ready`, and in-flight keys added while running. */
  private readonly dirty = new Set<string>();
  /** In-flight keys and the controllers of their signals. */
  private readonly inFlight = new Map<string, AbortController>();
  /** Keys due later: their due time and the cancel of their timer. */
  private readonly scheduled = new Map<string, { dueAt: number; cancel: () => void }>();
  /** Consecutive failures per key, for its back-off. */
  private readonly failures = new Map<string, number>();
  /** In-flight keys whose run `abort` cut short: its outcome is void, the key runs again. */
  private readonly superseded = new Set<string>();

  private reconciler: Reconciler<string> | undefined;
  private shuttingDown = false;
  private reportedDepth = 0;
  /** Resolved whenever the last in-flight reconcile finishes during shutdown. */
  private onIdle: (() => void) | undefined;

  constructor(options: WorkQueueOptions) {
    if (!Number.isInteger(options.concurrency) || options.concurrency < 1) {
      throw new Error(`concurrency must be a positive integer, got ${String(options.concurrency)}`);
    }
    this.concurrency = options.concurrency;
    this.backoff = { baseMs: options.baseBackoffMs ?? 1_000, maxMs: options.maxBackoffMs ?? 300_000 };
    this.random = options.random ?? Math.random;
    this.clock = options.clock ?? systemClock;
    this.onDepthChange = options.onDepthChange;
    this.onReconciled = options.onReconciled;
    this.logger = options.logger ?? pino({ level: 'silent' });
  }

  /** Queues `key` to run now. A key already waiting is not queued twice. */
  add(key: string): void {
    if (this.shuttingDown) return;
    // Due now is the earliest possible due time: it replaces a scheduled run.
    this.cancelScheduled(key);
    if (this.dirty.has(key)) return;
    this.dirty.add(key);
    // An in-flight key runs again when it finishes (see `finish`), never twice at once.
    if (this.inFlight.has(key)) return;
    this.ready.push(key);
    this.depthChanged();
    this.pump();
  }

  /** Queues `key` to run after `delayMs`. A key already due sooner keeps its earlier time. */
  addAfter(key: string, delayMs: number): void {
    if (this.shuttingDown) return;
    if (delayMs <= 0) {
      this.add(key);
      return;
    }
    // Waiting to run now (or again right after its current run) is sooner than any delay.
    if (this.dirty.has(key)) return;
    const dueAt = this.clock.now() + delayMs;
    const existing = this.scheduled.get(key);
    if (existing && existing.dueAt <= dueAt) return;
    existing?.cancel();
    const cancel = this.clock.schedule(() => {
      this.scheduled.delete(key);
      this.add(key);
    }, delayMs);
    this.scheduled.set(key, { dueAt, cancel });
  }

  /**
   * Aborts the signal of `key`'s running reconcile (its object was deleted or changed, so
   * what it is doing is stale) and runs the key again once that run returns. The aborted run
   * is neither a success nor a failure: its result and error are ignored. No-op when idle.
   */
  abort(key: string, reason: unknown): void {
    const controller = this.inFlight.get(key);
    if (controller === undefined || this.shuttingDown) return;
    this.superseded.add(key);
    this.dirty.add(key);
    controller.abort(reason);
  }

  /** Starts running keys through `reconciler`; keys added before start wait for it. */
  start(reconciler: Reconciler<string>): void {
    if (this.reconciler) throw new Error('the work queue is already started');
    this.reconciler = reconciler;
    this.pump();
  }

  /** Keys waiting to run now (neither in flight nor scheduled for later). */
  depth(): number {
    return this.ready.length;
  }

  /**
   * Stops taking work: queued and scheduled keys are dropped and their timers cleared.
   * Waits up to `drainTimeoutMs` for in-flight reconciles to finish, then aborts their
   * signals and returns without waiting further (a reconciler that ignores its signal cannot
   * hold shutdown up). What in-flight reconciles return afterwards is ignored.
   */
  async shutdown(drainTimeoutMs: number): Promise<void> {
    this.shuttingDown = true;
    for (const { cancel } of this.scheduled.values()) cancel();
    this.scheduled.clear();
    this.ready.length = 0;
    this.dirty.clear();
    this.depthChanged();
    if (this.inFlight.size === 0) return;
    if (drainTimeoutMs > 0) await this.drain(drainTimeoutMs);
    for (const controller of this.inFlight.values()) controller.abort(new Error('work queue shut down'));
  }

  /** Resolves when no reconcile is in flight, or after `timeoutMs`. */
  private drain(timeoutMs: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const cancelDeadline = this.clock.schedule(() => {
        this.onIdle = undefined;
        resolve();
      }, timeoutMs);
      this.onIdle = () => {
        this.onIdle = undefined;
        cancelDeadline();
        resolve();
      };
    });
  }

  private pump(): void {
    const reconciler = this.reconciler;
    if (!reconciler) return;
    while (!this.shuttingDown && this.inFlight.size < this.concurrency) {
      const key = this.ready.shift();
      if (key === undefined) break;
      this.dirty.delete(key);
      // This run covers a scheduled one; its result schedules the next.
      this.cancelScheduled(key);
      const controller = new AbortController();
      this.inFlight.set(key, controller);
      this.depthChanged();
      void this.run(key, reconciler, controller.signal);
    }
  }

  private async run(key: string, reconciler: Reconciler<string>, signal: AbortSignal): Promise<void> {
    const startedAt = this.clock.now();
    let result: ReconcileResult;
    let error: unknown;
    try {
      result = await reconciler(key, signal);
    } catch (thrown) {
      error = thrown;
      result = { outcome: 'error' };
    }
    const durationSeconds = (this.clock.now() - startedAt) / 1000;
    this.inFlight.delete(key);
    // A run cut short by `abort` is void: no report (metric, failure log) and no back-off.
    const superseded = this.superseded.delete(key) && !this.shuttingDown;
    if (!superseded) {
      this.onReconciled?.({ key, outcome: result.outcome, durationSeconds, ...(error === undefined ? {} : { error }) });
    }
    if (this.shuttingDown) {
      if (this.inFlight.size === 0) this.onIdle?.();
      return;
    }
    if (superseded) {
      this.logger.debug({ key }, 'reconcile aborted by a newer state; running it again');
      this.ready.push(key);
      this.depthChanged();
    } else {
      this.finish(key, result);
    }
    this.pump();
  }

  private finish(key: string, result: ReconcileResult): void {
    // Added while in flight: run again now, whatever this run's outcome asked for.
    if (this.dirty.has(key)) {
      this.ready.push(key);
      this.depthChanged();
    }
    switch (result.outcome) {
      case 'success':
        this.failures.delete(key);
        if (result.requeueAfterMs !== undefined) this.addAfter(key, result.requeueAfterMs);
        return;
      case 'stalled':
        this.failures.delete(key);
        return;
      case 'requeue_after':
        this.addAfter(key, result.requeueAfterMs);
        return;
      case 'error': {
        const failures = (this.failures.get(key) ?? 0) + 1;
        this.failures.set(key, failures);
        const delayMs = result.retryAfterMs ?? backoffDelayMs(failures, this.backoff, this.random);
        // The reconciler logged the failure itself; this only says when it runs again.
        this.logger.debug({ key, failures, retryInMs: delayMs }, 'backing off');
        this.addAfter(key, delayMs);
        return;
      }
    }
  }

  private cancelScheduled(key: string): void {
    const entry = this.scheduled.get(key);
    if (!entry) return;
    entry.cancel();
    this.scheduled.delete(key);
  }

  private depthChanged(): void {
    const depth = this.ready.length;
    if (depth === this.reportedDepth) return;
    this.reportedDepth = depth;
    this.onDepthChange?.(depth);
  }
}
