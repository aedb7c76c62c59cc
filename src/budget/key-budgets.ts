import type { AccessKeyIdentity } from '../provider/key-identity.js';
import { rateLimitOf, type CallLimiter, type CallLimiters } from '../provider/rate-limiter.js';
import { CallBucket } from './bucket.js';
import { keyRateOf } from './declared-rate.js';
import { budgetOf, ON_DEMAND_SHARE, planKey, PROVIDER_CALL_RATE, type CallRate, type KeyPlan } from './plan.js';
import { delayAfterSync, keyPhaseOffset, phaseOf } from './schedule.js';

/**
 * Every access key's budget in one place: which resources use the key, its plan (effective
 * intervals), the bucket its calls come from, its slots, and whether the provider has said
 * it is spent. Syncs ask `admit` before calling and are told "now" or "come back at T";
 * nothing here ever waits.
 */

/** Periodic syncs leave a share of the bucket to on-demand ones (create, spec change, sync request, drift). */
export type SyncKind = 'periodic' | 'on-demand';

export type Admission =
  | { granted: true; release: () => void }
  | { granted: false; retryAt: number; reason: 'key-paused' | 'budget' };

/** One key's numbers, for metrics and logs; per hour whatever the key's window. */
export interface KeyReport {
  label: string;
  budgetPerHour: number;
  plannedPerHour: number;
  demandPerHour: number;
  tokens: number;
  resources: number;
  stretched: number;
  pausedUntil: number | undefined;
}

interface TrackedResource {
  id: string;
  keyId: string;
  intervalMs: number;
  cost: number;
  /** The rate its credentials Secret declares for the key, if it declares one. */
  declaredRate: CallRate | undefined;
}

interface KeyState {
  ref: AccessKeyIdentity;
  rate: CallRate;
  bucket: CallBucket;
  resources: Map<string, TrackedResource>;
  plan: KeyPlan;
  phases: Map<string, number>;
  /** Where the key's evenly spaced slots start (keyPhaseOffset). */
  phaseOffset: number;
  /** Our record of the provider's window: it starts at the first call after the last one ended. */
  windowStartedAt: number | undefined;
  pausedUntil: number;
}

const HOUR_MS = 3_600_000;

export interface KeyBudgetsOptions {
  /** The rate of a key whose Secrets declare none; default the provider's 2,000 per hour. */
  defaultRate?: CallRate;
  now?: () => number;
}

const sameRate = (a: CallRate | undefined, b: CallRate | undefined): boolean => a?.calls === b?.calls && a?.windowMs === b?.windowMs;

export class KeyBudgets implements CallLimiters {
  private readonly keys = new Map<string, KeyState>();
  private readonly resources = new Map<string, TrackedResource>();
  private readonly defaultRate: CallRate;
  private readonly now: () => number;

  constructor(options: KeyBudgetsOptions = {}) {
    this.defaultRate = options.defaultRate ?? PROVIDER_CALL_RATE;
    this.now = options.now ?? Date.now;
  }

  /**
   * Puts a resource in its key's plan, or moves it there from another key. `cost` (pages)
   * is used only when the resource is new here (say, estimated from status after a
   * restart); later syncs report their own. `rate`: what the resource's credentials Secret
   * declares the key is allowed (see keyRateOf).
   */
  track(resourceId: string, ref: AccessKeyIdentity, intervalMs: number, options: { cost?: number; rate?: CallRate } = {}): void {
    const previous = this.resources.get(resourceId);
    if (previous !== undefined && previous.keyId !== ref.id) this.forget(resourceId);
    const kept = this.resources.get(resourceId);
    const entry: TrackedResource = {
      id: resourceId,
      keyId: ref.id,
      intervalMs,
      cost: kept?.cost ?? Math.max(1, options.cost ?? 1),
      declaredRate: options.rate,
    };
    if (kept !== undefined && kept.intervalMs === entry.intervalMs && sameRate(kept.declaredRate, entry.declaredRate)) return;
    this.resources.set(resourceId, entry);
    const state = this.keys.get(ref.id) ?? this.newKey(ref);
    state.resources.set(resourceId, entry);
    this.replan(state);
  }

  /** Takes a deleted resource (or one that moved keys) out of its key's plan. */
  forget(resourceId: string): void {
    const entry = this.resources.get(resourceId);
    if (entry === undefined) return;
    this.resources.delete(resourceId);
    const state = this.keys.get(entry.keyId);
    if (state === undefined) return;
    state.resources.delete(resourceId);
    if (state.resources.size === 0) this.keys.delete(entry.keyId);
    else this.replan(state);
  }

  /**
   * Whether a tracked resource may sync now. Granted: its expected calls are reserved until
   * `release` (call it when the sync ends, however). Refused: when to come back — the end
   * of the provider's window after a QuotaExceeded, else when the bucket will hold the calls.
   */
  admit(resourceId: string, kind: SyncKind): Admission {
    const entry = this.resources.get(resourceId);
    const state = entry === undefined ? undefined : this.keys.get(entry.keyId);
    if (entry === undefined || state === undefined) throw new Error(`${resourceId} is not tracked by any access key`);
    const now = this.now();
    if (now < state.pausedUntil) return { granted: false, retryAt: state.pausedUntil, reason: 'key-paused' };
    const keep = kind === 'periodic' ? Math.ceil(state.bucket.limit.capacity * ON_DEMAND_SHARE) : 0;
    const cost = entry.cost;
    const reservation = state.bucket.reserve(cost, keep, now);
    if (!reservation.granted) return { granted: false, retryAt: reservation.retryAt, reason: 'budget' };
    const bucket = state.bucket;
    let released = false;
    return {
      granted: true,
      release: () => {
        if (released) return;
        released = true;
        bucket.release(cost);
      },
    };
  }

  /** One call made with the key (retries included): taken from its bucket at once. */
  called(keyId: string): void {
    const state = this.keys.get(keyId);
    if (state === undefined) return;
    const now = this.now();
    state.bucket.spend(now);
    if (state.windowStartedAt === undefined || now >= state.windowStartedAt + state.rate.windowMs) state.windowStartedAt = now;
  }

  /** The provider client's limiter of a key: it counts each call and never makes it wait. */
  forKey(key: AccessKeyIdentity): CallLimiter {
    return {
      acquire: (signal) => {
        if (signal?.aborted === true) return Promise.reject(signal.reason as Error);
        this.called(key.id);
        return Promise.resolve();
      },
    };
  }

  /** What a sync read: its pages are the cost of its next sync. */
  synced(resourceId: string, pages: number): void {
    const entry = this.resources.get(resourceId);
    const cost = Math.max(1, pages);
    if (entry === undefined || entry.cost === cost) return;
    entry.cost = cost;
    const state = this.keys.get(entry.keyId);
    if (state !== undefined) this.replan(state);
  }

  /**
   * The provider answered QuotaExceeded: every resource of the key waits for the end of the
   * window the provider counts in — by our record, the one that began with the first call
   * after the previous window ended; without a record (or past its end), a whole window.
   */
  quotaExceeded(keyId: string): number | undefined {
    const state = this.keys.get(keyId);
    if (state === undefined) return undefined;
    const now = this.now();
    const recordedEnd = state.windowStartedAt === undefined ? 0 : state.windowStartedAt + state.rate.windowMs;
    state.pausedUntil = Math.max(state.pausedUntil, recordedEnd > now ? recordedEnd : now + state.rate.windowMs);
    return state.pausedUntil;
  }

  /** The interval the plan gives a tracked resource. */
  effectiveIntervalMs(resourceId: string): number | undefined {
    const entry = this.resources.get(resourceId);
    return entry === undefined ? undefined : this.keys.get(entry.keyId)?.plan.intervals.get(resourceId);
  }

  /** The effective interval of a tracked resource when the plan stretched it beyond its spec interval. */
  stretchedIntervalMs(resourceId: string): number | undefined {
    const effective = this.effectiveIntervalMs(resourceId);
    const entry = this.resources.get(resourceId);
    return effective !== undefined && entry !== undefined && effective > entry.intervalMs ? effective : undefined;
  }

  /** From now until the next periodic sync of a resource that has just synced: its next slot. */
  delayAfterSyncMs(resourceId: string): number | undefined {
    const entry = this.resources.get(resourceId);
    const state = entry === undefined ? undefined : this.keys.get(entry.keyId);
    const intervalMs = state?.plan.intervals.get(resourceId);
    if (state === undefined || intervalMs === undefined) return undefined;
    return delayAfterSync(this.now(), intervalMs, state.phases.get(resourceId) ?? 0);
  }

  /** The label of a key and a short account of its plan, for a stretched resource's event. */
  describeKeyOf(resourceId: string): string | undefined {
    const entry = this.resources.get(resourceId);
    const state = entry === undefined ? undefined : this.keys.get(entry.keyId);
    if (state === undefined) return undefined;
    const perHour = (calls: number): number => Math.round((calls * HOUR_MS) / state.rate.windowMs);
    return (
      `access key ${state.ref.short} serves ${state.resources.size} resources asking for ${perHour(state.plan.demandCalls)} calls/h; ` +
      `it plans ${perHour(state.plan.periodicCalls)} calls/h for periodic syncs (budget ${perHour(state.plan.budgetCalls)}/h, 10% kept for on-demand syncs)`
    );
  }

  /** Every key's numbers now. */
  report(): KeyReport[] {
    const now = this.now();
    return [...this.keys.values()].map((state) => {
      const perHour = (calls: number): number => (calls * HOUR_MS) / state.rate.windowMs;
      return {
        label: state.ref.short,
        budgetPerHour: perHour(state.plan.budgetCalls),
        plannedPerHour: perHour(state.plan.plannedCalls),
        demandPerHour: perHour(state.plan.demandCalls),
        tokens: state.bucket.available(now),
        resources: state.resources.size,
        stretched: state.plan.stretched,
        pausedUntil: state.pausedUntil > now ? state.pausedUntil : undefined,
      };
    });
  }

  private newKey(ref: AccessKeyIdentity): KeyState {
    const rate = this.defaultRate;
    const state: KeyState = {
      ref,
      rate,
      bucket: this.bucketOf(rate),
      resources: new Map(),
      plan: planKey([], rate),
      phases: new Map(),
      phaseOffset: keyPhaseOffset(ref.id),
      windowStartedAt: undefined,
      pausedUntil: 0,
    };
    this.keys.set(ref.id, state);
    return state;
  }

  private bucketOf(rate: CallRate): CallBucket {
    return new CallBucket(rateLimitOf(budgetOf(rate), rate.windowMs), this.now());
  }

  private replan(state: KeyState): void {
    const entries = [...state.resources.values()];
    const rate = keyRateOf(entries.map((e) => e.declaredRate), this.defaultRate);
    if (!sameRate(rate, state.rate)) {
      state.rate = rate;
      state.bucket.setLimit(rateLimitOf(budgetOf(rate), rate.windowMs), this.now());
    }
    state.plan = planKey(entries, state.rate);
    const ids = entries.map((e) => e.id).sort();
    state.phases = new Map(ids.map((id, rank) => [id, phaseOf(rank, ids.length, state.phaseOffset)]));
  }
}
