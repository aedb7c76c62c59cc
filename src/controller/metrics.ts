// Every Prometheus metric of the operator, on a registry of its own (not prom-client's
// global one, so tests and several operators in one process never share series).
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { KeyReport } from '../budget/key-budgets.js';
import type { ReconcileOutcome } from './queue.js';

const prefix = 'hpc_user_operator_';

/**
 * How one provider API request ended, as the `ret_code` label: the provider's `ret_code`
 * when it answered with one, else the HTTP status, a timeout, or a network failure.
 */
export type ProviderRequestOutcome =
  | { retCode: number }
  | { httpStatus: number }
  | { failure: 'timeout' | 'network' };

function retCodeLabel(outcome: ProviderRequestOutcome): string {
  if ('retCode' in outcome) return String(outcome.retCode);
  if ('httpStatus' in outcome) return `http_${String(outcome.httpStatus)}`;
  return outcome.failure;
}

export type AdmissionResult = 'allowed' | 'refused' | 'retry' | 'error';

export class OperatorMetrics {
  readonly registry = new Registry();

  private readonly reconcileTotal = new Counter({
    name: `${prefix}reconcile_total`,
    help: 'Reconciles by result: success; stalled (a failure retrying cannot mend, waiting for a spec, Secret or sync-request change); requeue_after (a failure retried at a known time: a quota window, the next periodic sync); error (retried with back-off).',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });

  private readonly reconcileDuration = new Histogram({
    name: `${prefix}reconcile_duration_seconds`,
    help: 'Time one reconcile took, whatever its result.',
    buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
    registers: [this.registry],
  });

  private readonly providerRequests = new Counter({
    name: `${prefix}provider_requests_total`,
    help: "Provider API requests by outcome: the provider's ret_code, http_<status>, timeout or network.",
    labelNames: ['ret_code'] as const,
    registers: [this.registry],
  });

  private readonly syncPages = new Histogram({
    name: `${prefix}sync_pages`,
    help: 'ListUsers pages read by one successful sync.',
    buckets: [1, 2, 3, 5, 10, 20, 50, 100],
    registers: [this.registry],
  });

  private readonly clusterUsers = new Gauge({
    name: `${prefix}cluster_users`,
    help: 'Users synced for an HpcCluster at its last successful sync.',
    labelNames: ['namespace', 'name'] as const,
    registers: [this.registry],
  });

  private readonly lastSuccessfulSync = new Gauge({
    name: `${prefix}last_successful_sync_timestamp_seconds`,
    help: 'Unix time of the last successful sync of an HpcCluster.',
    labelNames: ['namespace', 'name'] as const,
    registers: [this.registry],
  });

  private readonly queueDepth = new Gauge({
    name: `${prefix}queue_depth`,
    help: 'Keys waiting in the work queue to be reconciled now.',
    registers: [this.registry],
  });

  private readonly leader = new Gauge({
    name: `${prefix}leader`,
    help: '1 while this replica holds the leader lease, else 0.',
    registers: [this.registry],
  });

  private readonly watchRestarts = new Counter({
    name: `${prefix}watch_restarts_total`,
    help: 'Informer restarts (re-list or re-watch) after an error, a 410 Gone or a silent watch, by resource.',
    labelNames: ['resource'] as const,
    registers: [this.registry],
  });

  /** What the access keys' budgets say at scrape time; see watchKeyBudgets. */
  private keyReports: () => KeyReport[] = () => [];

  private readonly keyGauges = (
    [
      ['key_budget_calls_per_hour', 'Calls an hour the operator lets itself make with an access key (its rate less the safety margin).', (r) => r.budgetPerHour],
      ['key_planned_calls_per_hour', "Calls an hour the periodic syncs of an access key's resources make at their effective intervals.", (r) => r.plannedPerHour],
      ['key_demand_calls_per_hour', "Calls an hour an access key's resources would make at their spec intervals.", (r) => r.demandPerHour],
      ['key_tokens', "Calls an access key's bucket can give now (negative while a grown list's calls are repaid).", (r) => r.tokens],
      ['key_resources', 'HpcClusters that sync with an access key.', (r) => r.resources],
      ['key_stretched_resources', "HpcClusters of an access key whose interval is stretched beyond spec.syncInterval to fit the key's budget.", (r) => r.stretched],
      ['key_paused_until_timestamp_seconds', 'Unix time until which an access key is paused after the provider answered QuotaExceeded (0: not paused).', (r) => (r.pausedUntil ?? 0) / 1000],
    ] as const satisfies readonly (readonly [string, string, (report: KeyReport) => number])[]
  ).map(([name, help, value]) => {
    const reports = (): KeyReport[] => this.keyReports();
    return new Gauge({
      name: `${prefix}${name}`,
      help: `${help} key: a short hash of the key, never its id.`,
      labelNames: ['key'] as const,
      registers: [this.registry],
      collect() {
        this.reset();
        for (const report of reports()) this.set({ key: report.label }, value(report));
      },
    });
  });

  private readonly admissions = new Counter({
    name: `${prefix}webhook_admissions_total`,
    help: 'Admission requests the pod identity webhook answered, by result: allowed, refused, retry (not ready or not verifiable yet) or error (not an AdmissionReview).',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });

  private readonly admissionDuration = new Histogram({
    name: `${prefix}webhook_admission_duration_seconds`,
    help: 'Time the webhook took to answer one admission request, from the request body read to the answer written.',
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.1],
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry });
    this.leader.set(0);
    this.queueDepth.set(0);
  }

  observeReconcile(outcome: ReconcileOutcome, durationSeconds: number): void {
    this.reconcileTotal.inc({ result: outcome });
    this.reconcileDuration.observe(durationSeconds);
  }

  countProviderRequest(outcome: ProviderRequestOutcome): void {
    this.providerRequests.inc({ ret_code: retCodeLabel(outcome) });
  }

  /** Records a successful sync of `namespace/name`. */
  observeSuccessfulSync(namespace: string, name: string, sync: { users: number; pages: number; at: Date }): void {
    this.syncPages.observe(sync.pages);
    this.clusterUsers.set({ namespace, name }, sync.users);
    this.lastSuccessfulSync.set({ namespace, name }, sync.at.getTime() / 1000);
  }

  setQueueDepth(depth: number): void {
    this.queueDepth.set(depth);
  }

  setLeader(isLeader: boolean): void {
    this.leader.set(isLeader ? 1 : 0);
  }

  /** Exposes the access keys' budgets: `reports` is read at every scrape. */
  watchKeyBudgets(reports: () => KeyReport[]): void {
    this.keyReports = reports;
  }

  observeAdmission(result: AdmissionResult, durationSeconds: number): void {
    this.admissions.inc({ result });
    this.admissionDuration.observe(durationSeconds);
  }

  countWatchRestart(resource: string): void {
    this.watchRestarts.inc({ resource });
  }

  /** Drops the per-resource series of a deleted HpcCluster. */
  forget(namespace: string, name: string): void {
    this.clusterUsers.remove({ namespace, name });
    this.lastSuccessfulSync.remove({ namespace, name });
  }
}
