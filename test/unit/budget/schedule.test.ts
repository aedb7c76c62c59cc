import { describe, expect, it } from '@jest/globals';
import type { HpcClusterObject } from '../../../src/api/hpccluster.js';
import { delayAfterSync, keyPhaseOffset, nextSlot, phaseOf, startupDelays, startupStateOf, type StartupResource } from '../../../src/budget/schedule.js';

describe('slots', () => {
  it('puts the resources of one interval at evenly spaced phases', () => {
    const interval = 60_000;
    const slots = [0, 1, 2, 3].map((rank) => nextSlot(1_000_000, interval, phaseOf(rank, 4)) % interval).sort((a, b) => a - b);
    expect(slots).toEqual([0, 15_000, 30_000, 45_000]);
  });

  it('gives the first slot at or after the earliest time', () => {
    expect(nextSlot(120_000, 60_000, 0)).toBe(120_000);
    expect(nextSlot(120_001, 60_000, 0)).toBe(180_000);
    expect(nextSlot(100_000, 60_000, 0.5)).toBe(150_000);
  });

  it('keeps the cadence after a late sync and waits at least half an interval after an early one', () => {
    // Slot at 150 s; synced at 160 s (late): next at 210 s.
    expect(delayAfterSync(160_000, 60_000, 0.5)).toBe(50_000);
    // Synced on demand at 145 s, just before its slot: next at 210 s, not 150 s.
    expect(delayAfterSync(145_000, 60_000, 0.5)).toBe(65_000);
  });

  it('gives up the next slot only after a sync ran more than half an interval late, so no gap exceeds the interval plus the lateness', () => {
    const interval = 30_000;
    const phase = 0.25; // slots at 7.5 s, 37.5 s, 67.5 s...
    for (let lateMs = 0; lateMs < interval; lateMs += 500) {
      const ranAt = 7_500 + lateMs;
      const next = ranAt + delayAfterSync(ranAt, interval, phase);
      // Up to half an interval late: the very next slot; later: the one after it.
      expect(next).toBe(lateMs <= interval / 2 ? 37_500 : 67_500);
      // Either way the gap after it is at most 1.5 intervals and at least half of one, and the
      // gap before it (interval + lateness) is what made it late: the rule never adds to it.
      expect(next - ranAt).toBeLessThanOrEqual(1.5 * interval);
      expect(next - ranAt).toBeGreaterThanOrEqual(interval / 2);
    }
  });

  it("shifts each key's evenly spaced slots by an offset of its own, so equal keys do not sync at the same instants", () => {
    const offsets = ['key-a', 'key-b', 'key-c'].map(keyPhaseOffset);
    for (const offset of offsets) {
      expect(offset).toBeGreaterThanOrEqual(0);
      expect(offset).toBeLessThan(1);
    }
    expect(new Set(offsets).size).toBe(3);
    expect(keyPhaseOffset('key-a')).toBe(offsets[0]);
    // Two keys of 100 resources at one interval: 200 distinct instants, each key's still 1/100 apart.
    const interval = 30_000;
    const slotsOf = (offset: number) => Array.from({ length: 100 }, (_, rank) => nextSlot(1_000_000, interval, phaseOf(rank, 100, offset)) % interval);
    const [a, b] = [slotsOf(offsets[0] ?? 0), slotsOf(offsets[1] ?? 0)];
    expect(new Set([...a, ...b].map((ms) => Math.round(ms))).size).toBe(200);
    const sorted = [...a].sort((x, y) => x - y);
    sorted.slice(1).forEach((ms, i) => expect(ms - (sorted[i] ?? 0)).toBeCloseTo(interval / 100));
  });
});

describe('startupDelays', () => {
  it('spreads 200 current resources evenly over their interval: no burst', () => {
    const interval = 600_000;
    const resources: StartupResource[] = Array.from({ length: 200 }, (_, i) => ({ id: `ns/r${i}`, state: 'current', intervalMs: interval }));
    const delays = [...startupDelays(resources, () => 0).values()];
    expect(delays).toHaveLength(200);
    const perTenth = new Array<number>(10).fill(0);
    for (const d of delays) {
      expect(d).toBeGreaterThan(0);
      expect(d).toBeLessThan(interval);
      perTenth[Math.floor(d / (interval / 10))]! += 1;
    }
    expect(perTenth).toEqual(new Array<number>(10).fill(20));
  });

  it('syncs due resources now and stale ones within a tenth of their interval', () => {
    const delays = startupDelays(
      [
        { id: 'a', state: 'due', intervalMs: 60_000 },
        { id: 'b', state: 'stale', intervalMs: 60_000 },
      ],
      () => 0.999,
    );
    expect(delays.get('a')).toBe(0);
    expect(delays.get('b')).toBeLessThanOrEqual(6_000);
  });
});

describe('startupStateOf', () => {
  const now = Date.parse('2026-01-01T12:00:00Z');
  const object = (status: HpcClusterObject['status'], generation = 1, syncInterval = '10m'): HpcClusterObject => ({
    apiVersion: 'hpc.shanhe.com/v1alpha1',
    kind: 'HpcCluster',
    metadata: { name: 'a', namespace: 'ns', generation },
    spec: { syncInterval },
    status,
  });
  const synced = (lastSuccessfulSyncTime: string, extra: Partial<NonNullable<HpcClusterObject['status']>> = {}) => ({
    observedGeneration: 1,
    lastSuccessfulSyncTime,
    conditions: [{ type: 'Ready', status: 'True' as const, reason: 'Synced', message: '', lastTransitionTime: lastSuccessfulSyncTime }],
    ...extra,
  });

  it('calls a sync current up to the interval plus the status heartbeat', () => {
    // Synced 65 minutes ago at 10m: the status may be up to an hour behind the true last sync.
    expect(startupStateOf(object(synced('2026-01-01T10:55:00Z')), true, now)).toEqual({ state: 'current', intervalMs: 600_000 });
    expect(startupStateOf(object(synced('2026-01-01T10:49:00Z')), true, now).state).toBe('stale');
  });

  it('reads the effective interval the plan wrote before the restart', () => {
    const state = startupStateOf(object(synced('2026-01-01T11:59:00Z', { effectiveSyncInterval: '25m' })), true, now);
    expect(state).toEqual({ state: 'current', intervalMs: 1_500_000 });
  });

  it('makes anything not synced for its generation, or without its ConfigMaps, due now', () => {
    expect(startupStateOf(object(synced('2026-01-01T11:59:00Z'), 2), true, now).state).toBe('due');
    expect(startupStateOf(object(synced('2026-01-01T11:59:00Z')), false, now).state).toBe('due');
    expect(startupStateOf(object(undefined), true, now).state).toBe('due');
  });
});
