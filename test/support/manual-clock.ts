// A Clock whose time moves only when a test says so: back-off and requeue delays
// are checked by the due times of the timers, never by waiting for them.
import type { Clock } from '../../src/runtime/clock.js';

interface Timer {
  dueAt: number;
  order: number;
  callback: () => void;
}

export class ManualClock implements Clock {
  private time: number;
  private readonly timers = new Set<Timer>();
  private scheduledCount = 0;

  constructor(startMs = 1_700_000_000_000) {
    this.time = startMs;
  }

  now(): number {
    return this.time;
  }

  schedule(callback: () => void, delayMs: number): () => void {
    const timer = { dueAt: this.time + Math.max(0, delayMs), order: this.scheduledCount++, callback };
    this.timers.add(timer);
    return () => this.timers.delete(timer);
  }

  /** Moves time forward, firing every timer that falls due, in due order. */
  advance(ms: number): void {
    const target = this.time + ms;
    for (;;) {
      const next = this.earliest();
      if (!next || next.dueAt > target) break;
      this.timers.delete(next);
      this.time = next.dueAt;
      next.callback();
    }
    this.time = target;
  }

  /** Delays from now of the pending timers, soonest first. */
  pendingDelays(): number[] {
    return [...this.timers].map((timer) => timer.dueAt - this.time).sort((a, b) => a - b);
  }

  private earliest(): Timer | undefined {
    let earliest: Timer | undefined;
    for (const timer of this.timers) {
      if (!earliest || timer.dueAt < earliest.dueAt || (timer.dueAt === earliest.dueAt && timer.order < earliest.order)) {
        earliest = timer;
      }
    }
    return earliest;
  }
}
