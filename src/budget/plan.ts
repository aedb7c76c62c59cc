import { parseDuration } from '../api/duration.js';

/**
 * The call budget of one provider access key, planned: what each resource's periodic sync
 * costs, whether the key's window has room for all of them, and, when it has not, how far
 * each resource's interval is stretched. Pure: the numbers in, the plan out.
 *
 * The rule, as the README states it:
 * - A sync costs the pages its last sync read (one before its first sync); a resource asks
 *   for `cost × window / syncInterval` calls per window.
 * - The key's budget is its calls per window (2,000 per hour unless configured) less a 5 %
 *   safety margin; a further 10 % of that is kept for on-demand syncs (create, spec change,
 *   sync request, drift), so periodic syncs plan with the remaining 90 %.
 * - When the periodic demand does not fit, the budget is shared max-min fairly: every
 *   resource is entitled to an equal share of calls; one that asks for less than its share
 *   keeps its interval and leaves the rest to the others, and those that ask for more get
 *   exactly the share, i.e. their interval is stretched to `cost × window / share`.
 *   Equal resources are therefore stretched by the same factor, and a large cluster on a
 *   shared key is stretched before a small one is.
 * - Stretched intervals are rounded up to a coarse step (1 s under a minute, 10 s under ten
 *   minutes, 1 m under an hour, 5 m beyond), so a small change of demand does not rewrite
 *   every status.
 */

/** What the provider allows one access key: `calls` per `windowMs`. */
export interface CallRate {
  calls: number;
  windowMs: number;
}

/** The provider's documented quota: 2,000 calls per 3,600 s per access key. */
export const PROVIDER_CALL_RATE: Readonly<CallRate> = Object.freeze({ calls: 2000, windowMs: 3_600_000 });

/** `2000/1h`: calls per duration, as the `--provider-rate-limit` flag writes it; undefined when it is not one. */
export function parseCallRate(text: string): CallRate | undefined {
  const match = /^(\d+)\/(.+)$/.exec(text.trim());
  const calls = Number(match?.[1]);
  const windowMs = parseDuration(match?.[2] ?? '');
  if (!Number.isSafeInteger(calls) || calls < 1 || windowMs === undefined || windowMs <= 0) return undefined;
  return { calls, windowMs };
}

/** Share of the provider's quota never planned for: other tools, retries, a list that grew. */
export const SAFETY_MARGIN = 0.05;
/** Share of the budget periodic syncs leave to on-demand ones. */
export const ON_DEMAND_SHARE = 0.1;

/** The calls per window the operator lets itself make with a key of this rate. */
export function budgetOf(rate: CallRate): number {
  return Math.max(1, Math.floor(rate.calls * (1 - SAFETY_MARGIN)));
}

/** One resource as its key's plan sees it. */
export interface PlannedResource {
  id: string;
  /** Calls one sync makes: its pages at the last sync, 1 before the first. */
  cost: number;
  /** spec.syncInterval in ms. */
  intervalMs: number;
}

export interface KeyPlan {
  /** budgetOf the key's rate: calls per window the operator may make. */
  budgetCalls: number;
  /** What periodic syncs may use: the budget less the on-demand share. */
  periodicCalls: number;
  /** Calls per window the resources ask for at their spec intervals. */
  demandCalls: number;
  /** Calls per window at the effective intervals. */
  plannedCalls: number;
  /** Effective interval per resource id, never below its spec interval. */
  intervals: Map<string, number>;
  /** Resources whose effective interval is longer than their spec interval. */
  stretched: number;
}

const callsPerWindow = (r: PlannedResource, windowMs: number): number => (Math.max(1, r.cost) * windowMs) / r.intervalMs;

/** The step a stretched interval is rounded up to. */
function roundingStepMs(ms: number): number {
  if (ms < 60_000) return 1_000;
  if (ms < 600_000) return 10_000;
  if (ms < 3_600_000) return 60_000;
  return 300_000;
}

/** An interval rounded up to its step, for a stable status. */
export function roundUpInterval(ms: number): number {
  const step = roundingStepMs(ms);
  return Math.ceil(ms / step) * step;
}

/** The plan of one key's resources under `rate`. */
export function planKey(resources: readonly PlannedResource[], rate: CallRate): KeyPlan {
  const budgetCalls = budgetOf(rate);
  const periodicCalls = budgetCalls * (1 - ON_DEMAND_SHARE);
  const demands = resources.map((r) => ({ r, demand: callsPerWindow(r, rate.windowMs) })).sort((a, b) => a.demand - b.demand);
  const demandCalls = demands.reduce((sum, d) => sum + d.demand, 0);
  const intervals = new Map<string, number>();
  let plannedCalls = 0;
  let stretched = 0;
  let remaining = periodicCalls;
  // Sorted by demand: once one asks for more than an equal share of what is left, all the
  // rest do too, and each of them gets that same share.
  let share: number | undefined;
  demands.forEach(({ r, demand }, index) => {
    if (share === undefined && (demandCalls <= periodicCalls || demand <= remaining / (demands.length - index))) {
      intervals.set(r.id, r.intervalMs);
      plannedCalls += demand;
      remaining -= demand;
      return;
    }
    share ??= remaining / (demands.length - index);
    const intervalMs = Math.max(r.intervalMs, roundUpInterval((Math.max(1, r.cost) * rate.windowMs) / share));
    intervals.set(r.id, intervalMs);
    plannedCalls += callsPerWindow({ ...r, intervalMs }, rate.windowMs);
    if (intervalMs > r.intervalMs) stretched++;
  });
  return { budgetCalls, periodicCalls, demandCalls, plannedCalls, intervals, stretched };
}
