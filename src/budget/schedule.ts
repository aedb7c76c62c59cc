import { createHash } from 'node:crypto';
import { DEFAULT_SYNC_INTERVAL, type HpcClusterObject } from '../api/hpccluster.js';
import { parseDuration } from '../api/duration.js';
import { readyCondition, STATUS_HEARTBEAT_MS } from '../controller/status.js';

/**
 * When syncs fall: a key's resources take evenly spaced phases of their interval, and a
 * restart spreads resources whose last sync is current over their whole interval. Pure.
 */

/**
 * Resource `rank` of `count` on a key syncs `(rank + keyOffset) / count` of the way into each
 * interval: evenly spaced on its key, and each key's spacing shifted by its own offset (see
 * keyPhaseOffset), so keys of equal size and interval do not all sync at the same instants.
 */
export function phaseOf(rank: number, count: number, keyOffset = 0): number {
  return count <= 0 ? 0 : (rank + keyOffset) / count;
}

/** A fraction in [0, 1) fixed per access key: where its evenly spaced slots start. */
export function keyPhaseOffset(keyId: string): number {
  return createHash('sha256').update(keyId).digest().readUInt32BE(0) / 2 ** 32;
}

/**
 * The first slot at or after `earliest` of a resource with this interval and phase. Slots
 * are `phase × interval + k × interval` from the epoch, so resources of one interval and
 * different phases never coincide, whoever runs them and whenever the process started.
 */
export function nextSlot(earliest: number, intervalMs: number, phase: number): number {
  const offset = phase * intervalMs;
  return offset + Math.ceil((earliest - offset) / intervalMs) * intervalMs;
}

/**
 * The delay until the next periodic sync of a resource that has just synced: its next slot
 * at least half an interval away, so a sync that ran late keeps its cadence and one that
 * ran early (on demand) is not followed by another at once.
 */
export function delayAfterSync(now: number, intervalMs: number, phase: number): number {
  return nextSlot(now + intervalMs / 2, intervalMs, phase) - now;
}

/** What start-up knows of a resource found in the cache. */
export interface StartupResource {
  id: string;
  /**
   * `current`: its last good sync is recent enough (it is Synced for its generation, its
   * ConfigMaps hold that sync and no sync request waits, and status says it synced within the interval plus the status
   * heartbeat — the true time is unknown up to the heartbeat); `stale`: synced, but longer
   * ago than that; `due`: anything else (new, changed, failed, ConfigMaps missing).
   */
  state: 'current' | 'stale' | 'due';
  intervalMs: number;
}

/**
 * When each resource found at start-up is first synced, so a restart makes no burst:
 * `due` ones now; `current` ones evenly over their whole interval (resource rank r of n
 * waits `(r + ½) / n` of it); `stale` ones over the first tenth of it.
 */
export function startupDelays(resources: readonly StartupResource[], random: () => number): Map<string, number> {
  const delays = new Map<string, number>();
  const current = resources.filter((r) => r.state === 'current').sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  current.forEach((r, rank) => delays.set(r.id, Math.round((r.intervalMs * (rank + 0.5)) / current.length)));
  for (const r of resources) {
    if (r.state === 'due') delays.set(r.id, 0);
    if (r.state === 'stale') delays.set(r.id, Math.round(random() * r.intervalMs * 0.1));
  }
  return delays;
}

/** How start-up classes a resource (see StartupResource), and the interval it last synced at. */
export function startupStateOf(
  object: HpcClusterObject,
  upToDate: boolean,
  now: number,
): Pick<StartupResource, 'state' | 'intervalMs'> {
  const spec = object.spec as { syncInterval?: string } | undefined;
  const status = object.status;
  // The stretched interval survives the restart in status; the plan recomputes it later.
  const intervalMs =
    parseDuration(status?.effectiveSyncInterval ?? '') ?? parseDuration(spec?.syncInterval ?? '') ?? parseDuration(DEFAULT_SYNC_INTERVAL) ?? 0;
  const ready = readyCondition(status);
  const synced = upToDate && ready?.status === 'True' && ready.reason === 'Synced' && status?.observedGeneration === object.metadata.generation;
  const lastSync = Date.parse(status?.lastSuccessfulSyncTime ?? '');
  if (!synced || !Number.isFinite(lastSync) || intervalMs <= 0) return { state: 'due', intervalMs };
  return { state: now - lastSync <= intervalMs + STATUS_HEARTBEAT_MS ? 'current' : 'stale', intervalMs };
}
