import type { SyncKind } from './key-budgets.js';

/** What a sync of a resource was computed from, remembered to tell why the next one runs. */
export interface SyncInputs {
  generation: number;
  syncRequested: string | undefined;
  secretFingerprint: string;
}

/**
 * Whether a sync is periodic or asked for. On demand: a new generation (create, spec
 * change), a new sync request, another Secret, ConfigMaps missing or edited (drift), or —
 * before this process has synced the resource — a status that is not Synced for its
 * generation. Anything else is periodic: a restart alone is no reason to call at once.
 */
export function syncKindOf(
  last: SyncInputs | undefined,
  current: SyncInputs,
  facts: { configMapsIntact: boolean; statusSynced: boolean },
): SyncKind {
  if (!facts.configMapsIntact) return 'on-demand';
  if (last === undefined) return facts.statusSynced ? 'periodic' : 'on-demand';
  const same =
    last.generation === current.generation && last.syncRequested === current.syncRequested && last.secretFingerprint === current.secretFingerprint;
  return same ? 'periodic' : 'on-demand';
}
