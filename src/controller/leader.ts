// Leader election on a coordination.k8s.io/v1 Lease, after client-go's leaderelection
// (client-node 1.4 has none). One replica holds the lease and renews it every retryPeriod;
// the others retry to take it when it is free or has expired. Every write carries the
// resourceVersion that was read, so two replicas never both believe they took it.
import { pino, type Logger } from 'pino';
import { statusCode, type KubeClient } from '../kube/client.js';
import { systemClock, type Clock } from '../runtime/clock.js';

export interface LeaderElectorOptions {
  client: KubeClient;
  namespace: string;
  /** The Lease's name. */
  name: string;
  /** This replica's identity in the Lease (the pod name, say); unique among replicas. */
  identity: string;
  /** How long a lease lasts without renewal before another replica may take it. Default 15 s. */
  leaseDurationMs?: number;
  /**
   * How long the leader keeps trying to renew before it gives up leading. Shorter than the
   * lease duration, so a leader cut off from the API stops before another can take over.
   * Default 10 s.
   */
  renewDeadlineMs?: number;
  /** Time between attempts to acquire or renew. Default 2 s. */
  retryPeriodMs?: number;
  clock?: Clock;
  random?: () => number;
  logger?: Logger;
}

/** The Lease as it travels: its times are MicroTime strings. */
interface Lease {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; namespace?: string; resourceVersion?: string };
  spec?: { holderIdentity?: string; leaseDurationSeconds?: number; acquireTime?: string; renewTime?: string; leaseTransitions?: number };
}

/** metav1.MicroTime's wire form: RFC 3339 with exactly six fractional digits. */
export function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/Z$/, '000Z');
}

export interface LeaderCallbacks {
  /** This replica now leads; `signal` aborts the moment it stops leading. */
  onStartedLeading(signal: AbortSignal): void;
  /** This replica no longer leads (lost the lease, or stop() was called). */
  onStoppedLeading(): void;
}

/** What one attempt found: the lease is ours, someone else's, or the write lost a race. */
type Attempt = 'held' | 'held-by-other' | 'conflict';

type State = 'idle' | 'following' | 'leading' | 'stopped';

export class LeaderElector {
  private readonly client: KubeClient;
  private readonly namespace: string;
  private readonly name: string;
  private readonly identity: string;
  private readonly leaseDurationMs: number;
  private readonly renewDeadlineMs: number;
  private readonly retryPeriodMs: number;
  private readonly clock: Clock;
  private readonly random: () => number;
  private readonly logger: Logger;

  private state: State = 'idle';
  private callbacks: LeaderCallbacks | undefined;
  private leading: AbortController | undefined;
  private everLed = false;
  private cancelNextAttempt = () => {};
  private cancelRenewDeadline = () => {};
  /**
   * The lease as last read and when this replica first saw that version. Expiry is measured
   * on the local clock from that moment, as client-go does, so clock skew between replicas
   * cannot make a live lease look expired.
   */
  private observed: { resourceVersion: string | undefined; at: number } = { resourceVersion: undefined, at: 0 };
  /** The lease's renewTime as this replica found it before first leading: the previous leader's last sign of life. */
  private foundRenewTime: number | undefined;

  constructor(options: LeaderElectorOptions) {
    this.client = options.client;
    this.namespace = options.namespace;
    this.name = options.name;
    this.identity = options.identity;
    this.leaseDurationMs = options.leaseDurationMs ?? 15_000;
    this.renewDeadlineMs = options.renewDeadlineMs ?? 10_000;
    this.retryPeriodMs = options.retryPeriodMs ?? 2_000;
    if (!(this.retryPeriodMs < this.renewDeadlineMs && this.renewDeadlineMs < this.leaseDurationMs)) {
      throw new Error('leader election needs retryPeriodMs < renewDeadlineMs < leaseDurationMs');
    }
    this.clock = options.clock ?? systemClock;
    this.random = options.random ?? Math.random;
    this.logger = (options.logger ?? pino({ level: 'silent' })).child({ lease: `${this.namespace}/${this.name}`, identity: this.identity });
  }

  /**
   * Starts competing for the lease. One-shot, as in client-go: after losing the lease the
   * elector stops for good, and the process is expected to exit (a fresh start competes again).
   */
  run(callbacks: LeaderCallbacks): void {
    if (this.state !== 'idle') throw new Error('the leader elector was already run');
    this.callbacks = callbacks;
    this.state = 'following';
    void this.attempt();
  }

  isLeader(): boolean {
    return this.state === 'leading';
  }

  /**
   * When the lease was last renewed before this replica first took it (by another replica, or
   * by this identity's previous process), or undefined when this replica created the lease or
   * has not led yet. Work asked for after that moment may have found no leader to do it.
   */
  previousLeaderRenewTime(): number | undefined {
    return this.everLed ? this.foundRenewTime : undefined;
  }

  /** Stops competing; if this replica leads, it stops leading and releases the lease. */
  async stop(): Promise<void> {
    this.stopLeading('stop requested');
    this.state = 'stopped';
    this.cancelNextAttempt();
    // Also after a lost lease: if it still names this replica, the next leader need not wait.
    if (this.everLed) await this.release();
  }

  /** A method, not a field test: the state changes while requests are out. */
  private isStopped(): boolean {
    return this.state === 'stopped';
  }

  private async attempt(): Promise<void> {
    if (this.state === 'stopped' || this.state === 'idle') return;
    let result: Attempt | 'failed';
    try {
      result = await this.tryAcquireOrRenew();
    } catch (error) {
      this.logger.warn({ err: error }, this.state === 'leading' ? 'lease renewal failed' : 'lease acquisition failed');
      result = 'failed';
    }
    // stop() or the renew deadline may have come while the request was out.
    if (this.isStopped()) return;
    if (this.state === 'following') {
      if (result === 'held') this.startLeading();
      // client-go's jitter: followers spread their attempts so they do not move in step.
      const delayMs = result === 'held' ? this.retryPeriodMs : this.retryPeriodMs * (1 + 0.2 * this.random());
      this.cancelNextAttempt = this.clock.schedule(() => void this.attempt(), delayMs);
      return;
    }
    if (result === 'held-by-other') {
      this.loseLeadership('another replica holds the lease');
      return;
    }
    // A failed or conflicting renewal is retried; the renew deadline ends the leadership.
    if (result === 'held') this.armRenewDeadline();
    this.cancelNextAttempt = this.clock.schedule(() => void this.attempt(), this.retryPeriodMs);
  }

  private startLeading(): void {
    this.state = 'leading';
    this.everLed = true;
    this.leading = new AbortController();
    this.armRenewDeadline();
    this.logger.info('acquired the lease: leading');
    try {
      this.callbacks?.onStartedLeading(this.leading.signal);
    } catch (error) {
      this.logger.error({ err: error }, 'onStartedLeading threw');
    }
  }

  private armRenewDeadline(): void {
    this.cancelRenewDeadline();
    this.cancelRenewDeadline = this.clock.schedule(
      () => this.loseLeadership(`no successful renewal within ${String(this.renewDeadlineMs)} ms`),
      this.renewDeadlineMs,
    );
  }

  private loseLeadership(reason: string): void {
    this.logger.error({ reason }, 'lost the lease: no longer leading');
    this.stopLeading(reason);
    this.state = 'stopped';
    this.cancelNextAttempt();
  }

  /** Aborts the leading signal and tells the callbacks, before anything else happens. */
  private stopLeading(reason: string): void {
    this.cancelRenewDeadline();
    if (this.state !== 'leading') return;
    this.state = 'following';
    this.leading?.abort(new Error(`leadership ended: ${reason}`));
    this.leading = undefined;
    try {
      this.callbacks?.onStoppedLeading();
    } catch (error) {
      this.logger.error({ err: error }, 'onStoppedLeading threw');
    }
  }

  private async tryAcquireOrRenew(): Promise<Attempt> {
    const now = this.clock.now();
    let lease: Lease;
    try {
      lease = await this.client.get<Lease>(this.leasePath());
    } catch (error) {
      if (statusCode(error) !== 404) throw error;
      return this.create(now);
    }
    // Stopped while reading: writing now could take back a lease stop() is releasing.
    if (this.isStopped()) return 'conflict';
    const resourceVersion = lease.metadata?.resourceVersion;
    if (resourceVersion !== this.observed.resourceVersion) this.observed = { resourceVersion, at: now };
    const spec = lease.spec ?? {};
    const holder = spec.holderIdentity ?? '';
    if (holder !== '' && holder !== this.identity) {
      const durationMs = (spec.leaseDurationSeconds ?? Math.ceil(this.leaseDurationMs / 1000)) * 1000;
      if (now < this.observed.at + durationMs) return 'held-by-other';
      this.logger.info({ holder }, 'the lease expired: taking it over');
    }
    if (!this.everLed) {
      const found = Date.parse(spec.renewTime ?? '');
      this.foundRenewTime = Number.isFinite(found) ? found : undefined;
    }
    const renewTime = microTime(now);
    const taking = holder !== this.identity;
    const body: Lease = {
      ...lease,
      spec: {
        ...spec,
        holderIdentity: this.identity,
        leaseDurationSeconds: Math.ceil(this.leaseDurationMs / 1000),
        renewTime,
        ...(taking ? { acquireTime: renewTime, leaseTransitions: (spec.leaseTransitions ?? 0) + (holder === '' ? 0 : 1) } : {}),
      },
    };
    try {
      const written = await this.client.request<Lease>('PUT', this.leasePath(), { body });
      this.observed = { resourceVersion: written.metadata?.resourceVersion, at: now };
      return 'held';
    } catch (error) {
      if (statusCode(error) === 409) return 'conflict';
      throw error;
    }
  }

  private leasePath(): string {
    return `/apis/coordination.k8s.io/v1/namespaces/${this.namespace}/leases/${this.name}`;
  }

  private async create(now: number): Promise<Attempt> {
    if (!this.everLed) this.foundRenewTime = undefined;
    const time = microTime(now);
    try {
      const created = await this.client.request<Lease>('POST', `/apis/coordination.k8s.io/v1/namespaces/${this.namespace}/leases`, {
        body: {
          apiVersion: 'coordination.k8s.io/v1',
          kind: 'Lease',
          metadata: { name: this.name, namespace: this.namespace },
          spec: {
            holderIdentity: this.identity,
            leaseDurationSeconds: Math.ceil(this.leaseDurationMs / 1000),
            acquireTime: time,
            renewTime: time,
            leaseTransitions: 0,
          },
        },
      });
      this.observed = { resourceVersion: created.metadata?.resourceVersion, at: now };
      return 'held';
    } catch (error) {
      if (statusCode(error) === 409) return 'conflict';
      throw error;
    }
  }

  /**
   * Clears holderIdentity if the lease still names this replica, so another replica takes
   * over at once instead of after the lease duration. Best effort: on failure the lease
   * simply expires. A 409 (a renewal that was in flight landed first) is retried.
   */
  private async release(): Promise<void> {
    for (let attempt = 1; attempt <= 3; attempt++) {
      try {
        const lease = await this.client.get<Lease>(this.leasePath());
        if (lease.spec?.holderIdentity !== this.identity) return;
        const now = microTime(this.clock.now());
        await this.client.request('PUT', this.leasePath(), {
          body: { ...lease, spec: { ...lease.spec, holderIdentity: '', leaseDurationSeconds: 1, renewTime: now } },
        });
        this.logger.info('released the lease');
        return;
      } catch (error) {
        if (statusCode(error) === 409) continue;
        this.logger.warn({ err: error }, 'could not release the lease; it will expire');
        return;
      }
    }
  }
}
