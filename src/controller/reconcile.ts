import type { Logger } from 'pino';
import type { HpcClusterObject, HpcClusterStatus } from '../api/hpccluster.js';
import { nssConfigMapName, usersConfigMapName, type ConfigMapManifest } from '../render/configmaps.js';
import type { UserSource } from '../provider/user-source.js';
import { credentialsSecretOf, planListing, planSync, type ConfigMapState, type FailureMemo, type Plan, type PlanInput } from './plan.js';
import type { ReconcileResult } from './queue.js';
import { keyOf, type ObjectKey } from './object-key.js';
import type { SecretRead } from './sync.js';

/**
 * One reconcile of one HpcCluster: the controller's single entry per object, like
 * controller-runtime's Reconcile(ctx, request). It reads what the plan needs, asks the
 * provider when the plan says so, and carries out the plan (plan.ts decides everything).
 * Everything it touches is behind the small ports below.
 */

/** The Kubernetes side, as this reconcile needs it (reads from caches where they exist). */
export interface KubePort {
  getHpcCluster(key: ObjectKey): HpcClusterObject | undefined;
  /** From the cache, which holds only ConfigMaps labelled as the operator's. */
  getConfigMap(key: ObjectKey): ConfigMapState | undefined;
  /** From the apiserver: any ConfigMap, labelled or not; undefined when it does not exist. */
  readConfigMap(key: ObjectKey): Promise<ConfigMapState | undefined>;
  /** The data of a Secret lent to the operator; the data of any other Secret is never read. */
  readSecret(key: ObjectKey): Promise<SecretRead>;
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
  kube: KubePort;
  users: UserSource;
  logger: Logger;
  metrics?: ReconcileMetrics;
  now?: () => Date;
  random?: () => number;
}

export class HpcClusterReconciler {
  /** Failures that retrying cannot mend, by key, with what they were computed from. */
  private readonly memos = new Map<string, FailureMemo>();
  private readonly now: () => Date;
  private readonly random: () => number;

  constructor(private readonly deps: ReconcilerDeps) {
    this.now = deps.now ?? (() => new Date());
    this.random = deps.random ?? Math.random;
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
    if (plan.failure === undefined) this.deps.logger.info(fields, 'reconciled');
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
      return undefined;
    }
    const secretName = credentialsSecretOf(object);
    // A name the cache does not hold may still be taken by a ConfigMap without our labels: a
    // reconcile that may sync looks it up, so that it never creates over (or adopts) another's.
    const configMap = async (name: string): Promise<ConfigMapState | undefined> => {
      const cmKey = { namespace: key.namespace, name };
      return kube.getConfigMap(cmKey) ?? (secretName === undefined ? undefined : await kube.readConfigMap(cmKey));
    };
    const input: PlanInput = {
      object: { ...object, metadata: { ...object.metadata, ...key } },
      secret: secretName === undefined ? undefined : await kube.readSecret({ namespace: key.namespace, name: secretName }),
      configMaps: { users: await configMap(usersConfigMapName(key.name)), nss: await configMap(nssConfigMapName(key.name)) },
      memo: this.memos.get(id),
      now: this.now(),
      jitter: this.random(),
    };
    const first = planListing(input);
    let plan: Plan;
    if ('plan' in first) plan = first.plan;
    else {
      const { target, credentials } = first.request;
      plan = planSync(input, first.request, await this.deps.users.listUsers(target, credentials, signal));
    }
    if (plan.memo === undefined) this.memos.delete(id);
    else this.memos.set(id, plan.memo);
    await this.carryOut(object, key, plan, signal);
    return plan;
  }

  private async carryOut(object: HpcClusterObject, key: ObjectKey, plan: Plan, signal: AbortSignal): Promise<void> {
    const { kube, metrics } = this.deps;
    for (const { manifest, existing } of plan.configMapWrites) {
      signal.throwIfAborted();
      await kube.writeConfigMap(manifest, existing);
    }
    if (plan.synced !== undefined) metrics?.observeSuccessfulSync(key.namespace, key.name, { ...plan.synced, at: this.now() });
    if (plan.status !== undefined) {
      signal.throwIfAborted();
      await kube.writeStatus(key, plan.status);
    }
    for (const event of plan.events) await kube.recordEvent(object, event.type, event.reason, event.message);
  }
}

const messageOf = (value: unknown): string => (value instanceof Error ? value.message : String(value));
