import type { Logger } from 'pino';
import { validateSpec, type HpcClusterObject, type HpcClusterStatus } from '../api/hpccluster.js';
import { parseDuration } from '../api/duration.js';
import { describeDiff, diffUsers, isEmptyDiff, removalExceedsLimit, type UserDiff } from '../domain/diff.js';
import type { HpcUser } from '../domain/user.js';
import {
  configMapManifest,
  CONTENT_HASH_ANNOTATION,
  contentHashOf,
  configMapSizeProblem,
  parseUsersJson,
  renderConfigMaps,
  usersConfigMapName,
  nssConfigMapName,
  type ConfigMapManifest,
  type RenderedConfigMap,
} from '../render/configmaps.js';
import { SyncFailure, type UserListing, type UserSource } from '../provider/user-source.js';
import { credentialsFromSecret, listClusterUsers } from './sync.js';
import { RequeueAfterError, type ReconcileResult } from './queue.js';
import { nextStatus, readyCondition, statusWriteDue, type SyncOutcome } from './status.js';

/**
 * One reconcile of one HpcCluster: the controller's single entry per object, like
 * controller-runtime's Reconcile(ctx, request). It reads the spec and its Secret, lists the
 * users through the provider boundary, renders both ConfigMaps, writes only what changed,
 * and returns when to come back. Everything it touches is behind the small ports below.
 */

export interface ObjectKey {
  namespace: string;
  name: string;
}

export const keyOf = (k: ObjectKey): string => `${k.namespace}/${k.name}`;

export function parseKey(key: string): ObjectKey {
  const slash = key.indexOf('/');
  return { namespace: key.slice(0, slash), name: key.slice(slash + 1) };
}

/** What the reconcile reads of an existing ConfigMap. */
export interface ConfigMapState {
  resourceVersion?: string;
  /** contentHashOf the data it holds. */
  dataHash?: string;
  usersJson?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: { uid: string; controller?: boolean }[];
}

/** The Kubernetes side, as this reconcile needs it (reads from caches where they exist). */
export interface ClusterPort {
  getHpcCluster(key: ObjectKey): HpcClusterObject | undefined;
  getConfigMap(key: ObjectKey): ConfigMapState | undefined;
  /** undefined when the Secret does not exist. */
  readSecret(key: ObjectKey): Promise<Record<string, string> | undefined>;
  /** Create, or replace at `resourceVersion` (a stale one fails with a conflict). */
  writeConfigMap(manifest: ConfigMapManifest, existing: ConfigMapState | undefined): Promise<void>;
  writeStatus(key: ObjectKey, status: HpcClusterStatus): Promise<void>;
  recordEvent(object: HpcClusterObject, type: 'Normal' | 'Warning', reason: string, message: string): Promise<void>;
}

/** The metrics a reconcile records (OperatorMetrics in production). */
export interface ReconcileMetrics {
  observeSuccessfulSync(namespace: string, name: string, sync: { users: number; pages: number; at: Date }): void;
}

export interface ReconcilerDeps {
  cluster: ClusterPort;
  users: UserSource;
  logger: Logger;
  metrics?: ReconcileMetrics;
  now?: () => Date;
  random?: () => number;
}

/** What one reconcile did, for its log line. */
interface SyncReport {
  /** The Ready reason written, or NotFound for a deleted resource. */
  result: string;
  pages: number;
  users: number;
  requests: number;
}

/** Random jitter of up to 10% on the periodic sync, so resources spread out over time. */
export function jitteredInterval(intervalMs: number, random: () => number): number {
  return Math.round(intervalMs * (1 + 0.1 * random()));
}

export const SYNC_REQUESTED_ANNOTATION = 'hpc.shanhe.com/sync-requested';
/** Label values are at most 63 characters, and the ConfigMaps carry the name as a label. */
const MAX_NAME_LENGTH = 63;

/**
 * What a permanent failure was computed from. Until one of these changes, calling the
 * provider again cannot succeed, so it is not called (the quota is not burnt).
 */
interface PermanentFailureMemo {
  generation: number;
  secretFingerprint: string;
  syncRequested: string | undefined;
}

/** Whether the existing ConfigMap already holds exactly what would be written. */
export function configMapUpToDate(existing: ConfigMapState | undefined, desired: ConfigMapManifest, ownerUid: string): boolean {
  if (existing === undefined) return false;
  if (existing.dataHash !== desired.metadata.annotations[CONTENT_HASH_ANNOTATION]) return false;
  if (existing.annotations?.[CONTENT_HASH_ANNOTATION] !== desired.metadata.annotations[CONTENT_HASH_ANNOTATION]) return false;
  for (const [k, v] of Object.entries(desired.metadata.labels)) if (existing.labels?.[k] !== v) return false;
  return existing.ownerReferences?.some((ref) => ref.uid === ownerUid && ref.controller === true) === true;
}

export class HpcClusterReconciler {
  private readonly permanentFailures = new Map<string, PermanentFailureMemo>();
  private readonly now: () => Date;
  private readonly random: () => number;

  constructor(private readonly deps: ReconcilerDeps) {
    this.now = deps.now ?? (() => new Date());
    this.random = deps.random ?? Math.random;
  }

  /** Forgets what was remembered of a deleted resource. */
  forget(key: ObjectKey): void {
    this.permanentFailures.delete(keyOf(key));
  }

  /** Reconciles one resource and logs one line about it: result, duration, pages, users. */
  async reconcile(key: ObjectKey, signal: AbortSignal): Promise<ReconcileResult> {
    const report: SyncReport = { result: 'NotFound', pages: 0, users: 0, requests: 0 };
    const started = performance.now();
    let error: unknown;
    try {
      return await this.sync(key, signal, report);
    } catch (err) {
      error = err;
      throw err;
    } finally {
      const line = { namespace: key.namespace, name: key.name, ...report, durationMs: Math.round(performance.now() - started) };
      if (error === undefined && (report.result === 'Synced' || report.result === 'Suspended' || report.result === 'NotFound')) {
        this.deps.logger.info(line, 'reconciled');
      } else {
        this.deps.logger.warn({ ...line, error: error instanceof Error ? error.message : error }, 'reconcile failed');
      }
    }
  }

  private async sync(key: ObjectKey, signal: AbortSignal, report: SyncReport): Promise<ReconcileResult> {
    const object = this.deps.cluster.getHpcCluster(key);
    if (object === undefined) {
      this.forget(key);
      return {};
    }
    const generation = object.metadata.generation ?? 0;
    const configMaps = [usersConfigMapName(key.name), nssConfigMapName(key.name)];
    const finish = async (outcome: SyncOutcome): Promise<void> => {
      report.result = outcome.reason;
      await this.writeStatus(object, key, generation, outcome, configMaps, signal);
    };

    const validation = validateSpec(object.spec);
    if (!validation.ok) {
      await finish({ reason: 'InvalidSpec', message: `Invalid spec, fix: ${validation.message}` });
      return {};
    }
    if (key.name.length > MAX_NAME_LENGTH) {
      await finish({ reason: 'InvalidSpec', message: `metadata.name must be at most ${MAX_NAME_LENGTH} characters: it labels the ConfigMaps` });
      return {};
    }
    const spec = validation.spec;
    if (spec.suspend) {
      await finish({ reason: 'Suspended' });
      return {};
    }
    const intervalMs = parseDuration(spec.syncInterval) ?? 600_000;
    const requeue = (): ReconcileResult => ({ requeueAfterMs: jitteredInterval(intervalMs, this.random) });

    const secretKey = { namespace: key.namespace, name: spec.credentialsSecretRef.name };
    const secret = await this.deps.cluster.readSecret(secretKey);
    const credentials = credentialsFromSecret(spec.credentialsSecretRef, secret);
    if (typeof credentials === 'string') {
      await finish({ reason: 'CredentialsNotFound', message: credentials });
      return {};
    }

    const memo: PermanentFailureMemo = {
      generation,
      secretFingerprint: contentHashOf(secret ?? {}),
      syncRequested: object.metadata.annotations?.[SYNC_REQUESTED_ANNOTATION],
    };
    const previousFailure = this.permanentFailures.get(keyOf(key));
    if (previousFailure !== undefined && sameMemo(previousFailure, memo)) {
      // Nothing this failure depended on has changed: status already says what to fix.
      report.result = readyCondition(object.status)?.reason ?? 'WaitingForChange';
      return {};
    }
    this.permanentFailures.delete(keyOf(key));

    let listing: UserListing;
    try {
      listing = await listClusterUsers(this.deps.users, spec, credentials, signal);
    } catch (err) {
      if (!(err instanceof SyncFailure)) throw err;
      await finish({ reason: err.reason, message: err.message, permanent: err.retry === 'permanent' });
      if (err.retry === 'permanent') {
        this.permanentFailures.set(keyOf(key), memo);
        return {};
      }
      if (err.retry === 'quota') throw new RequeueAfterError(err.retryAfterMs ?? intervalMs, err.message);
      throw err;
    }

    report.pages = listing.pages;
    report.requests = listing.requests;
    const users = listing.users;
    report.users = users.length;
    const rendered = renderConfigMaps(key.name, users);
    const sizeProblem = configMapSizeProblem(rendered);
    if (sizeProblem !== undefined) {
      await finish({ reason: 'ConfigMapTooLarge', message: sizeProblem, skipped: listing.skipped });
      return requeue();
    }

    const existingUsers = this.deps.cluster.getConfigMap({ namespace: key.namespace, name: usersConfigMapName(key.name) });
    // The last good list: users.json, or status when the ConfigMap was deleted behind our back.
    const previousUsers =
      parseUsersJson(existingUsers?.usersJson) ?? (object.status?.usersTruncated === false ? object.status.users : undefined);
    const diff = diffUsers(previousUsers ?? [], users);
    if (previousUsers !== undefined && removalExceedsLimit(previousUsers.length, diff.removed.length, spec.maxUserRemovalPercent)) {
      await finish({
        reason: 'RemovalHeld',
        message: `the sync would remove ${diff.removed.length} of ${previousUsers.length} users, more than maxUserRemovalPercent ${spec.maxUserRemovalPercent}%; raise spec.maxUserRemovalPercent to accept it`,
        skipped: listing.skipped,
      });
      return requeue();
    }

    await this.writeConfigMaps(object, key, rendered, signal);
    this.deps.metrics?.observeSuccessfulSync(key.namespace, key.name, { pages: listing.pages, users: users.length, at: this.now() });
    await finish({ reason: 'Synced', users, skipped: listing.skipped });
    await this.announceChanges(object, previousUsers, diff, users.length);
    return requeue();
  }

  private async writeConfigMaps(object: HpcClusterObject, key: ObjectKey, rendered: RenderedConfigMap[], signal: AbortSignal): Promise<void> {
    const ownerUid = object.metadata.uid ?? '';
    for (const cm of rendered) {
      const manifest = configMapManifest({ name: key.name, namespace: key.namespace, uid: ownerUid }, cm);
      const existing = this.deps.cluster.getConfigMap({ namespace: key.namespace, name: cm.name });
      if (configMapUpToDate(existing, manifest, ownerUid)) continue;
      signal.throwIfAborted();
      await this.deps.cluster.writeConfigMap(manifest, existing);
    }
  }

  private async writeStatus(
    object: HpcClusterObject,
    key: ObjectKey,
    generation: number,
    outcome: SyncOutcome,
    configMaps: string[],
    signal: AbortSignal,
  ): Promise<void> {
    const now = this.now();
    const previous = object.status;
    const status = nextStatus(previous, generation, outcome, now, configMaps);
    if (!statusWriteDue(previous, status, now)) return;
    signal.throwIfAborted();
    await this.deps.cluster.writeStatus(key, status);
    const before = readyCondition(previous);
    const after = readyCondition(status);
    if (after !== undefined && after.status === 'False' && after.reason !== before?.reason) {
      await this.deps.cluster.recordEvent(object, 'Warning', after.reason, after.message);
    }
  }

  private async announceChanges(object: HpcClusterObject, previousUsers: HpcUser[] | undefined, diff: UserDiff, count: number): Promise<void> {
    if (isEmptyDiff(diff)) return;
    const message = previousUsers === undefined ? `${count} users synced` : `Users changed: ${describeDiff(diff)}`;
    await this.deps.cluster.recordEvent(object, 'Normal', previousUsers === undefined ? 'Synced' : 'UsersChanged', message);
  }
}

function sameMemo(a: PermanentFailureMemo, b: PermanentFailureMemo): boolean {
  return a.generation === b.generation && a.secretFingerprint === b.secretFingerprint && a.syncRequested === b.syncRequested;
}
