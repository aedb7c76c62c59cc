import { describe, expect, it } from '@jest/globals';
import { budgetOf, parseCallRate, planKey, PROVIDER_CALL_RATE, roundUpInterval, type PlannedResource } from '../../../src/budget/plan.js';

const minutes = (n: number): number => n * 60_000;
const resources = (count: number, cost: number, intervalMs: number, prefix = 'r'): PlannedResource[] =>
  Array.from({ length: count }, (_, i) => ({ id: `${prefix}${String(i).padStart(3, '0')}`, cost, intervalMs }));

describe('planKey', () => {
  it('keeps every spec interval while the periodic demand fits 90% of the budget', () => {
    // 30 clusters of 1,000 users every 10 minutes: 1,800 calls/h, over 90% of 1,900.
    const over = planKey(resources(30, 10, minutes(10)), PROVIDER_CALL_RATE);
    expect(over.stretched).toBe(30);
    // 28 of them: 1,680 calls/h, under 1,710.
    const fits = planKey(resources(28, 10, minutes(10)), PROVIDER_CALL_RATE);
    expect(fits.stretched).toBe(0);
    expect(fits.demandCalls).toBe(1680);
    expect(fits.plannedCalls).toBe(1680);
    expect([...fits.intervals.values()].every((ms) => ms === minutes(10))).toBe(true);
  });

  it("stretches the issue's 40 clusters of 1,000 users at 10 minutes by one factor, within the periodic budget", () => {
    const plan = planKey(resources(40, 10, minutes(10)), PROVIDER_CALL_RATE);
    expect(plan.budgetCalls).toBe(1900);
    expect(plan.periodicCalls).toBeCloseTo(1710);
    expect(plan.demandCalls).toBe(2400);
    expect(plan.stretched).toBe(40);
    const intervals = new Set(plan.intervals.values());
    expect(intervals.size).toBe(1);
    // 2,400 / 1,710 × 10 min = 14.04 min, rounded up to the minute.
    expect([...intervals]).toEqual([minutes(15)]);
    expect(plan.plannedCalls).toBeLessThanOrEqual(plan.periodicCalls);
  });

  it('shares max-min fairly: small resources keep their interval, large ones get an equal share', () => {
    const small = resources(10, 1, minutes(10), 's'); // 6 calls/h each
    const large = resources(4, 50, minutes(10), 'l'); // 300 calls/h each
    const plan = planKey([...small, ...large], { calls: 1000, windowMs: 3_600_000 });
    // Budget 950, periodic 855; small take 60, the four large share 795: 198.75 each.
    for (const r of small) expect(plan.intervals.get(r.id)).toBe(minutes(10));
    for (const r of large) expect(plan.intervals.get(r.id)).toBe(roundUpInterval((50 * 3_600_000) / 198.75));
    expect(plan.stretched).toBe(4);
    expect(plan.plannedCalls).toBeLessThanOrEqual(plan.periodicCalls);
  });

  it('counts a resource that has not synced yet as one page', () => {
    const plan = planKey([{ id: 'new', cost: 0, intervalMs: minutes(1) }], PROVIDER_CALL_RATE);
    expect(plan.demandCalls).toBe(60);
  });

  it('plans in the key window, so a compressed window scales like the hour', () => {
    const hourly = planKey(resources(40, 10, minutes(10)), PROVIDER_CALL_RATE);
    const compressed = planKey(resources(40, 10, 30_000), { calls: 2000, windowMs: 180_000 });
    expect(compressed.demandCalls).toBe(hourly.demandCalls);
    expect(compressed.stretched).toBe(40);
    expect(compressed.plannedCalls).toBeLessThanOrEqual(compressed.periodicCalls);
  });
});

describe('planKey at the budget bench', () => {
  it('leaves 100 one-page resources at 30 s in a 2,000/180 s window alone: 600 calls asked, 1,710 allowed', () => {
    // What the bench measured before (at most 604 calls of one key per window) is this demand, not a stretch.
    const plan = planKey(resources(100, 1, 30_000), { calls: 2000, windowMs: 180_000 });
    expect(plan.demandCalls).toBe(600);
    expect(plan.plannedCalls).toBe(600);
    expect(plan.stretched).toBe(0);
  });

  it('stretches them 4.3 times on a 350/360 s key, planned within its periodic budget', () => {
    const plan = planKey(resources(100, 1, 30_000), { calls: 350, windowMs: 360_000 });
    // Budget 332, periodic 298.8: 2.988 calls each, one every 120.5 s, rounded up to 130 s.
    expect(plan.budgetCalls).toBe(332);
    expect(plan.demandCalls).toBe(1200);
    expect(plan.stretched).toBe(100);
    expect(new Set(plan.intervals.values())).toEqual(new Set([130_000]));
    expect(plan.plannedCalls).toBeLessThanOrEqual(plan.periodicCalls);
  });
});

describe('budget numbers', () => {
  it('keeps a 5% safety margin below the rate', () => {
    expect(budgetOf(PROVIDER_CALL_RATE)).toBe(1900);
    expect(budgetOf({ calls: 1, windowMs: 1000 })).toBe(1);
  });

  it('rounds stretched intervals up to a coarse step', () => {
    expect(roundUpInterval(30_001)).toBe(31_000);
    expect(roundUpInterval(61_000)).toBe(70_000);
    expect(roundUpInterval(minutes(14) + 1)).toBe(minutes(15));
    expect(roundUpInterval(minutes(61))).toBe(minutes(65));
  });

  it('parses calls per duration and refuses anything else', () => {
    expect(parseCallRate('2000/1h')).toEqual({ calls: 2000, windowMs: 3_600_000 });
    expect(parseCallRate(' 5000/30m ')).toEqual({ calls: 5000, windowMs: 1_800_000 });
    for (const bad of ['', '2000', '0/1h', '-1/1h', '2000/', '2000/1x', '1.5/1h', 'a/1h']) expect(parseCallRate(bad)).toBeUndefined();
  });
});
