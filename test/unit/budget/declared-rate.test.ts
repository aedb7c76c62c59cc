import { describe, expect, it } from '@jest/globals';
import { declaredRateOf, keyRateOf, PROVIDER_RATE_LIMIT_ANNOTATION } from '../../../src/budget/declared-rate.js';
import { planKey, PROVIDER_CALL_RATE } from '../../../src/budget/plan.js';

const hour = 3_600_000;

describe('declaredRateOf', () => {
  it('reads calls per duration, as --provider-rate-limit writes them', () => {
    expect(declaredRateOf('keys', '5000/1h')).toEqual({ rate: { calls: 5000, windowMs: hour } });
    expect(declaredRateOf('keys', ' 250/15m ')).toEqual({ rate: { calls: 250, windowMs: 900_000 } });
  });

  it('declares nothing without the annotation', () => {
    expect(declaredRateOf('keys', undefined)).toEqual({});
  });

  it('says what is wrong with a value that is no rate, names the Secret and the fix, and declares nothing', () => {
    for (const bad of ['5000', 'lots', '0/1h', '5000/h', '-1/1h', '']) {
      const declared = declaredRateOf('keys', bad);
      expect(declared.rate).toBeUndefined();
      expect(declared.problem).toBe(
        `Secret keys: annotation ${PROVIDER_RATE_LIMIT_ANNOTATION} ${JSON.stringify(bad)} is not calls per duration such as "5000/1h", ` +
          "so the operator's default rate applies to this access key; fix or remove the annotation",
      );
    }
  });

  it('quotes at most 64 characters of a long value', () => {
    const problem = declaredRateOf('keys', 'x'.repeat(500)).problem ?? '';
    expect(problem).toContain(`"${'x'.repeat(64)}…"`);
    expect(problem).not.toContain('x'.repeat(65));
  });
});

describe('keyRateOf', () => {
  const more = { calls: 5000, windowMs: hour };

  it("is what the key's Secrets declare when they all agree", () => {
    expect(keyRateOf([more, more], PROVIDER_CALL_RATE)).toEqual(more);
  });

  it('is the default while any Secret of the key declares nothing', () => {
    expect(keyRateOf([more, undefined], PROVIDER_CALL_RATE)).toEqual(PROVIDER_CALL_RATE);
    expect(keyRateOf([], PROVIDER_CALL_RATE)).toEqual(PROVIDER_CALL_RATE);
  });

  it('is the lowest rate declared, compared per ms whatever the windows', () => {
    const less = { calls: 1000, windowMs: hour };
    expect(keyRateOf([more, less, undefined], PROVIDER_CALL_RATE)).toEqual(less);
    expect(keyRateOf([{ calls: 100, windowMs: 60_000 }, { calls: 2400, windowMs: hour }], PROVIDER_CALL_RATE)).toEqual({ calls: 2400, windowMs: hour });
  });

  it("plans the issue's 40 clusters of 10 pages at 10 minutes without stretching on a key of 5,000/h", () => {
    const forty = Array.from({ length: 40 }, (_, i) => ({ id: `r${String(i)}`, cost: 10, intervalMs: 600_000 }));
    expect(planKey(forty, PROVIDER_CALL_RATE).stretched).toBe(40);
    const plan = planKey(forty, keyRateOf([more], PROVIDER_CALL_RATE));
    // Budget 4,750, periodic 4,275: the 2,400 asked for fit.
    expect(plan.budgetCalls).toBe(4750);
    expect(plan.stretched).toBe(0);
    expect(plan.plannedCalls).toBe(2400);
  });
});
