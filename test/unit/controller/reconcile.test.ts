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
import { contentsOfData } from '../../../src/controller/configmap-contents.js';
import { usersDigestOf } from '../../../src/domain/trusted-users.js';

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
  /** The ConfigMaps as the apiserver holds them, by name; the cache sees them at once, metadata only. */
  readonly configMaps = new Map<string, { resourceVersion: string; manifest: ConfigMapManifest }>();
  private version = 100;
  /** Reads of an existing ConfigMap, whole. */
  configMapReads = 0;
  /** Called while a write is in flight, before its answer: where its watch event may arrive. */
  duringWrite: ((name: string) => void) | undefined;

  /** ConfigMaps of another writer the apiserver holds and the cache has not seen yet, by name. */
  readonly unseen = new Map<string, ConfigMapState>();

  getConfigMap(key: ObjectKey): ConfigMapState | undefined {
    const cm = this.configMaps.get(key.name);
    if (cm === undefined) return undefined;
    const { labels, annotations } = cm.manifest.metadata;
    return { resourceVersion: cm.resourceVersion, labels, annotations, ownerReferences: [{ uid: 'uid-1', controller: true, kind: 'HpcCluster', name: 'lab' }] };
  }
  /** The version each read was to be no older than. */
  readsNotOlderThan: (string | undefined)[] = [];
  readConfigMap(key: ObjectKey, notOlderThan: string | undefined): Promise<ConfigMapState | undefined> {
    this.readsNotOlderThan.push(notOlderThan);
    const unseen = this.unseen.get(key.name);
    if (unseen !== undefined) return Promise.resolve(unseen);
    const cached = this.getConfigMap(key);
    // Data read: a look-up of a name not taken reads none.
    if (cached !== undefined) this.configMapReads++;
    const data = this.configMaps.get(key.name)?.manifest.data ?? {};
    return Promise.resolve(cached === undefined ? undefined : { ...cached, ...contentsOfData(data), ...(data['users.json'] === undefined ? {} : { usersJson: data['users.json'] }) });
  }
  /** Another writer (a tenant) replaces a ConfigMap's data and annotations. */
  tamper(name: string, data: Record<string, string>, annotations: Record<string, string>): void {
    const cm = this.configMaps.get(name);
    if (cm === undefined) throw new Error(`${name} does not exist`);
    const manifest = { ...cm.manifest, data, metadata: { ...cm.manifest.metadata, annotations: { ...cm.manifest.metadata.annotations, ...annotations } } };
    this.configMaps.set(name, { resourceVersion: String(++this.version), manifest });
  }
  readSecret(): Promise<SecretRead> {
    this.secretReads++;
    const data = { access_key_id: 'AKID', secret_access_key: 'the-secret' };
    return Promise.resolve({ state: 'lent', data, resourceVersion: '1', ...(this.providerRateLimit === undefined ? {} : { providerRateLimit: this.providerRateLimit }) });
  }
  /** The apiserver's answer to a ConfigMap write, by name: success when none is given. */
  refuse = new Map<string, Error>();
  /** The most ConfigMap writes in flight at once: each is answered a turn of the event loop later. */
  mostWritesAtOnce = 0;
  private writesInFlight = 0;
  async writeConfigMap(manifest: ConfigMapManifest): Promise<string> {
    this.mostWritesAtOnce = Math.max(this.mostWritesAtOnce, ++this.writesInFlight);
    await new Promise(setImmediate);
    this.writesInFlight--;
    const refused = this.refuse.get(manifest.metadata.name);
    if (refused !== undefined) throw refused;
    if (this.unseen.has(manifest.metadata.name)) {
      throw new KubeApiError(409, 'AlreadyExists', `configmaps "${manifest.metadata.name}" already exists`, 'POST /api/v1/namespaces/research/configmaps');
    }
    this.writes.push(`configmap ${manifest.metadata.name}`);
    const resourceVersion = String(++this.version);
    this.configMaps.set(manifest.metadata.name, { resourceVersion, manifest });
    this.duringWrite?.(manifest.metadata.name);
    return resourceVersion;
  }
  writeStatus(_key: ObjectKey, patch: StatusPatch): Promise<void> {
    this.writes.push('status');
    // As the apiserver applies a merge patch: null removes a field.
    const merged: Record<string, unknown> = { ...this.object?.status, ...patch };
    for (const [k, v] of Object.entries(merged)) if (v === null) delete merged[k];
    if (this.object !== undefined) this.object = { ...this.object, status: merged };
    return Promise.resolve();
  }
  /** The apiserver's answer to an event write: success when none is given. */
  refuseEvents: Error | undefined;
  recordEvent(_object: HpcClusterObject, type: string, reason: string): Promise<void> {
    if (this.refuseEvents !== undefined) return Promise.reject(this.refuseEvents);
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
const bob = { ...ann, username: 'bob', uid: 2001, userId: 'usr-bob', hpcUserId: 'h-bob' };
const auth: SyncFailure = { reason: 'AuthenticationFailed', message: 'ret_code 1200', retry: 'never' };

describe('HpcClusterReconciler', () => {
  it('writes the ConfigMaps, then status, then the event, and logs one line', async () => {
    const { kube, lines, reconciler } = setup(() => ({ listing: { users: [ann], skipped: [], pages: 1, requests: 1 } }));
    expectPeriodic(await reconciler.reconcile(KEY, signal));
    expect(kube.writes).toEqual(['configmap lab-nss', 'configmap lab-users', 'status', 'event Normal Synced']);
    expect(lines.map((l) => [l.msg, l.result, l.outcome, l.users])).toEqual([['reconciled', 'Synced', 'success', 1]]);
  });

  it('creates the two ConfigMaps side by side, and replaces them one after the other', async () => {
    let users = [ann];
    const { kube, reconciler } = setup(() => ({ listing: { users, skipped: [], pages: 1, requests: 1 } }));
    expectPeriodic(await reconciler.reconcile(KEY, signal));
    expect(kube.mostWritesAtOnce).toBe(2);
    kube.mostWritesAtOnce = 0;
    users = [ann, bob];
    expectPeriodic(await reconciler.reconcile(KEY, signal));
    expect(kube.writes.slice(-4, -1)).toEqual(['configmap lab-nss', 'configmap lab-users', 'status']);
    expect(kube.mostWritesAtOnce).toBe(1);
  });

  it('takes a name its cache does not hold for free: a first sync reads no ConfigMap', async () => {
    const { kube, reconciler } = setup(() => ({ listing: { users: [ann], skipped: [], pages: 1, requests: 1 } }));
    expectPeriodic(await reconciler.reconcile(KEY, signal));
    expect(kube.readsNotOlderThan).toEqual([]);
    expect(kube.writes).toEqual(['configmap lab-nss', 'configmap lab-users', 'status', 'event Normal Synced']);
  });

  it('reads a name a create found taken before its cache saw it: ConfigMapConflict, and no second provider call', async () => {
    const { kube, reconciler, calls } = setup(() => ({ listing: { users: [ann], skipped: [], pages: 1, requests: 1 } }));
    kube.object = { ...kube.object!, metadata: { ...kube.object!.metadata, resourceVersion: '42' } };
    // Another's, created a moment before the HpcCluster: its watch event is still on its way.
    kube.unseen.set('lab-users', { resourceVersion: '41', labels: undefined, annotations: undefined, ownerReferences: [] });
    await expect(reconciler.reconcile(KEY, signal)).rejects.toMatchObject({ code: 409 });
    expect(calls()).toBe(1);
    // Created side by side, -nss went in: the HpcCluster controls it.
    expect(kube.writes).toEqual(['configmap lab-nss']);

    expect(await reconciler.reconcile(KEY, signal)).toMatchObject({ outcome: 'requeue_after' });
    expect(calls()).toBe(1);
    const ready = kube.object?.status?.conditions?.find((c) => c.type === 'Ready');
    expect(ready).toMatchObject({ status: 'False', reason: 'ConfigMapConflict' });
    expect(ready?.message).toContain('ConfigMap lab-users already exists and was not written by this operator');
    // At its latest version, from etcd: not older than another resource's version, the apiserver
    // would wait for its ConfigMap cache to catch up.
    expect(kube.readsNotOlderThan).toEqual([undefined]);
  });

  it('keeps a sync whose event the apiserver refuses: logged, not redone', async () => {
    const { kube, lines, reconciler, calls } = setup(() => ({ listing: { users: [ann], skipped: [], pages: 1, requests: 1 } }));
    kube.refuseEvents = new KubeApiError(403, 'Forbidden', 'unable to create new content in namespace research because it is being terminated', 'POST /api/v1/namespaces/research/events');
    expectPeriodic(await reconciler.reconcile(KEY, signal));
    expect(kube.writes).toEqual(['configmap lab-nss', 'configmap lab-users', 'status']);
    expect(kube.object?.status?.conditions?.find((c) => c.type === 'Ready')?.reason).toBe('Synced');
    expect(lines.map((l) => [l.level, l.msg, l.reason])).toEqual([
      [40, 'could not record an event', 'Synced'],
      [30, 'reconciled', undefined],
    ]);
    expect(calls()).toBe(1);
  });

  it('never writes Synced over a refused ConfigMap write: Ready False names it, -users stays, back-off', async () => {
    let users = [ann];
    const { kube, reconciler } = setup(() => ({ listing: { users, skipped: [], pages: 1, requests: 1 } }));
    expectPeriodic(await reconciler.reconcile(KEY, signal));
    const before = { ...kube.configMaps.get('lab-users') };
    kube.writes.length = 0;
    users = [ann, bob];
    kube.refuse.set('lab-nss', new KubeApiError(422, 'Invalid', 'configmaps "lab-nss" is forbidden: denied by policy', 'PUT /api/v1/namespaces/research/configmaps/lab-nss'));
    expect(await reconciler.reconcile(KEY, signal)).toEqual({ outcome: 'error', retryAfterMs: expect.any(Number) });
    expect(kube.writes).toEqual(['status', 'event Warning ConfigMapWriteFailed']);
    expect(kube.configMaps.get('lab-users')).toEqual(before);
    expect(kube.object?.status?.conditions?.find((c) => c.type === 'Ready')).toMatchObject({
      status: 'False',
      reason: 'ConfigMapWriteFailed',
      message: 'the apiserver refused the write of ConfigMap lab-nss (HTTP 422): configmaps "lab-nss" is forbidden: denied by policy',
    });
    expect(kube.object?.status?.userCount).toBe(1);
    // A conflict (a stale cache) is no refusal: thrown, and retried at once by the queue.
    kube.refuse.set('lab-nss', new KubeApiError(409, 'Conflict', 'the object has been modified', 'PUT /api/v1/namespaces/research/configmaps/lab-nss'));
    await expect(reconciler.reconcile(KEY, signal)).rejects.toThrow();
    kube.refuse.clear();
    expectPeriodic(await reconciler.reconcile(KEY, signal));
    expect(kube.object?.status?.conditions?.find((c) => c.type === 'Ready')?.reason).toBe('Synced');
    expect(kube.object?.status?.configMapVersions).toEqual({ nss: kube.configMaps.get('lab-nss')?.resourceVersion, users: kube.configMaps.get('lab-users')?.resourceVersion });
    expect(kube.object?.status?.userCount).toBe(2);
  });

  it('on a first sync, a refused -nss create leaves the -users created beside it, which status records but does not vouch for', async () => {
    const { kube, reconciler } = setup(() => ({ listing: { users: [ann], skipped: [], pages: 1, requests: 1 } }));
    kube.refuse.set('lab-nss', new KubeApiError(422, 'Invalid', 'configmaps "lab-nss" is forbidden: denied by policy', 'POST /api/v1/namespaces/research/configmaps'));
    expect(await reconciler.reconcile(KEY, signal)).toEqual({ outcome: 'error', retryAfterMs: expect.any(Number) });
    expect(kube.writes).toEqual(['configmap lab-users', 'status', 'event Warning ConfigMapWriteFailed']);
    expect(kube.object?.status?.conditions?.find((c) => c.type === 'Ready')?.reason).toBe('ConfigMapWriteFailed');
    expect(kube.object?.status?.configMapVersions).toEqual({ users: kube.configMaps.get('lab-users')?.resourceVersion });
    expect(kube.object?.status?.usersDigest).toBeUndefined();
    // The next sync creates -nss alone: -users already holds the list.
    kube.refuse.clear();
    kube.writes.length = 0;
    expectPeriodic(await reconciler.reconcile(KEY, signal));
    expect(kube.writes).toEqual(['configmap lab-nss', 'status', 'event Normal Synced']);
    expect(kube.object?.status?.conditions?.find((c) => c.type === 'Ready')?.reason).toBe('Synced');
  });

  it('reads no ConfigMap data while it knows what they hold, also after a restart: status records the versions it wrote', async () => {
    const answer = (): ListResult => ({ listing: { users: [ann], skipped: [], pages: 1, requests: 1 } });
    const first = setup(answer);
    await first.reconciler.reconcile(KEY, signal);
    await first.reconciler.reconcile(KEY, signal);
    const restarted = setup(answer);
    restarted.kube.object = first.kube.object;
    for (const [name, cm] of first.kube.configMaps) restarted.kube.configMaps.set(name, cm);
    expectPeriodic(await restarted.reconciler.reconcile(KEY, signal));
    expect([first.kube.configMapReads, restarted.kube.configMapReads, restarted.kube.writes]).toEqual([0, 0, []]);
    expect(restarted.reconciler.knownConfigMaps({ ...restarted.kube.object!, metadata: { ...restarted.kube.object!.metadata, ...KEY } }).users?.dataHash).toBeDefined();
  });

  it('reads a version nobody vouches for, repairs a forged one, and records the repaired version', async () => {
    const { kube, reconciler, calls } = setup(() => ({ listing: { users: [ann], skipped: [], pages: 1, requests: 1 } }));
    await reconciler.reconcile(KEY, signal);
    const written = kube.object?.status?.configMapVersions?.users;
    // A tenant forges users.json and makes the annotations match it.
    const forged = { 'users.json': '[{"username":"ann","uid":0}]\n' };
    kube.tamper('lab-users', forged, { 'hpc.shanhe.com/content-hash': contentsOfData(forged).dataHash, 'hpc.shanhe.com/sync-id': usersDigestOf(forged['users.json']) });
    const cm = { metadata: { name: 'lab-users', namespace: KEY.namespace, resourceVersion: kube.configMaps.get('lab-users')?.resourceVersion, ownerReferences: [] } };
    kube.readsNotOlderThan.length = 0;
    expect(await reconciler.configMapCallsForSync(cm, KEY)).toBe(true);
    expect(kube.configMapReads).toBe(1);
    // Read no older than the version the event showed: the apiserver answers from its watch cache.
    expect(kube.readsNotOlderThan).toEqual([cm.metadata.resourceVersion]);
    kube.writes.length = 0;
    await reconciler.reconcile(KEY, signal);
    expect(calls()).toBe(2);
    expect(kube.writes).toEqual(['configmap lab-users', 'status']);
    expect(kube.object?.status?.configMapVersions?.users).not.toBe(written);
    expect(kube.configMaps.get('lab-users')?.manifest.data['users.json']).toContain('"uid": 2000');
    // Its own write calls for nothing, and neither does an edit that leaves the data as written (a label).
    const now = kube.configMaps.get('lab-users');
    expect(reconciler.configMapCallsForSync({ ...cm, metadata: { ...cm.metadata, resourceVersion: now?.resourceVersion } }, KEY)).toBe(false);
    kube.tamper('lab-users', now?.manifest.data ?? {}, {});
    const relabelled = kube.configMaps.get('lab-users')?.resourceVersion;
    expect(await reconciler.configMapCallsForSync({ ...cm, metadata: { ...cm.metadata, resourceVersion: relabelled } }, KEY)).toBe(false);
    // The next sync records that version, found unedited, so that a restart need not read it.
    kube.writes.length = 0;
    await reconciler.reconcile(KEY, signal);
    expect(kube.writes).toEqual(['status']);
    expect(kube.object?.status?.configMapVersions?.users).toBe(relabelled);
  });

  it("weighs its own write's watch event by the write's answer when the event comes first", async () => {
    const { kube, reconciler } = setup(() => ({ listing: { users: [ann], skipped: [], pages: 1, requests: 1 } }));
    const verdicts: Promise<boolean>[] = [];
    kube.duringWrite = (name) => {
      const cm = kube.configMaps.get(name);
      const metadata = { name, namespace: KEY.namespace, resourceVersion: cm?.resourceVersion, annotations: cm?.manifest.metadata.annotations, ownerReferences: [] };
      const verdict = reconciler.configMapCallsForSync({ metadata }, KEY);
      if (verdict instanceof Promise) verdicts.push(verdict);
    };
    await reconciler.reconcile(KEY, signal);
    // Both events came before the answers: each waited for its write's.
    expect(verdicts).toHaveLength(2);
    expect(await Promise.all(verdicts)).toEqual([false, false]);
    expect(kube.configMapReads).toBe(0);
  });

  it('reads status.users, which the cache leaves out, only when -users is gone: a mass removal is still held', async () => {
    const team = Array.from({ length: 10 }, (_, i) => ({ ...ann, username: `u${String(i)}`, uid: 2000 + i, userId: `usr-${String(i)}`, hpcUserId: `h-${String(i)}` }));
    let listed = team;
    const { kube, reconciler } = setup(() => ({ listing: { users: listed, skipped: [], pages: 1, requests: 1 } }));
    if (kube.object !== undefined) kube.object.spec = { ...(kube.object.spec as object), maxUserRemovalPercent: 50 };
    expect(await reconciler.reconcile(KEY, signal)).toMatchObject({ outcome: 'success' });
    expect(kube.statusReads).toBe(0);
    // -users is gone, and status has the last good list.
    kube.configMaps.delete('lab-users');
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
