import { describe, expect, it } from '@jest/globals';
import { syncKindOf, type SyncInputs } from '../../../src/budget/sync-kind.js';

const inputs: SyncInputs = { generation: 2, syncRequested: 'a', secretFingerprint: 'sha256:1' };
const intact = { configMapsIntact: true, statusSynced: true };

describe('syncKindOf', () => {
  it('calls a sync periodic when nothing changed since the last one', () => {
    expect(syncKindOf(inputs, { ...inputs }, intact)).toBe('periodic');
  });

  it.each([
    ['a new generation', { generation: 3 }],
    ['a sync request', { syncRequested: 'b' }],
    ['another Secret', { secretFingerprint: 'sha256:2' }],
  ])('calls a sync on demand after %s', (_, change) => {
    expect(syncKindOf(inputs, { ...inputs, ...change }, intact)).toBe('on-demand');
  });

  it('calls a sync on demand when a ConfigMap is missing or edited', () => {
    expect(syncKindOf(inputs, inputs, { configMapsIntact: false, statusSynced: true })).toBe('on-demand');
  });

  it('after a restart, trusts a status Synced for the generation and repairs anything else at once', () => {
    expect(syncKindOf(undefined, inputs, intact)).toBe('periodic');
    expect(syncKindOf(undefined, inputs, { configMapsIntact: true, statusSynced: false })).toBe('on-demand');
  });
});
