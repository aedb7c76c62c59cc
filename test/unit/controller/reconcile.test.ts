// The thin reconciler around the plan: what it reads, the order it writes in, the memo it
// keeps between reconciles, and one log line per reconcile.
import { describe, expect, it } from '@jest/globals';
import { KubeApiError } from '../../../src/kube/client.js';
import { pino } from 'pino';
import type { HpcClusterObject, HpcClusterStatus } from '../../../src/api/hpccluster.js';
import { cachedHpcCluster } from '../../../src/controller/cached-objects.js';
import type { ConfigMapState, StatusPatch } from '../../../src/controller/plan.js';
import { KeyBudgets } from '../../../src/budget/key-budgets.js';
import { HpcClusterReconciler, type KubePort } from '../../../src/controller/reconcile.js';
import type { ObjectKey } from '../../../src/controller/object-key.js';
import type { SecretRead } from '../../../src/controller/sync.js';
import type { SyncFailure } from '../../../src/domain/failure.js';
import type { ConfigMapManifest } from '../../../src/render/configmaps.js';
import type { ListResult, UserSource } from '../../../src/provider/user-source.js';

const KEY = { namespace: 'research', name: 'lab' };

/** A KubePort over plain maps, recording every write in order. */
class MemoryKube implements KubePort {
  readonly writes: string[] = [];
  object: HpcClusterObject | undefined = {
    apiVersion: 'hpc.shanhe.com/v1alpha1',
    kind: 'HpcCluster',
    metadata: { ...KEY, uid: 'uid-1', generation: 1 },
    spec: { clusterId: 'hpc-1', zone: 'jinan1a', credentialsSecretRef: { name: 'keys' } },
  };
  secretReads = 0;
  /** The Secret's hpc.shanhe.com/provider-rate-limit annotation, if it has one. */
  providerRateLimit: string | undefined;

  statusReads = 0;

  /** As the informer cache holds it: without status.users. */
  getHpcCluster(): HpcClusterObject | undefined {
    return this.object === undefined ? undefined : cachedHpcCluster(this.object);
  }
  readHpcClusterStatus(): Promise<HpcClusterStatus | undefined> {
    this.statusReads++;
    return Promise.resolve(this.object?.status);
  }
  getConfigMap(): ConfigMapState | undefined {
    return undefined;
  }
  readConfigMap(): Promise<ConfigMapState | undefined> {
    return Promise.resolve(undefined);
  }
  readSecret(): Promise<SecretRead> {
    this.secretReads++;
    const data = { access_key_id: 'AKID', secret_access_key: 'the-secret' };
    return Promise.resolve({ state: 'lent', data, resourceVersion: '1', ...(this.providerRateLimit === undefined ? {} : { providerRateLimit: this.providerRateLimit }) });
  }
  /** The apiserver's answer to a ConfigMap write, by name: success when none is given. */
  refuse = new Map<string, Error>();
  writeConfigMap(manifest: ConfigMapManifest): Promise<void> {
    const refused = this.refuse.get(manifest.metadata.name);
    if (refused !== undefined) return Promise.reject(refused);
    this.writes.push(`configmap ${manifest.metadata.name}`);
    return Promise.resolve();
  }
  writeStatus(_key: ObjectKey, patch: StatusPatch): Promise<void> {
    this.writes.push('status');
    // As the apiserver applies a merge patch: null removes a field.
    const merged: Record<string, unknown> = { ...this.object?.status, ...patch };
    for (const [k, v] of Object.entries(merged)) if (v === null) delete merged[k];
    if (this.object !== undefined) this.object = { ...this.object, status: merged };
    return Promise.resolve();
  }
  recordEvent(_object: HpcClusterObject, type: string, reason: string): Promise<void> {
    this.writes.push(`event ${type} ${reason}`);
    return Promise.resolve();
  }
}

function setup(answer: () => ListResult | Promise<ListResult>) {
  const kube = new MemoryKube();
  const lines: { level: number; msg: string; [field: string]: unknown }[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => lines.push(JSON.parse(line) as (typeof lines)[number]) });
  let calls = 0;
  const users: UserSource = {
    listUsers: () => {
      calls++;
      return Promise.resolve(answer());
    },
    close: () => undefined,
  };
  // A clock on a slot boundary: the next periodic sync is one whole interval away.
  const now = Date.parse('2027-01-15T08:00:00Z');
  const budget = new KeyBudgets({ now: () => now });
  const reconciler = new HpcClusterReconciler({ kube, users, budget, logger, now: () => new Date(now) });
  return { kube, lines, reconciler, budget, calls: () => calls };
}

const signal = new AbortController().signal;

/** Success, back at the resource's slot on its key: within one interval (10 m), where the key's offset puts it. */
function expectPeriodic(result: unknown): void {
  expect(result).toEqual({ outcome: 'success', requeueAfterMs: expect.any(Number) });
  const { requeueAfterMs } = result as { requeueAfterMs: number };
  expect(requeueAfterMs).toBeGreaterThan(0);
  expect(requeueAfterMs).toBeLessThanOrEqual(600_000);
}
const ann = { username: 'ann', uid: 2000, gid: 2000, role: 'member' as const, nasMountPoint: '/h/ann', userId: 'usr-ann', hpcUserId: 'h-ann' };
const auth: SyncFailure = { reason: 'AuthenticationFailed', message: 'ret_code 1200', retry: 'never' };

describe('HpcClusterReconciler', () => {
  it('writes the ConfigMaps, then status, then the event, and logs one line', async () => {
    const { kube, lines, reconciler } = setup(() => ({ listing: { users: [ann], skipped: [], pages: 1, requests: 1 } }));
    expectPeriodic(await reconciler.reconcile(KEY, signal));
    expect(kube.writes).toEqual(['configmap lab-nss', 'configmap lab-users', 'status', 'event Normal Synced']);
    expect(lines.map((l) => [l.msg, l.result, l.outcome, l.users])).toEqual([['reconciled', 'Synced', 'success', 1]]);
  });

  it('never writes Synced over a refused ConfigMap write: Ready False names it, -users stays, back-off', async () => {
    const { kube, reconciler } = setup(() => ({ listing: { users: [ann], skipped: [], pages: 1, requests: 1 } }));
    kube.refuse.set('lab-nss', new KubeApiError(422, 'Invalid', 'configmaps "lab-nss" is forbidden: denied by policy', 'PUT /api/v1/namespaces/research/configmaps/lab-nss'));
    expect(await reconciler.reconcile(KEY, signal)).toEqual({ outcome: 'error', retryAfterMs: expect.any(Number) });
    expect(kube.writes).toEqual(['status', 'event Warning ConfigMapWriteFailed']);
    expect(kube.object?.status?.conditions?.find((c) => c.type === 'Ready')).toMatchObject({
      status: 'False',
      reason: 'ConfigMapWriteFailed',
      message: 'the apiserver refused the write of ConfigMap lab-nss (HTTP 422): configmaps "lab-nss" is forbidden: denied by policy',
    });
    // What it was about to write is remembered, so that its own write's event calls for no sync.
    expect(reconciler.lastWritten({ namespace: 'research', name: 'lab-nss' })?.syncId).toMatch(/^[0-9a-f]{64}$/);
    expect(reconciler.lastWritten({ namespace: 'research', name: 'lab-users' })).toBeUndefined();
    // A conflict (a stale cache) is no refusal: thrown, and retried at once by the queue.
    kube.refuse.set('lab-nss', new KubeApiError(409, 'Conflict', 'the object has been modified', 'PUT /api/v1/namespaces/research/configmaps/lab-nss'));
    await expect(reconciler.reconcile(KEY, signal)).rejects.toThrow();
    kube.refuse.clear();
    expectPeriodic(await reconciler.reconcile(KEY, signal));
    expect(kube.object?.status?.conditions?.find((c) => c.type === 'Ready')?.reason).toBe('Synced');
  });

  it('reads status.users, which the cache leaves out, only when -users is gone: a mass removal is still held', async () => {
    const team = Array.from({ length: 10 }, (_, i) => ({ ...ann, username: `u${String(i)}`, uid: 2000 + i, userId: `usr-${String(i)}`, hpcUserId: `h-${String(i)}` }));
    let listed = team;
    const { kube, reconciler } = setup(() => ({ listing: { users: listed, skipped: [], pages: 1, requests: 1 } }));
    if (kube.object !== undefined) kube.object.spec = { ...(kube.object.spec as object), maxUserRemovalPercent: 50 };
    expect(await reconciler.reconcile(KEY, signal)).toMatchObject({ outcome: 'success' });
    expect(kube.statusReads).toBe(0);
    // This port's cache never holds the ConfigMaps: -users is gone, and status has the last good list.
    listed = team.slice(0, 3);
    await reconciler.reconcile(KEY, signal);
    expect(kube.statusReads).toBe(1);
    expect(kube.object?.status?.conditions?.find((c) => c.type === 'Ready')?.reason).toBe('RemovalHeld');
    expect(kube.object?.status?.users).toHaveLength(10);
  });

  it('logs a failure once, as a warning, and returns it instead of throwing', async () => {
    const { lines, reconciler } = setup(() => ({ failure: { reason: 'ListUsersFailed', message: 'HTTP 503', retry: 'backoff' } }));
    expect(await reconciler.reconcile(KEY, signal)).toEqual({ outcome: 'error', retryAfterMs: expect.any(Number) });
    expect(lines.map((l) => [l.msg, l.result, l.error])).toEqual([['reconcile failed', 'ListUsersFailed', 'HTTP 503']]);
    expect(lines[0]?.level).toBe(40);
  });

  it('remembers a failure retrying cannot mend: the next reconcile calls nobody and logs no failure', async () => {
    const { kube, lines, reconciler, calls } = setup(() => ({ failure: auth }));
    expect(await reconciler.reconcile(KEY, signal)).toEqual({ outcome: 'stalled' });
    const writes = kube.writes.length;
    expect(await reconciler.reconcile(KEY, signal)).toEqual({ outcome: 'stalled' });
    expect(calls()).toBe(1);
    expect(kube.writes).toHaveLength(writes);
    expect(lines.map((l) => [l.msg, l.result, l.outcome])).toEqual([
      ['reconcile failed', 'AuthenticationFailed', 'stalled'],
      ['reconciled', 'AuthenticationFailed', 'stalled'],
    ]);
  });

  it('a new process takes the memo from status: a refused key is not called again after a restart', async () => {
    const first = setup(() => ({ failure: auth }));
    await first.reconciler.reconcile(KEY, signal);
    const restarted = setup(() => ({ failure: auth }));
    restarted.kube.object = first.kube.object;
    expect(await restarted.reconciler.reconcile(KEY, signal)).toEqual({ outcome: 'stalled' });
    expect(restarted.calls()).toBe(0);
  });

  it('forgets a deleted resource, memo included', async () => {
    const { kube, reconciler, calls } = setup(() => ({ failure: auth }));
    await reconciler.reconcile(KEY, signal);
    const object = kube.object;
    kube.object = undefined;
    expect(await reconciler.reconcile(KEY, signal)).toEqual({ outcome: 'success' });
    // Created again: a new object, without the old one's status.
    kube.object = object === undefined ? undefined : { ...object, status: undefined };
    await reconciler.reconcile(KEY, signal);
    expect(calls()).toBe(2);
  });

  it("plans the key with the rate its Secret declares, and warns of a value that is none", async () => {
    const { kube, reconciler, budget } = setup(() => ({ listing: { users: [ann], skipped: [], pages: 1, requests: 1 } }));
    kube.providerRateLimit = '5000/1h';
    await reconciler.reconcile(KEY, signal);
    expect(budget.report()).toEqual([expect.objectContaining({ budgetPerHour: 4750 })]);
    kube.providerRateLimit = '5000 an hour';
    await reconciler.reconcile(KEY, signal);
    expect(budget.report()).toEqual([expect.objectContaining({ budgetPerHour: 1900 })]);
    expect(kube.writes.slice(-2)).toEqual(['status', 'event Warning InvalidProviderRateLimit']);
    expect(kube.object?.status?.conditions?.find((c) => c.type === 'Ready')?.message).toContain('annotation hpc.shanhe.com/provider-rate-limit "5000 an hour"');
  });

  it('reads no Secret for a suspended resource', async () => {
    const { kube, reconciler, calls } = setup(() => ({ failure: auth }));
    if (kube.object !== undefined) kube.object = { ...kube.object, spec: { ...(kube.object.spec as object), suspend: true } };
    expect(await reconciler.reconcile(KEY, signal)).toEqual({ outcome: 'success' });
    expect(kube.secretReads).toBe(0);
    expect(calls()).toBe(0);
  });

  it('logs and rethrows what nobody expected, once', async () => {
    const { lines, reconciler } = setup(() => Promise.reject(new Error('bug')));
    await expect(reconciler.reconcile(KEY, signal)).rejects.toThrow('bug');
    expect(lines.map((l) => [l.msg, l.error])).toEqual([['reconcile failed', 'bug']]);
  });

  it('logs an aborted run as aborted, not as a failure', async () => {
    const controller = new AbortController();
    const { lines, reconciler } = setup(() => {
      controller.abort(new Error('research/lab is reconciled again: deleted'));
      return Promise.reject(controller.signal.reason as Error);
    });
    await expect(reconciler.reconcile(KEY, controller.signal)).rejects.toThrow('deleted');
    expect(lines.map((l) => [l.msg, l.reason])).toEqual([['reconcile aborted', 'research/lab is reconciled again: deleted']]);
  });
});
