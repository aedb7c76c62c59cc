import { isDeepStrictEqual } from 'node:util';
import { parseDuration } from '../api/duration.js';
import { validateSpec, type HpcClusterObject, type HpcClusterSpec, type HpcClusterStatus } from '../api/hpccluster.js';
import { describeDiff, diffUsers, isEmptyDiff, removalExceedsLimit } from '../domain/diff.js';
import type { SyncFailure } from '../domain/failure.js';
import { controlledBy, usersTrusted } from '../domain/trusted-users.js';
import type { SkippedUser } from '../domain/user.js';
import {
  CLUSTER_LABEL,
  configMapAnnotations,
  configMapLabels,
  configMapManifest,
  CONTENT_HASH_ANNOTATION,
  contentHashOf,
  MANAGED_BY_LABEL,
  MANAGED_BY_VALUE,
  nssConfigMapName,
  parseUsersJson,
  renderConfigMaps,
  SYNC_ID_ANNOTATION,
  usersConfigMapName,
  type ConfigMapManifest,
  type RenderSummary,
} from '../render/configmaps.js';
import type { ListResult, ProviderCredentials, ProviderTarget, UserListing } from '../provider/user-source.js';
import { backoffDelayMs, type BackoffPolicy } from '../runtime/backoff.js';
import { formatTimestamp } from '../runtime/clock.js';
import { failurePolicy } from './policy.js';
import type { ReconcileResult } from './queue.js';
import { nextStatus, readyCondition, statusWriteDue, type SyncOutcome } from './status.js';
import { SYNC_REQUESTED_ANNOTATION, syncRequestPending } from './sync-request.js';
import { credentialsFromSecret, desiredUsers, providerTarget, type DesiredUsers, type SecretRead } from './sync.js';
import type { ConfigMapRole } from './configmap-contents.js';

/**
 * The reconcile of one HpcCluster as pure decisions ("decide, then act"): from the object,
 * its Secret's data, the provider's answer and the cached ConfigMaps, which ConfigMaps to
 * write, which status, which events, and when to come back. It takes two steps because
 * whether to call the provider at all is itself a decision: `planListing` says what to ask
 * (or settles the reconcile without asking), `planSync` decides from the answer. The
 * reconciler (reconcile.ts) does the I/O in between and after.
 */

/** Label values are at most 63 characters, and the ConfigMaps carry the name as a label. */
const MAX_NAME_LENGTH = 63;
const DEFAULT_INTERVAL_MS = 600_000;

/** What the reconcile reads of an existing ConfigMap (its data is known without being kept: configmap-contents.ts). */
export interface ConfigMapState {
  resourceVersion?: string;
  /** contentHashOf the data it holds; undefined when not known. */
  dataHash?: string;
  /** sha256 hex of its users.json, when known. */
  usersDigest?: string;
  /** Its users.json, only when it was read whole. */
  usersJson?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: { uid: string; controller?: boolean; kind?: string; name?: string }[];
}

/**
 * What a failure that retrying cannot mend was computed from. Until one of these changes,
 * calling the provider again cannot succeed, so it is not called (the quota is not burnt).
 * Kept in status (stalledOn), so that a restart does not call again either.
 */
export interface FailureMemo {
  generation: number;
  /** contentHashOf the Secret's data: known to this process only (status holds nothing of the data). */
  secretFingerprint?: string;
  /** The Secret's resourceVersion (or whether it is missing or not lent): what status keeps. */
  secretVersion: string;
  syncRequested: string | undefined;
}

/**
 * The back-off of failures that may pass (an outage). Its count is kept in status, so a
 * restarted operator carries on where the last one was instead of calling at once.
 */
export const FAILURE_BACKOFF: BackoffPolicy = { baseMs: 1_000, maxMs: 300_000 };

export interface PlanInput {
  /** The HpcCluster, from the cache; its namespace and name are the reconcile's key. */
  object: HpcClusterObject & { metadata: { name: string; namespace: string } };
  /** The Secret the spec names, as read; undefined when the plan needs none (credentialsSecretOf). */
  secret: SecretRead | undefined;
  /** `<name>-users` and `<name>-nss`, where they exist (whoever made them: see configMapConflict). */
  configMaps: { users?: ConfigMapState | undefined; nss?: ConfigMapState | undefined };
  /** What the last failure that retrying cannot mend was computed from, if one is remembered. */
  memo: FailureMemo | undefined;
  now: Date;
}

/**
 * When a resource that synced comes back, from its access key's budget (budget/): its next
 * slot, and the effective interval when the budget stretched spec.syncInterval.
 */
export interface SyncSchedule {
  /** From now until the next periodic sync. */
  nextSyncMs: number;
  /** status.effectiveSyncInterval: set only while the key's budget stretches spec.syncInterval. */
  stretchedInterval?: string;
  /** Why it is stretched, for the event that says so. */
  stretchedBecause?: string;
  /** Why the credentials Secret's declared rate is ignored (budget/declared-rate.ts), for Ready and a Warning. */
  rateProblem?: string;
}

/** What the provider must be asked before the reconcile can decide. */
export interface ListingRequest {
  spec: HpcClusterSpec;
  target: ProviderTarget;
  credentials: ProviderCredentials;
}

export interface ConfigMapWrite {
  manifest: ConfigMapManifest;
  /** The cached state it replaces (a replace at its resourceVersion), or undefined to create. */
  existing: ConfigMapState | undefined;
}

export interface PlannedEvent {
  type: 'Normal' | 'Warning';
  reason: string;
  message: string;
}

/** Everything one reconcile does, in the order it is done: ConfigMaps, status, events. */
export interface Plan {
  /** In order, each once the one before it is written, unless `configMapWritesTogether`. */
  configMapWrites: ConfigMapWrite[];
  /**
   * The writes may go side by side: -users does not exist yet, so it holds no list that
   * admission or the removal guard trusts, and nothing waits on -nss being written first
   * (a first sync takes one round trip for both, not two).
   */
  configMapWritesTogether?: true;
  /** The status to write; undefined when no write is due. */
  status: HpcClusterStatus | undefined;
  events: PlannedEvent[];
  result: ReconcileResult;
  /** What to remember from now on; undefined forgets any earlier memo. */
  memo: FailureMemo | undefined;
  /** The Ready reason this reconcile reports (for its log line). */
  reason: string;
  /** The failure this reconcile ran into, if it ran into one (a remembered one is not). */
  failure?: SyncFailure;
  /** What a complete listing held, for the log line and the metrics. */
  listed?: { users: number; pages: number; requests: number };
  /** Set when the users were synced. */
  synced?: { users: number; pages: number };
  /** The status after this reconcile, written or not: recordConfigMapVersions may make a write due. */
  next?: HpcClusterStatus;
}

/** spec.syncInterval in ms: when a conflict, which no sync mends, is looked at again. */
const intervalOf = (spec: HpcClusterSpec): number => parseDuration(spec.syncInterval) ?? DEFAULT_INTERVAL_MS;

/** Whether the existing ConfigMap of HpcCluster `clusterName` already holds exactly what `desired` renders. */
export function configMapUpToDate(existing: ConfigMapState | undefined, desired: RenderSummary, clusterName: string, ownerUid: string): boolean {
  if (existing === undefined) return false;
  if (existing.dataHash !== desired.contentHash) return false;
  for (const [k, v] of Object.entries(configMapAnnotations(desired))) if (existing.annotations?.[k] !== v) return false;
  for (const [k, v] of Object.entries(configMapLabels(clusterName))) if (existing.labels?.[k] !== v) return false;
  return controlledBy(existing.ownerReferences, ownerUid);
}

/**
 * Why the HpcCluster `clusterName` (uid `ownerUid`) may not write this existing ConfigMap, or
 * undefined when it may: when it controls it, or the ConfigMap is an orphan of its own (our labels,
 * no controller). Whatever another controller owns, or someone else created, is never taken over.
 */
export function configMapConflict(cm: ConfigMapState | undefined, cmName: string, clusterName: string, ownerUid: string): string | undefined {
  if (cm === undefined) return undefined;
  const controller = cm.ownerReferences?.find((ref) => ref.controller === true);
  const remedy = 'rename this HpcCluster, or remove that ConfigMap';
  if (controller !== undefined) {
    if (controller.uid === ownerUid) return undefined;
    const by = controller.kind === undefined ? 'another object' : `${controller.kind} ${controller.name ?? ''}`.trim();
    return `ConfigMap ${cmName} is controlled by ${by}, and the operator never takes over another owner's object: ${remedy}`;
  }
  if (cm.labels?.[MANAGED_BY_LABEL] === MANAGED_BY_VALUE && cm.labels[CLUSTER_LABEL] === clusterName) return undefined;
  return `ConfigMap ${cmName} already exists and was not written by this operator, which never overwrites it: ${remedy}`;
}

/**
 * Whether both ConfigMaps hold one whole sync, the one status vouches for: each holds the data
 * its content hash names, both carry status.usersDigest as their sync id, and the users.json is
 * the owner's own (trustedUsersJson). Otherwise a write was cut short (a crash between the
 * two), or someone else wrote one of them, and a sync is due.
 */
export function configMapsInStep(object: Pick<HpcClusterObject, 'metadata' | 'status'>, configMaps: PlanInput['configMaps']): boolean {
  const digest = object.status?.usersDigest;
  if (digest === undefined) return false;
  const whole = [configMaps.users, configMaps.nss].every(
    (cm) => cm?.dataHash !== undefined && cm.dataHash === cm.annotations?.[CONTENT_HASH_ANNOTATION] && cm.annotations[SYNC_ID_ANNOTATION] === digest,
  );
  return whole && usersTrusted({ uid: object.metadata.uid, usersDigest: digest }, configMaps.users);
}

/** Same inputs: the same generation and request, and the same Secret data, or (a memo from status) the same Secret version. */
function sameMemo(a: FailureMemo, b: FailureMemo): boolean {
  const sameSecret = a.secretFingerprint !== undefined && b.secretFingerprint !== undefined ? a.secretFingerprint === b.secretFingerprint : a.secretVersion === b.secretVersion;
  return a.generation === b.generation && sameSecret && a.syncRequested === b.syncRequested;
}

/** What a reconcile is computed from (memos, and whether a sync is periodic or asked for). */
export function memoOf(input: Pick<PlanInput, 'object' | 'secret'>): FailureMemo & { secretFingerprint: string } {
  return {
    generation: input.object.metadata.generation ?? 0,
    secretFingerprint: contentHashOf(input.secret?.state === 'lent' ? input.secret.data : {}),
    secretVersion: input.secret?.state === 'lent' ? input.secret.resourceVersion : (input.secret?.state ?? 'none'),
    syncRequested: input.object.metadata.annotations?.[SYNC_REQUESTED_ANNOTATION],
  };
}

/** A merge patch of status: the fields `next` changes, and null for each field of `previous` that `next` no longer has. */
export type StatusPatch = { [K in keyof HpcClusterStatus]: HpcClusterStatus[K] | null };

/**
 * The merge patch that turns `previous` into `next`: only the fields that change (a status of
 * 500 users is some 80 KB; a condition's heartbeat changes one field), each sent whole, and
 * null for each removed field (a field left out of a merge patch is kept, not removed). Users
 * change exactly when usersDigest does: `previous` may come from a cache that keeps no users.
 */
export function statusPatch(previous: HpcClusterStatus | undefined, next: HpcClusterStatus): StatusPatch {
  const patch: Record<string, unknown> = {};
  const sameUsers = previous?.usersDigest !== undefined && previous.usersDigest === next.usersDigest;
  for (const [key, value] of Object.entries(next)) {
    if (key === 'users' && sameUsers) continue;
    if (value !== undefined && !isDeepStrictEqual(previous?.[key as keyof HpcClusterStatus], value)) patch[key] = value;
  }
  for (const key of Object.keys(previous ?? {})) if (next[key as keyof HpcClusterStatus] === undefined) patch[key] = null;
  return patch;
}

/** The memo status keeps of a Stalled failure (stalledOn), for a reconcile after a restart. */
export function rememberedFailure(status: HpcClusterStatus | undefined): FailureMemo | undefined {
  const on = status?.stalledOn;
  const stalled = status?.conditions?.some((c) => c.type === 'Stalled' && c.status === 'True') === true;
  return on === undefined || !stalled ? undefined : { generation: on.generation, secretVersion: on.secretResourceVersion, syncRequested: on.syncRequest };
}

/**
 * How long a resource found at start-up still backs off after failures that may pass
 * (status.nextRetryTime), or 0: the operator's restart is no reason to call sooner. A new
 * generation or a pending sync request does not wait.
 */
export function backoffLeftMs(object: Pick<HpcClusterObject, 'metadata' | 'status'>, now: number, requestsHandledBefore: number | undefined): number {
  const status = object.status;
  if (status?.observedGeneration !== (object.metadata.generation ?? 0) || syncRequestPending(object, requestsHandledBefore)) return 0;
  const retryAt = Date.parse(status.nextRetryTime ?? '');
  return Number.isFinite(retryAt) ? Math.max(0, retryAt - now) : 0;
}

/** A fraction in [0, 1) fixed per resource: back-off jitter that is pure, and still spreads resources that failed together. */
function jitterOf(uid: string): number {
  return Number.parseInt(contentHashOf({ uid }).slice(-8), 16) / 2 ** 32;
}

/**
 * The events of an interval the budget stretched or restored: a Warning when it is stretched
 * (or stretched further), Normal when spec.syncInterval applies again.
 */
function intervalEvents(object: HpcClusterObject, before: string | undefined, schedule: SyncSchedule | undefined): PlannedEvent[] {
  const after = schedule?.stretchedInterval;
  if (before === after) return [];
  const specInterval = (object.spec as { syncInterval?: string } | undefined)?.syncInterval ?? 'the default';
  if (after === undefined) {
    return [{ type: 'Normal', reason: 'SyncIntervalRestored', message: `spec.syncInterval (${specInterval}) applies again` }];
  }
  const because = schedule?.stretchedBecause === undefined ? '' : `: ${schedule.stretchedBecause}`;
  return [{ type: 'Warning', reason: 'SyncIntervalStretched', message: `syncing every ${after} instead of spec.syncInterval ${specInterval}${because}` }];
}

/**
 * The plan of an outcome: its status (when a write is due), a Warning when Ready turns False
 * anew, the interval events, and `extra`. Without a schedule the resource takes no part in
 * its key's budget (it does not sync periodically), so status says no stretched interval.
 */
function settle(
  input: PlanInput,
  outcome: SyncOutcome,
  result: ReconcileResult,
  extra: {
    memo?: FailureMemo;
    backoff?: { failures: number; retryAfterMs: number };
    configMapWrites?: ConfigMapWrite[];
    events?: PlannedEvent[];
    schedule?: SyncSchedule;
  } = {},
): Plan {
  const { object, now } = input;
  const name = object.metadata.name;
  const previous = object.status;
  const next = nextStatus(previous, object.metadata.generation ?? 0, outcome, now, [usersConfigMapName(name), nssConfigMapName(name)]);
  if (extra.memo === undefined) delete next.stalledOn;
  else next.stalledOn = { generation: extra.memo.generation, secretResourceVersion: extra.memo.secretVersion, ...(extra.memo.syncRequested === undefined ? {} : { syncRequest: extra.memo.syncRequested }) };
  if (extra.backoff === undefined) {
    delete next.consecutiveFailures;
    delete next.nextRetryTime;
  } else {
    next.consecutiveFailures = extra.backoff.failures;
    next.nextRetryTime = formatTimestamp(new Date(now.getTime() + extra.backoff.retryAfterMs));
  }
  if (extra.schedule?.stretchedInterval === undefined) delete next.effectiveSyncInterval;
  else next.effectiveSyncInterval = extra.schedule.stretchedInterval;
  const before = readyCondition(previous);
  const after = readyCondition(next);
  const events: PlannedEvent[] = [];
  if (after !== undefined && after.status === 'False' && after.reason !== before?.reason) {
    events.push({ type: 'Warning', reason: after.reason, message: after.message });
  }
  events.push(...intervalEvents(object, previous?.effectiveSyncInterval, extra.schedule));
  const rateProblem = extra.schedule?.rateProblem;
  if (rateProblem !== undefined && after !== undefined) {
    // Ready says it while the annotation is wrong; a Warning when Ready did not say it yet.
    after.message = after.message === '' ? rateProblem : `${after.message}; ${rateProblem}`;
    if (before?.message.includes(rateProblem) !== true) events.push({ type: 'Warning', reason: 'InvalidProviderRateLimit', message: rateProblem });
  }
  return {
    configMapWrites: extra.configMapWrites ?? [],
    status: statusWriteDue(previous, next, now) ? next : undefined,
    next,
    events: [...events, ...(extra.events ?? [])],
    result,
    memo: extra.memo,
    reason: outcome.reason,
    ...('message' in outcome ? { failure: { reason: outcome.reason, message: outcome.message, retry: outcome.retry } } : {}),
  };
}

/** A failed reconcile, handled as the error policy says. */
function fail(input: PlanInput, failure: SyncFailure, extra: { skipped?: SkippedUser[]; schedule?: SyncSchedule } = {}): Plan {
  const policy = failurePolicy(failure);
  const outcome = extra.skipped === undefined ? failure : { ...failure, skipped: extra.skipped };
  // A failure that may pass backs off on the count status keeps, not on this process's alone.
  const failures = (input.object.status?.consecutiveFailures ?? 0) + 1;
  const backoff = failure.retry === 'backoff' ? { failures, retryAfterMs: backoffDelayMs(failures, FAILURE_BACKOFF, () => jitterOf(input.object.metadata.uid ?? '')) } : undefined;
  const result: ReconcileResult = backoff === undefined ? policy.result : { outcome: 'error', retryAfterMs: backoff.retryAfterMs };
  return settle(input, outcome, result, {
    ...(backoff === undefined ? {} : { backoff }),
    ...(policy.remember ? { memo: memoOf(input) } : {}),
    ...(extra.schedule === undefined || policy.remember ? {} : { schedule: extra.schedule }),
  });
}

/**
 * A sync its access key's budget put off until `afterMs` from now (budget/). A resource that
 * synced before keeps its good status; one that never did says why it waits.
 */
export function planDeferred(input: PlanInput, message: string, afterMs: number, schedule: SyncSchedule): Plan {
  const result: ReconcileResult = { outcome: 'requeue_after', requeueAfterMs: Math.max(1, afterMs) };
  if (readyCondition(input.object.status)?.status === 'True') {
    return { configMapWrites: [], status: undefined, events: [], result, memo: undefined, reason: 'Deferred' };
  }
  return { ...fail(input, { reason: 'QuotaExceeded', message, retry: { afterMs: result.requeueAfterMs } }, { schedule }), reason: 'Deferred' };
}

/**
 * A sync whose ConfigMap write the apiserver refused (an admission policy, a quota, RBAC):
 * nothing of `planned` beyond the writes already made happens, and Ready says which write
 * failed and why instead of Synced. Retried with back-off.
 */
export function planWriteRefused(input: PlanInput, planned: Plan, message: string): Plan {
  const plan = fail(input, { reason: 'ConfigMapWriteFailed', message, retry: 'backoff' });
  return planned.listed === undefined ? plan : { ...plan, listed: planned.listed };
}

/**
 * The Secret the reconcile needs read before it plans, if any: none for a spec it cannot
 * serve or a suspended one, so that neither reads a Secret.
 */
export function credentialsSecretOf(object: HpcClusterObject): string | undefined {
  const validation = validateSpec(object.spec);
  return validation.ok && !validation.spec.suspend ? validation.spec.credentialsSecretRef.name : undefined;
}

/**
 * The first step: the request to send the provider, or the whole plan when the reconcile is
 * settled without one (an invalid spec, suspend, missing credentials, a remembered failure).
 */
export function planListing(input: PlanInput): { request: ListingRequest } | { plan: Plan } {
  const { object } = input;
  const name = object.metadata.name;
  const validation = validateSpec(object.spec);
  if (!validation.ok) {
    return { plan: fail(input, { reason: 'InvalidSpec', message: `Invalid spec, fix: ${validation.message}`, retry: 'never' }) };
  }
  if (name.length > MAX_NAME_LENGTH) {
    const message = `metadata.name must be at most ${MAX_NAME_LENGTH} characters: it labels the ConfigMaps`;
    return { plan: fail(input, { reason: 'InvalidSpec', message, retry: 'never' }) };
  }
  const spec = validation.spec;
  if (spec.suspend) return { plan: settle(input, { reason: 'Suspended' }, { outcome: 'success' }) };
  const ownerUid = object.metadata.uid ?? '';
  const conflict =
    configMapConflict(input.configMaps.users, usersConfigMapName(name), name, ownerUid) ??
    configMapConflict(input.configMaps.nss, nssConfigMapName(name), name, ownerUid);
  if (conflict !== undefined) {
    // Known from the cluster alone: no provider call until the name is free, checked again each interval.
    return { plan: fail(input, { reason: 'ConfigMapConflict', message: conflict, retry: { afterMs: intervalOf(spec) } }) };
  }
  const credentials = credentialsFromSecret(spec.credentialsSecretRef, input.secret ?? { state: 'missing' });
  if (typeof credentials === 'string') {
    return { plan: fail(input, { reason: 'CredentialsNotFound', message: credentials, retry: 'never' }) };
  }
  if (input.memo !== undefined && sameMemo(input.memo, memoOf(input))) {
    // Nothing the remembered failure depended on has changed, and status already says what to fix.
    const reason = readyCondition(object.status)?.reason ?? 'Stalled';
    return { plan: { configMapWrites: [], status: undefined, events: [], result: { outcome: 'stalled' }, memo: input.memo, reason } };
  }
  return { request: { spec, target: providerTarget(spec), credentials } };
}

/** The provider's answer, with a listing's users selected and rendered (desiredUsers). */
export type RenderedAnswer = { failure: SyncFailure } | { listing: UserListing; desired: DesiredUsers };

/** `earlier`: this process's last render of the resource, reused when the list is the same (desiredUsers). */
export function renderAnswer(input: Pick<PlanInput, 'object'>, request: ListingRequest, answer: ListResult, earlier?: readonly RenderSummary[]): RenderedAnswer {
  return 'failure' in answer ? answer : { listing: answer.listing, desired: desiredUsers(input.object.metadata.name, request.spec, answer.listing, earlier) };
}

/**
 * Whether planSync needs the users.json of `-users` read first: the list changed from the one
 * it holds (which the diff and the removal guard compare with), and its text was not read.
 */
export function previousUsersUnread(input: PlanInput, answer: RenderedAnswer): boolean {
  if ('failure' in answer || answer.desired.sizeProblem !== undefined) return false;
  const cm = input.configMaps.users;
  const owner = { uid: input.object.metadata.uid, usersDigest: input.object.status?.usersDigest };
  return cm?.usersJson === undefined && usersTrusted(owner, cm) && cm?.usersDigest !== answer.desired.syncId;
}

/** The second step: what the provider's answer comes to; `schedule` is the key budget's word on the next sync. */
export function planSync(input: PlanInput, request: ListingRequest, answer: RenderedAnswer, schedule: SyncSchedule): Plan {
  if ('failure' in answer) return fail(input, answer.failure, { schedule });
  const { object, configMaps } = input;
  const { spec } = request;
  const { name, namespace } = object.metadata;
  const { listing, desired } = answer;
  const listed = { pages: listing.pages, requests: listing.requests };
  const periodic = schedule.nextSyncMs;
  const { users, skipped } = desired;
  const withListing = (plan: Plan): Plan => ({ ...plan, listed: { ...listed, users: users.length } });

  if (desired.sizeProblem !== undefined) {
    return withListing(fail(input, { reason: 'ConfigMapTooLarge', message: desired.sizeProblem, retry: { afterMs: periodic } }, { skipped, schedule }));
  }
  // The last good list: the users.json we wrote (read first when it changed: previousUsersUnread),
  // or status when the ConfigMap was deleted or altered.
  const trusted = usersTrusted({ uid: object.metadata.uid, usersDigest: object.status?.usersDigest }, configMaps.users);
  // The same digest is the same list: an unchanged sync parses nothing.
  const previousUsers =
    trusted && configMaps.users?.usersDigest === desired.syncId
      ? users
      : ((trusted ? parseUsersJson(configMaps.users?.usersJson) : undefined) ?? (object.status?.usersTruncated === false ? object.status.users : undefined));
  const diff = diffUsers(previousUsers ?? [], users);
  if (previousUsers !== undefined && removalExceedsLimit(previousUsers.length, diff.removed.length, spec.maxUserRemovalPercent)) {
    const message = `the sync would remove ${diff.removed.length} of ${previousUsers.length} users, more than maxUserRemovalPercent ${spec.maxUserRemovalPercent}%; raise spec.maxUserRemovalPercent to accept it`;
    return withListing(fail(input, { reason: 'RemovalHeld', message, retry: { afterMs: periodic } }, { skipped, schedule }));
  }

  const ownerUid = object.metadata.uid ?? '';
  const cached = [configMaps.users, configMaps.nss];
  const stale = desired.configMaps.map((cm, i) => !configMapUpToDate(cached[i], cm, name, ownerUid));
  // Data is rendered only for a write: a reused render (desiredUsers) has none.
  const rendered = stale.includes(true) ? (desired.rendered ?? renderConfigMaps(name, users)) : [];
  // -nss first: -users (whose users.json admission trusts once status vouches for it) changes
  // only after its companion is written, and status only after both. A -users yet to be
  // created holds nothing to keep in step: then both go at once.
  const configMapWrites = rendered
    .map((cm, i) => ({ manifest: configMapManifest({ name, namespace, uid: ownerUid }, cm), existing: cached[i] }))
    .filter((_, i) => stale[i])
    .reverse();
  const together = configMapWrites.length > 1 && configMaps.users === undefined;
  const events: PlannedEvent[] = isEmptyDiff(diff)
    ? []
    : previousUsers === undefined
      ? [{ type: 'Normal', reason: 'Synced', message: `${users.length} users synced` }]
      : [{ type: 'Normal', reason: 'UsersChanged', message: `Users changed: ${describeDiff(diff)}` }];
  const outcome: SyncOutcome = { reason: 'Synced', users, skipped, usersDigest: desired.syncId };
  const plan = settle(input, outcome, { outcome: 'success', requeueAfterMs: periodic }, { configMapWrites, events, schedule });
  return withListing({ ...plan, ...(together ? { configMapWritesTogether: true } : {}), synced: { users: users.length, pages: listing.pages } });
}

/**
 * The plan with the versions its ConfigMaps are known at recorded in status
 * (status.configMapVersions): those it wrote, and those it found unedited
 * (versionsWorthRecording), so that a restart believes their annotations without reading
 * their data. A new version alone (a repair, another's label) makes a status write due.
 */
export function recordConfigMapVersions(plan: Plan, previous: HpcClusterStatus | undefined, versions: Partial<Record<ConfigMapRole, string>>, now: Date): Plan {
  if (plan.next === undefined || Object.keys(versions).length === 0) return plan;
  const next = { ...plan.next, configMapVersions: { ...plan.next.configMapVersions, ...versions } };
  return { ...plan, next, status: statusWriteDue(previous, next, now) ? next : undefined };
}
