import type { Logger } from 'pino';
import type { HpcClusterObject, HpcClusterStatus } from '../api/hpccluster.js';
import { formatDuration, parseDuration } from '../api/duration.js';
import { declaredRateOf } from '../budget/declared-rate.js';
import type { KeyBudgets } from '../budget/key-budgets.js';
import { syncKindOf } from '../budget/sync-kind.js';
import { SYNC_ID_ANNOTATION, type ConfigMapManifest, type RenderSummary } from '../render/configmaps.js';
import { accessKeyIdentity } from '../provider/key-identity.js';
import type { ListResult, UserSource } from '../provider/user-source.js';
import { MAX_PAGE_SIZE } from '../provider/wire.js';
import { formatTimestamp } from '../runtime/clock.js';
import { KubeApiError } from '../kube/client.js';
import { usersTrusted } from '../domain/trusted-users.js';
import { concurrencyLimit } from '../runtime/limit.js';
import { messageOf } from '../runtime/error-message.js';
import {
  configMapsInStep,
  credentialsSecretOf,
  memoOf,
  planDeferred,
  planListing,
  planSync,
  planWriteRefused,
  previousUsersUnread,
  recordConfigMapVersions,
  rememberedFailure,
  renderAnswer,
  statusPatch,
  type ConfigMapState,
  type ConfigMapWrite,
  type FailureMemo,
  type ListingRequest,
  type Plan,
  type PlanInput,
  type StatusPatch,
  type SyncSchedule,
} from './plan.js';
import { syncRequestPending } from './sync-request.js';
import { readyCondition } from './status.js';
import type { ReconcileResult } from './queue.js';
import { keyOf, type ObjectKey } from './object-key.js';
import type { SecretRead } from './sync.js';
import {
  CONFIGMAP_ROLES,
  ConfigMapLedger,
  configMapNameOf,
  contentsClaimed,
  contentsInOrder,
  roleOf,
  versionsWorthRecording,
  vouchedContents,
  type ConfigMapRole,
} from './configmap-contents.js';
import type { CachedConfigMap } from './cached-objects.js';

/**
 * One reconcile of one HpcCluster: the controller's single entry per object, like
 * controller-runtime's Reconcile(ctx, request). It reads what the plan needs, asks the
 * provider when the plan says so, and carries out the plan (plan.ts decides everything).
 * Everything it touches is behind the small ports below.
 */

/** The Kubernetes side, as this reconcile needs it (reads from caches where they exist). */
export interface KubePort {
  getHpcCluster(key: ObjectKey): HpcClusterObject | undefined;
  /**
   * From the cache, which holds every ConfigMap named as an HpcCluster's may be (`*-users`,
   * `*-nss`), the operator's or not, and only their metadata.
   */
  getConfigMap(key: ObjectKey): ConfigMapState | undefined;
  /**
   * From the apiserver, whole (contents and users.json): any ConfigMap, labelled or not, at a
   * version not older than `notOlderThan` (any version this process saw); undefined when it does not exist.
   */
  readConfigMap(key: ObjectKey, notOlderThan: string | undefined): Promise<ConfigMapState | undefined>;
  /** From the apiserver: the whole status, users included, which the cache leaves out. */
  readHpcClusterStatus(key: ObjectKey): Promise<HpcClusterStatus | undefined>;
  /** The data of a Secret lent to the operator; the data of any other Secret is never read. */
  readSecret(key: ObjectKey): Promise<SecretRead>;
  /** Create, or replace at `resourceVersion` (a stale one fails with a conflict); resolves with the version written. */
  writeConfigMap(manifest: ConfigMapManifest, existing: ConfigMapState | undefined): Promise<string>;
  /**
   * A JSON merge patch of the status subresource (null removes a field), made against the
   * object at `resourceVersion`: the patch holds only what changed since that version, so a
   * newer object fails it with a conflict.
   */
  writeStatus(key: ObjectKey, status: StatusPatch, resourceVersion: string | undefined): Promise<void>;
  recordEvent(object: HpcClusterObject, type: 'Normal' | 'Warning', reason: string, message: string): Promise<void>;
}

/** The metrics a reconcile records (OperatorMetrics in production). */
export interface ReconcileMetrics {
  observeSuccessfulSync(namespace: string, name: string, sync: { users: number; pages: number; at: Date }): void;
}

export interface ReconcilerDeps {
  kube: KubePort;
  users: UserSource;
  /** The access keys' budgets; the same object limits the UserSource's calls. */
  budget: KeyBudgets;
  logger: Logger;
  metrics?: ReconcileMetrics;
  now?: () => Date;
  /** The cut-off for sync requests made while no replica led (sync-request.ts); undefined: none are. */
  requestsHandledBefore?: () => number | undefined;
}

/** Pages the last sync read, as far as status tells: before this process's first sync of the resource. */
function pagesFromStatus(status: HpcClusterStatus | undefined): number {
  return Math.max(1, Math.ceil(((status?.userCount ?? 0) + (status?.skippedUserCount ?? 0)) / MAX_PAGE_SIZE));
}

/** Events longer than this are cut; the apiserver refuses messages above 1 KiB. */
const MAX_REFUSAL_MESSAGE = 1024;

/**
 * Why the apiserver refused a ConfigMap write, or undefined for what is no refusal: a conflict
 * (a stale cache, retried at once) or an error that never reached it (thrown, retried with back-off).
 */
export function writeRefusal(err: unknown, configMap: string): string | undefined {
  if (!(err instanceof KubeApiError) || err.code === 409) return undefined;
  const message = `the apiserver refused the write of ConfigMap ${configMap} (HTTP ${err.code}): ${err.statusMessage}`;
  return message.length > MAX_REFUSAL_MESSAGE ? `${message.slice(0, MAX_REFUSAL_MESSAGE - 1)}…` : message;
}

export class HpcClusterReconciler {
  /** Failures that retrying cannot mend, by key, with what they were computed from. */
  private readonly memos = new Map<string, FailureMemo>();
  /** What each resource's last sync in this process was computed from: tells periodic syncs from asked-for ones. */
  private readonly lastSyncs = new Map<string, ReturnType<typeof memoOf>>();
  /** This process's last render of each resource, without its data: the same list again renders nothing (desiredUsers). */
  private readonly renders = new Map<string, RenderSummary[]>();
  /** What the ConfigMaps hold at the versions this process wrote or read (configmap-contents.ts). */
  private readonly contents = new ConfigMapLedger();
  /** ConfigMaps a create found taken while the cache did not hold them: the next sync reads them. */
  private readonly takenUnseen = new Set<string>();
  /** Whole ConfigMaps read to check a watch event: after a restart that may be every one of them. */
  private readonly checkLimit = concurrencyLimit(4);
  private readonly now: () => Date;

  constructor(private readonly deps: ReconcilerDeps) {
    this.now = deps.now ?? (() => new Date());
  }

  /**
   * Whether an added or updated ConfigMap of HpcCluster `owner` calls for a sync of it. At a
   * version whose contents are vouched for, no: its own writes never feed back. A version that
   * may be its write in flight waits for that write's answer. Any other version (another
   * writer's, or one unknown since a restart) is read whole and checked (contentsInOrder).
   */
  configMapCallsForSync(cm: CachedConfigMap, owner: ObjectKey): boolean | Promise<boolean> {
    const { metadata } = cm;
    const role = roleOf(metadata.name, owner.name);
    if (role === undefined) return false;
    const key = { namespace: metadata.namespace, name: metadata.name };
    const status = this.deps.kube.getHpcCluster(owner)?.status;
    if (vouchedContents(metadata, role, this.contents.at(key, metadata.resourceVersion), status) !== undefined) return false;
    const write = this.contents.inFlight(key, metadata);
    if (write === undefined) return this.checkConfigMap(key, metadata.resourceVersion, role, owner);
    return write.answer.then((written) =>
      metadata.resourceVersion === written || metadata.resourceVersion === write.replacing ? false : this.checkConfigMap(key, metadata.resourceVersion, role, owner),
    );
  }

  /** Reads a ConfigMap whole and says whether it calls for a sync of its owner. */
  private checkConfigMap(key: ObjectKey, seen: string | undefined, role: ConfigMapRole, owner: ObjectKey): Promise<boolean> {
    return this.checkLimit(async () => {
      const read = await this.read(key, seen);
      if (read?.dataHash === undefined) return true;
      return !contentsInOrder(read.annotations, { dataHash: read.dataHash, usersDigest: read.usersDigest }, role, this.deps.kube.getHpcCluster(owner));
    });
  }

  /** A cached ConfigMap, with what it holds when that is vouched for (configmap-contents.ts). */
  private known(key: ObjectKey, role: ConfigMapRole, status: HpcClusterStatus | undefined): ConfigMapState | undefined {
    const cached = this.deps.kube.getConfigMap(key);
    const contents = cached === undefined ? undefined : vouchedContents(cached, role, this.contents.at(key, cached.resourceVersion), status);
    return contents === undefined ? cached : { ...cached, ...contents };
  }

  /** An HpcCluster's ConfigMaps as far as they are known without reading them. */
  knownConfigMaps(object: HpcClusterObject & { metadata: ObjectKey }): PlanInput['configMaps'] {
    const { namespace, name } = object.metadata;
    return {
      users: this.known({ namespace, name: configMapNameOf('users', name) }, 'users', object.status),
      nss: this.known({ namespace, name: configMapNameOf('nss', name) }, 'nss', object.status),
    };
  }

  /**
   * Reads whole the cached ConfigMaps of `objects` that nothing vouches for (written while the
   * operator was down, or by an operator that recorded no versions yet), a few at a time, so
   * that knownConfigMaps can tell which are in step.
   */
  async readUnvouched(objects: (HpcClusterObject & { metadata: ObjectKey })[]): Promise<void> {
    const reads = objects.flatMap((object) => {
      const { namespace, name } = object.metadata;
      const known = this.knownConfigMaps(object);
      return CONFIGMAP_ROLES.flatMap((role) => {
        const cm = known[role];
        return cm === undefined || cm.dataHash !== undefined ? [] : [this.checkLimit(() => this.read({ namespace, name: configMapNameOf(role, name) }, cm.resourceVersion))];
      });
    });
    await Promise.all(reads);
  }

  /** A ConfigMap read whole, not older than `notOlderThan`; what it holds at that version is remembered. */
  private async read(key: ObjectKey, notOlderThan: string | undefined): Promise<ConfigMapState | undefined> {
    const read = await this.deps.kube.readConfigMap(key, notOlderThan);
    if (read?.dataHash !== undefined) this.contents.read(key, read.resourceVersion, { dataHash: read.dataHash, usersDigest: read.usersDigest });
    return read;
  }

  /**
   * Reconciles one resource and logs one line about it (a failure once, as a warning). Returns
   * how it ended and when to come back; throws only what nobody expected (an apiserver
   * error), which the queue retries with back-off, and an abort of `signal`.
   */
  async reconcile(key: ObjectKey, signal: AbortSignal): Promise<ReconcileResult> {
    const started = performance.now();
    const line = (): Record<string, unknown> => ({ namespace: key.namespace, name: key.name, durationMs: Math.round(performance.now() - started) });
    let plan: Plan | undefined;
    try {
      plan = await this.sync(key, signal);
    } catch (err) {
      // An abort (the object was deleted or respecified, or shutdown) is no failure: the
      // queue runs the key again for the new state and counts nothing for this run.
      if (signal.aborted) this.deps.logger.info({ ...line(), reason: messageOf(signal.reason) }, 'reconcile aborted');
      else this.deps.logger.warn({ ...line(), error: messageOf(err) }, 'reconcile failed');
      throw err;
    }
    if (plan === undefined) {
      this.deps.logger.info({ ...line(), result: 'NotFound' }, 'reconciled');
      return { outcome: 'success' };
    }
    const fields = { ...line(), result: plan.reason, outcome: plan.result.outcome, ...plan.listed };
    if (plan.reason === 'Deferred') this.deps.logger.info({ ...fields, retryInMs: 'requeueAfterMs' in plan.result ? plan.result.requeueAfterMs : undefined }, 'sync deferred');
    else if (plan.failure === undefined) this.deps.logger.info(fields, 'reconciled');
    else this.deps.logger.warn({ ...fields, retry: plan.failure.retry, error: plan.failure.message }, 'reconcile failed');
    return plan.result;
  }

  /** Plans and carries out one reconcile; undefined when the resource is gone. */
  private async sync(key: ObjectKey, signal: AbortSignal): Promise<Plan | undefined> {
    const { kube } = this.deps;
    const id = keyOf(key);
    const object = kube.getHpcCluster(key);
    if (object === undefined) {
      this.memos.delete(id);
      this.lastSyncs.delete(id);
      this.renders.delete(id);
      for (const role of CONFIGMAP_ROLES) {
        const cmKey = { namespace: key.namespace, name: configMapNameOf(role, key.name) };
        this.contents.forget(cmKey);
        this.takenUnseen.delete(keyOf(cmKey));
      }
      this.deps.budget.forget(id);
      return undefined;
    }
    const secretName = credentialsSecretOf(object);
    // A reconcile that may sync knows what its ConfigMaps hold, reading those it cannot vouch
    // for (not older than the cached version, which the apiserver's watch cache has seen). The
    // cache holds another's ConfigMap under the name too, so a name it does not hold is free as
    // far as the watch has seen: a first sync looks nothing up. A name a create found taken (by
    // a ConfigMap made a moment before, whose event is still on its way) is read, from etcd.
    const configMap = async (name: string, role: ConfigMapRole): Promise<ConfigMapState | undefined> => {
      const cmKey = { namespace: key.namespace, name };
      const known = this.known(cmKey, role, object.status);
      if (secretName === undefined || known?.dataHash !== undefined) return known;
      if (known !== undefined) return this.read(cmKey, known.resourceVersion);
      return this.takenUnseen.delete(keyOf(cmKey)) ? this.read(cmKey, undefined) : undefined;
    };
    // Side by side: on a first sync one round trip to the apiserver at most (none for a Secret
    // already read at its version).
    const [secret, users, nss] = await Promise.all([
      secretName === undefined ? undefined : kube.readSecret({ namespace: key.namespace, name: secretName }),
      configMap(configMapNameOf('users', key.name), 'users'),
      configMap(configMapNameOf('nss', key.name), 'nss'),
    ]);
    const input: PlanInput = {
      object: { ...object, metadata: { ...object.metadata, ...key } },
      secret,
      configMaps: { users, nss },
      // After a restart, what status remembers: a refused key is not tried again for nothing.
      memo: this.memos.get(id) ?? rememberedFailure(object.status),
      now: this.now(),
    };
    const first = planListing(input);
    const planned = 'plan' in first ? first.plan : await this.budgetedSync(id, await this.withStatusUsers(key, input), first.request, signal);
    const { refusal, versions } = await this.writeConfigMaps(key, planned, signal);
    const known = versionsWorthRecording(input.configMaps, object.metadata.uid);
    const plan = recordConfigMapVersions(refusal === undefined ? planned : planWriteRefused(input, planned, refusal), object.status, { ...known, ...versions }, input.now);
    if (plan.memo === undefined) this.memos.delete(id);
    else this.memos.set(id, plan.memo);
    // A resource that does not sync periodically (invalid, suspended, stalled) takes no share of its key's budget.
    if ('plan' in first || plan.memo !== undefined) this.deps.budget.forget(id);
    await this.carryOut(object, key, plan, signal);
    return plan;
  }

  /**
   * The input with status.users read back when a sync may need them: the last good list falls
   * back on them when -users is gone or not the operator's (plan.ts), and the cache keeps none.
   */
  private async withStatusUsers(key: ObjectKey, input: PlanInput): Promise<PlanInput> {
    const status = input.object.status;
    if (status?.usersTruncated !== false || status.users !== undefined) return input;
    if (usersTrusted({ uid: input.object.metadata.uid, usersDigest: status.usersDigest }, input.configMaps.users)) return input;
    const read = await this.deps.kube.readHpcClusterStatus(key);
    // Only the users of the list this status vouches for.
    if (read?.users === undefined || read.usersDigest !== status.usersDigest) return input;
    return { ...input, object: { ...input.object, status: { ...status, users: read.users } } };
  }

  /**
   * Writes the plan's ConfigMaps, in order (stopping at the first the apiserver refuses) or
   * side by side when the plan allows; says why a write was refused. Returns the versions
   * written, for status.
   */
  private async writeConfigMaps(owner: ObjectKey, plan: Plan, signal: AbortSignal): Promise<{ refusal: string | undefined; versions: Partial<Record<ConfigMapRole, string>> }> {
    const versions: Partial<Record<ConfigMapRole, string>> = {};
    const write = async (step: ConfigMapWrite): Promise<string | undefined> => {
      const outcome = await this.writeConfigMap(owner, step, signal);
      if ('refusal' in outcome) return outcome.refusal;
      if (outcome.role !== undefined) versions[outcome.role] = outcome.written;
      return undefined;
    };
    if (plan.configMapWritesTogether === true) {
      // Every write is answered before the first error is thrown: the ledger then knows each outcome.
      const settled = await Promise.allSettled(plan.configMapWrites.map(write));
      const failed = settled.find((outcome) => outcome.status === 'rejected');
      if (failed !== undefined) throw failed.reason;
      const refusal = settled.map((outcome) => (outcome.status === 'fulfilled' ? outcome.value : undefined)).find((refused) => refused !== undefined);
      return { refusal, versions };
    }
    for (const step of plan.configMapWrites) {
      const refusal = await write(step);
      if (refusal !== undefined) return { refusal, versions };
    }
    return { refusal: undefined, versions };
  }

  /** One ConfigMap write: the version written, or why the apiserver refused it. */
  private async writeConfigMap(
    owner: ObjectKey,
    { manifest, existing }: ConfigMapWrite,
    signal: AbortSignal,
  ): Promise<{ role: ConfigMapRole | undefined; written: string } | { refusal: string }> {
    signal.throwIfAborted();
    const key = { namespace: manifest.metadata.namespace, name: manifest.metadata.name };
    const role = roleOf(key.name, owner.name);
    const { annotations } = manifest.metadata;
    const contents = role === undefined ? undefined : contentsClaimed(annotations, role);
    // Recorded first: the watch event of the write may arrive before its answer.
    if (contents !== undefined) this.contents.writing(key, contents, annotations[SYNC_ID_ANNOTATION], existing?.resourceVersion);
    let written: string | undefined;
    try {
      written = await this.deps.kube.writeConfigMap(manifest, existing);
    } catch (err) {
      // AlreadyExists: the cache has not seen that ConfigMap yet, and the retry reads it instead.
      if (existing === undefined && err instanceof KubeApiError && err.code === 409) this.takenUnseen.add(keyOf(key));
      const refusal = writeRefusal(err, manifest.metadata.name);
      if (refusal === undefined) throw err;
      return { refusal };
    } finally {
      this.contents.written(key, written);
    }
    return { role, written };
  }

  /**
   * The sync, as its access key's budget allows: it is put off when the key cannot give its
   * calls now (the worker moves on), a QuotaExceeded pauses every resource of the key, and
   * the next sync is the resource's slot in the key's plan.
   */
  private async budgetedSync(id: string, input: PlanInput, request: ListingRequest, signal: AbortSignal): Promise<Plan> {
    const { budget } = this.deps;
    const { spec, target, credentials } = request;
    const accessKey = accessKeyIdentity(target.endpoint, credentials.accessKeyId, credentials.secretAccessKey);
    const intervalMs = parseDuration(spec.syncInterval) ?? 600_000;
    const declared = declaredRateOf(spec.credentialsSecretRef.name, input.secret?.state === 'lent' ? input.secret.providerRateLimit : undefined);
    budget.track(id, accessKey, intervalMs, { cost: pagesFromStatus(input.object.status), ...(declared.rate === undefined ? {} : { rate: declared.rate }) });
    const inputs = memoOf(input);
    const ready = readyCondition(input.object.status);
    const kind = syncKindOf(this.lastSyncs.get(id), inputs, {
      configMapsIntact: configMapsInStep(input.object, input.configMaps),
      statusSynced:
        ready?.reason === 'Synced' && input.object.status?.observedGeneration === (input.object.metadata.generation ?? 0) && !syncRequestPending(input.object, this.deps.requestsHandledBefore?.()),
    });
    const admission = budget.admit(id, kind);
    if (!admission.granted) {
      const message =
        admission.reason === 'key-paused'
          ? `the provider answered QuotaExceeded for access key ${accessKey.short}: every resource on it waits until ${formatTimestamp(new Date(admission.retryAt))}`
          : `access key ${accessKey.short} has no calls left in its budget for now: the sync runs as soon as it has (see the hpc_user_operator_key_* metrics)`;
      return planDeferred(input, message, admission.retryAt - this.now().getTime(), this.scheduleOf(id, intervalMs, declared.problem));
    }
    this.lastSyncs.set(id, inputs);
    let answer: ListResult;
    try {
      answer = await this.deps.users.listUsers(target, credentials, signal);
    } finally {
      admission.release();
    }
    if ('listing' in answer) budget.synced(id, answer.listing.pages);
    else if (answer.failure.reason === 'QuotaExceeded') {
      // The key is spent for every resource on it, not just this one.
      const until = budget.quotaExceeded(accessKey.id) ?? this.now().getTime() + intervalMs;
      const message = `${answer.failure.message}; every resource on access key ${accessKey.short} waits until ${formatTimestamp(new Date(until))}`;
      answer = { failure: { ...answer.failure, message, retry: { afterMs: Math.max(1, until - this.now().getTime()) } } };
    }
    const rendered = renderAnswer(input, request, answer, this.renders.get(id));
    if ('desired' in rendered) this.renders.set(id, rendered.desired.configMaps);
    // The list changed: the diff and the removal guard compare with the one -users holds.
    const { namespace, name } = input.object.metadata;
    const users = input.configMaps.users;
    const compared = previousUsersUnread(input, rendered) ? { ...input, configMaps: { ...input.configMaps, users: await this.read({ namespace, name: configMapNameOf('users', name) }, users?.resourceVersion) } } : input;
    return planSync(compared, request, rendered, this.scheduleOf(id, intervalMs, declared.problem));
  }

  /** The budget's word on a tracked resource: its next slot, its interval when stretched, and what is wrong with its Secret's declared rate. */
  private scheduleOf(id: string, intervalMs: number, rateProblem: string | undefined): SyncSchedule {
    const { budget } = this.deps;
    const stretchedMs = budget.stretchedIntervalMs(id);
    const because = budget.describeKeyOf(id);
    return {
      nextSyncMs: budget.delayAfterSyncMs(id) ?? intervalMs,
      ...(stretchedMs === undefined ? {} : { stretchedInterval: formatDuration(stretchedMs) }),
      ...(because === undefined ? {} : { stretchedBecause: because }),
      ...(rateProblem === undefined ? {} : { rateProblem }),
    };
  }

  /** The rest of a plan once its ConfigMaps are written: metrics, status, events. */
  private async carryOut(object: HpcClusterObject, key: ObjectKey, plan: Plan, signal: AbortSignal): Promise<void> {
    const { kube, metrics } = this.deps;
    if (plan.synced !== undefined) metrics?.observeSuccessfulSync(key.namespace, key.name, { ...plan.synced, at: this.now() });
    if (plan.status !== undefined) {
      signal.throwIfAborted();
      await kube.writeStatus(key, statusPatch(object.status, plan.status), object.metadata.resourceVersion);
    }
    for (const event of plan.events) {
      try {
        await kube.recordEvent(object, event.type, event.reason, event.message);
      } catch (error) {
        // Events only report: one the apiserver refuses (a namespace being deleted, a quota on
        // events) is logged, and the sync it reports stands rather than being redone.
        this.deps.logger.warn({ namespace: key.namespace, name: key.name, reason: event.reason, error: messageOf(error) }, 'could not record an event');
      }
    }
  }
}
