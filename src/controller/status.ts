import {
  MAX_STATUS_SKIPPED,
  MAX_STATUS_USERS,
  type Condition,
  type HpcClusterStatus,
} from '../api/hpccluster.js';
import type { SyncFailure } from '../domain/failure.js';
import type { HpcUser, SkippedUser } from '../domain/user.js';
import { sortedUsers } from '../render/configmaps.js';
import { formatTimestamp } from '../runtime/clock.js';
import { failurePolicy } from './policy.js';

/**
 * The pure status logic: from the previous status and the outcome of one reconcile, the next
 * status with kstatus conditions (Ready always; Reconciling and Stalled True only when they
 * apply), and whether it is worth a write.
 */

/** How one reconcile ended, as status reports it. */
export type SyncOutcome =
  /** usersDigest: the sync id of the users (syncIdOf), which rendering the ConfigMaps works out. */
  | { reason: 'Synced'; users: HpcUser[]; skipped: SkippedUser[]; usersDigest: string }
  | { reason: 'Suspended' }
  | (SyncFailure & { skipped?: SkippedUser[] });

/**
 * Writing status on every periodic sync only to move lastSyncTime would cost one apiserver
 * write per resource per interval; an unchanged status is rewritten at most this often.
 */
export const STATUS_HEARTBEAT_MS = 60 * 60 * 1000;

function condition(
  previous: readonly Condition[] | undefined,
  type: string,
  status: Condition['status'],
  reason: string,
  message: string,
  generation: number,
  now: string,
): Condition {
  const old = previous?.find((c) => c.type === type);
  const lastTransitionTime = old !== undefined && old.status === status ? old.lastTransitionTime : now;
  return { type, status, reason, message, observedGeneration: generation, lastTransitionTime };
}

function syncedMessage(users: number, skipped: number): string {
  const noun = users === 1 ? 'user' : 'users';
  return skipped === 0 ? `${users} ${noun} synced` : `${users} ${noun} synced, ${skipped} skipped (see status.skippedUsers)`;
}

export const readyCondition = (status: HpcClusterStatus | undefined): Condition | undefined =>
  status?.conditions?.find((c) => c.type === 'Ready');

/** The next status after a reconcile of `generation` that ended in `outcome` at `now`. */
export function nextStatus(
  previous: HpcClusterStatus | undefined,
  generation: number,
  outcome: SyncOutcome,
  now: Date,
  configMaps: string[],
): HpcClusterStatus {
  const at = formatTimestamp(now);
  const prev = previous ?? {};
  const next: HpcClusterStatus = { ...prev, observedGeneration: generation, configMaps };
  const conditions = prev.conditions;
  let readyStatus: Condition['status'];
  let readyMessage: string;
  let reconciling = false;
  let reconcilingMessage = '';
  let stalled = false;

  if (outcome.reason === 'Synced') {
    readyStatus = 'True';
    readyMessage = syncedMessage(outcome.users.length, outcome.skipped.length);
    next.userCount = outcome.users.length;
    next.users = sortedUsers(outcome.users).slice(0, MAX_STATUS_USERS);
    next.usersTruncated = outcome.users.length > MAX_STATUS_USERS;
    // Written after the -users ConfigMap it vouches for (see domain/trusted-users.ts).
    next.usersDigest = outcome.usersDigest;
    next.lastSyncTime = at;
    next.lastSuccessfulSyncTime = at;
  } else if (outcome.reason === 'Suspended') {
    readyStatus = 'True';
    readyMessage = 'Suspended: no API calls and no writes until spec.suspend is false';
  } else {
    readyStatus = 'False';
    readyMessage = outcome.message;
    stalled = failurePolicy(outcome).stalled;
    next.lastSyncTime = at;
    // A new generation that has not synced yet and will be retried is still being worked on:
    // Reconciling turns True on its first failure and stays so until it syncs or stalls.
    const newGeneration = prev.observedGeneration !== generation;
    const stillReconciling = prev.conditions?.find((c) => c.type === 'Reconciling')?.status === 'True';
    if (!stalled && (newGeneration || stillReconciling)) {
      reconciling = true;
      reconcilingMessage = `generation ${generation} not yet synced: ${outcome.message}`;
    }
  }
  const skipped = outcome.reason === 'Suspended' ? undefined : outcome.skipped;
  if (skipped !== undefined) {
    next.skippedUsers = skipped.slice(0, MAX_STATUS_SKIPPED);
    next.skippedUserCount = skipped.length;
  }
  if (next.userCount === undefined) next.userCount = 0;

  next.conditions = [
    condition(conditions, 'Ready', readyStatus, outcome.reason, readyMessage, generation, at),
    condition(conditions, 'Reconciling', reconciling ? 'True' : 'False', reconciling ? 'Retrying' : 'Reconciled', reconcilingMessage, generation, at),
    condition(conditions, 'Stalled', stalled ? 'True' : 'False', stalled ? outcome.reason : 'NotStalled', stalled ? readyMessage : '', generation, at),
  ];
  return next;
}

const TIMESTAMP_FIELDS = ['lastSyncTime', 'lastSuccessfulSyncTime'] as const;

/**
 * What a status write is decided on: all but the sync timestamps, and but users, which
 * usersDigest stands for (the caches keep status without them: controller/cached-objects.ts).
 */
function comparable(status: HpcClusterStatus | undefined): unknown {
  if (status === undefined) return undefined;
  const copy: Record<string, unknown> = { ...status };
  for (const field of [...TIMESTAMP_FIELDS, 'users']) delete copy[field];
  return copy;
}

/** Deep equality of JSON values, insensitive to key order. */
function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a).filter((k) => (a as Record<string, unknown>)[k] !== undefined);
  const kb = Object.keys(b).filter((k) => (b as Record<string, unknown>)[k] !== undefined);
  if (ka.length !== kb.length) return false;
  return ka.every((k) => sameJson((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}

/**
 * A status write is due when anything but the sync timestamps changed, or when the written
 * timestamps are older than the heartbeat.
 */
export function statusWriteDue(previous: HpcClusterStatus | undefined, next: HpcClusterStatus, now: Date): boolean {
  if (!sameJson(comparable(previous), comparable(next))) return true;
  const written = Date.parse(previous?.lastSyncTime ?? '');
  return next.lastSyncTime !== undefined && (!Number.isFinite(written) || now.getTime() - written >= STATUS_HEARTBEAT_MS);
}
