import { describe, expect, it } from '@jest/globals';
import { KeyBudgets } from '../../../src/budget/key-budgets.js';
import { keyPhaseOffset } from '../../../src/budget/schedule.js';

const keyA = { id: 'endpoint\nA\ndigest-a', short: 'aaaaaaaaaaaa' };
const keyB = { id: 'endpoint\nB\ndigest-b', short: 'bbbbbbbbbbbb' };
const hour = 3_600_000;

function budgets(start = 0) {
  const clock = { time: start };
  return { clock, budgets: new KeyBudgets({ now: () => clock.time }) };
}

/** Admits and runs a sync of `calls` calls on `key`. */
function sync(b: KeyBudgets, resource: string, keyId: string, calls: number, kind: 'periodic' | 'on-demand' = 'periodic') {
  const admission = b.admit(resource, kind);
  if (!admission.granted) return admission;
  for (let i = 0; i < calls; i++) b.called(keyId);
  b.synced(resource, calls);
  admission.release();
  return admission;
}

describe('KeyBudgets', () => {
  it('tells a sync on a spent key when to come back, while another key syncs at once', () => {
    const { budgets: b } = budgets();
    b.track('ns/a', keyA, 600_000, { cost: 95 });
    b.track('ns/b', keyB, 600_000);
    // 2,000/h less 5% gives a burst of 95 and 1,805/h after it.
    expect(sync(b, 'ns/a', keyA.id, 95).granted).toBe(true);
    const refused = b.admit('ns/a', 'on-demand');
    expect(refused).toMatchObject({ granted: false, reason: 'budget' });
    expect(b.admit('ns/b', 'on-demand').granted).toBe(true);
  });

  it("keeps a tenth of the bucket from periodic syncs for on-demand ones", () => {
    const { budgets: b } = budgets();
    b.track('ns/big', keyA, 600_000, { cost: 90 });
    b.track('ns/small', keyA, 600_000);
    expect(sync(b, 'ns/big', keyA.id, 90).granted).toBe(true);
    // 5 tokens left, 10 kept back: periodic waits, a sync request goes.
    expect(b.admit('ns/small', 'periodic').granted).toBe(false);
    expect(b.admit('ns/small', 'on-demand').granted).toBe(true);
  });

  it('pauses every resource of a key after QuotaExceeded until the window it began ends', () => {
    const { clock, budgets: b } = budgets(1_000_000);
    b.track('ns/a', keyA, 600_000);
    b.track('ns/a2', keyA, 600_000);
    b.track('ns/b', keyB, 600_000);
    expect(sync(b, 'ns/a', keyA.id, 1).granted).toBe(true); // the window starts here
    clock.time += 10 * 60_000;
    expect(b.quotaExceeded(keyA.id)).toBe(1_000_000 + hour);
    for (const resource of ['ns/a', 'ns/a2']) {
      expect(b.admit(resource, 'on-demand')).toEqual({ granted: false, retryAt: 1_000_000 + hour, reason: 'key-paused' });
    }
    expect(b.admit('ns/b', 'periodic').granted).toBe(true);
    clock.time = 1_000_000 + hour;
    expect(b.admit('ns/a2', 'periodic').granted).toBe(true);
  });

  it('pauses a whole window when it has no record of the window', () => {
    const { budgets: b } = budgets(5_000);
    b.track('ns/a', keyA, 600_000);
    expect(b.quotaExceeded(keyA.id)).toBe(5_000 + hour);
  });

  it('stretches intervals once the pages read make the plan exceed the budget, and restores them', () => {
    const { budgets: b } = budgets();
    for (let i = 0; i < 40; i++) b.track(`ns/r${i}`, keyA, 600_000);
    expect(b.effectiveIntervalMs('ns/r0')).toBe(600_000);
    for (let i = 0; i < 40; i++) b.synced(`ns/r${i}`, 10);
    expect(b.effectiveIntervalMs('ns/r0')).toBe(900_000);
    expect(b.stretchedIntervalMs('ns/r0')).toBe(900_000);
    expect(b.report()).toEqual([
      expect.objectContaining({ label: keyA.short, resources: 40, stretched: 40, budgetPerHour: 1900, demandPerHour: 2400 }),
    ]);
    for (let i = 10; i < 40; i++) b.forget(`ns/r${i}`);
    expect(b.effectiveIntervalMs('ns/r0')).toBe(600_000);
    expect(b.stretchedIntervalMs('ns/r0')).toBeUndefined();
    expect(b.report()[0]).toMatchObject({ resources: 10, stretched: 0 });
  });

  it('moves a resource whose Secret now holds another key', () => {
    const { budgets: b } = budgets();
    b.track('ns/a', keyA, 600_000);
    b.track('ns/a', keyB, 600_000);
    expect(b.report().map((r) => [r.label, r.resources])).toEqual([[keyB.short, 1]]);
  });

  it("spreads a key's periodic syncs evenly over the interval", () => {
    const { clock, budgets: b } = budgets(7_777_777);
    for (let i = 0; i < 4; i++) b.track(`ns/r${i}`, keyA, 60_000);
    const due = [0, 1, 2, 3].map((i) => (clock.time + (b.delayAfterSyncMs(`ns/r${i}`) ?? NaN)) % 60_000).sort((x, y) => x - y);
    // A quarter of the interval apart, from where the key's offset puts them.
    const offset = keyPhaseOffset(keyA.id) * 15_000;
    for (const [i, at] of due.entries()) expect(at).toBeCloseTo(offset + i * 15_000);
  });

  it("is the provider client's limiter: each call is counted at once, nothing waits", async () => {
    const { budgets: b } = budgets();
    b.track('ns/a', keyA, 600_000);
    const limiter = b.forKey(keyA);
    for (let i = 0; i < 200; i++) await limiter.acquire();
    expect(b.report()[0]?.tokens).toBeCloseTo(95 - 200);
    expect(b.admit('ns/a', 'on-demand').granted).toBe(false);
    const aborted = new AbortController();
    aborted.abort(new Error('deleted'));
    await expect(limiter.acquire(aborted.signal)).rejects.toThrow('deleted');
  });

  it("plans a key with the rate its Secrets declare, and keeps what was spent when the rate changes", () => {
    const { budgets: b } = budgets();
    const more = { calls: 5000, windowMs: hour };
    for (let i = 0; i < 40; i++) b.track(`ns/r${i}`, keyA, 600_000, { cost: 10, rate: more });
    expect(b.stretchedIntervalMs('ns/r0')).toBeUndefined();
    expect(b.report()[0]).toMatchObject({ budgetPerHour: 4750, demandPerHour: 2400, stretched: 0, tokens: 237 });
    expect(sync(b, 'ns/r0', keyA.id, 10).granted).toBe(true);
    expect(b.report()[0]?.tokens).toBeCloseTo(227);

    // One resource whose Secret declares nothing: the key falls back to the default, and its
    // bucket (95) is short by what was spent.
    b.track('ns/r39', keyA, 600_000, { cost: 10 });
    expect(b.report()[0]).toMatchObject({ budgetPerHour: 1900, stretched: 40 });
    expect(b.report()[0]?.tokens).toBeCloseTo(85);
    expect(b.stretchedIntervalMs('ns/r0')).toBe(900_000);

    b.track('ns/r39', keyA, 600_000, { rate: more });
    expect(b.report()[0]).toMatchObject({ budgetPerHour: 4750, stretched: 0 });
  });
});
