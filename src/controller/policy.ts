import type { Retry, SyncFailure } from '../domain/failure.js';
import type { ReconcileResult } from './queue.js';

/**
 * The error policy, like kube-rs's `error_policy`: the one table from how a failure may be
 * retried to what the controller does about it — whether the resource is Stalled (kstatus:
 * nothing changes without a spec or Secret change), what the queue does next with its key
 * (which is also the `result` label of the reconcile metrics), and whether the failure is
 * remembered so that the provider is not called again until something it depended on changes.
 */
export interface FailurePolicy {
  stalled: boolean;
  result: ReconcileResult;
  remember: boolean;
}

const POLICY: { [K in Exclude<Retry, object>]: FailurePolicy } = {
  never: { stalled: true, result: { outcome: 'stalled' }, remember: true },
  backoff: { stalled: false, result: { outcome: 'error' }, remember: false },
};

export function failurePolicy({ retry }: Pick<SyncFailure, 'retry'>): FailurePolicy {
  if (typeof retry === 'string') return POLICY[retry];
  return { stalled: false, result: { outcome: 'requeue_after', requeueAfterMs: retry.afterMs }, remember: false };
}
