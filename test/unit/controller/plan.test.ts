// The reconcile's decisions, path by path, without Kubernetes or a provider: each test gives
// the plan what the reconciler would have read and checks what it would write.
import { describe, expect, it } from '@jest/globals';
import type { HpcClusterObject, HpcClusterStatus } from '../../../src/api/hpccluster.js';
import type { SyncFailure } from '../../../src/domain/failure.js';
import type { HpcUser } from '../../../src/domain/user.js';
import {
  backoffLeftMs,
  configMapsInStep,
  credentialsSecretOf,
  planDeferred,
  planWriteRefused,
  rememberedFailure,
  statusPatch,
  planListing,
  planSync,
  previousUsersUnread,
  recordConfigMapVersions,
  renderAnswer,
  type ConfigMapState,
  type ListingRequest,
  type Plan,
  type PlanInput,
  type SyncSchedule,
} from '../../../src/controller/plan.js';
import { CONTENT_HASH_ANNOTATION, SYNC_ID_ANNOTATION, USERS_JSON_KEY, type ConfigMapManifest } from '../../../src/render/configmaps.js';
import type { ListResult } from '../../../src/provider/user-source.js';
import { contentsOfData } from '../../../src/controller/configmap-contents.js';
import { usersDigestOf } from '../../../src/domain/trusted-users.js';
import type { SecretRead } from '../../../src/controller/sync.js';

const NOW = new Date('2026-03-01T12:00:00Z');
const KEYS = { access_key_id: 'AKID', secret_access_key: 'the-secret' };
const SECRET: SecretRead = { state: 'lent', data: KEYS, resourceVersion: '1' };
const UID = 'uid-1';

const user = (username: string, uid: number): HpcUser => ({
  username,
  uid,
  gid: uid,
  role: 'member',
  nasMountPoint: `/public/${username}`,
  userId: `usr-${username}`,
  hpcUserId: `hpcuser-${username}`,
});
const team = (count: number): HpcUser[] => Array.from({ length: count }, (_, i) => user(`u${String(i).padStart(3, '0')}`, 2000 + i));

function object(spec: Record<string, unknown> = {}, meta: Partial<HpcClusterObject['metadata']> = {}, status?: HpcClusterStatus): PlanInput['object'] {
  return {
    apiVersion: 'hpc.shanhe.com/v1alpha1',
    kind: 'HpcCluster',
    metadata: { name: 'lab', namespace: 'research', uid: UID, generation: 1, ...meta },
    spec: { clusterId: 'hpc-1', zone: 'jinan1a', credentialsSecretRef: { name: 'keys' }, syncInterval: '10m', ...spec },
    ...(status === undefined ? {} : { status }),
  };
}

function input(over: Partial<PlanInput> = {}): PlanInput {
  return { object: object(), secret: SECRET, configMaps: {}, memo: undefined, now: NOW, ...over };
}

const listed = (users: HpcUser[], skipped: { username: string; reason: string }[] = []): ListResult => ({
  listing: { users, skipped, pages: 1, requests: 1 },
});
const failed = (failure: SyncFailure): ListResult => ({ failure });

function request(of: PlanInput): ListingRequest {
  const first = planListing(of);
  if (!('request' in first)) throw new Error(`expected a provider request, got a plan for ${first.plan.reason}`);
  return first.request;
}

/** Both steps, as the reconciler runs them; the key's budget says: next sync in 10 minutes. */
function plan(of: PlanInput, answer: ListResult, schedule: SyncSchedule = { nextSyncMs: 600_000 }): Plan {
  const asked = request(of);
  return planSync(of, asked, renderAnswer(of, asked, answer), schedule);
}

function settled(of: PlanInput): Plan {
  const first = planListing(of);
  if (!('plan' in first)) throw new Error('expected the reconcile to settle without the provider');
  return first.plan;
}

/** The cached state of a ConfigMap the operator wrote from `manifest`. */
function cachedFrom(manifest: ConfigMapManifest): ConfigMapState {
  return {
    resourceVersion: '7',
    ...contentsOfData(manifest.data),
    ...(manifest.data[USERS_JSON_KEY] === undefined ? {} : { usersJson: manifest.data[USERS_JSON_KEY] }),
    labels: manifest.metadata.labels,
    annotations: manifest.metadata.annotations,
    ownerReferences: [{ uid: UID, controller: true }],
  };
}

/** The state after a first sync of `users`: the object's status and both cached ConfigMaps. */
function afterFirstSync(users: HpcUser[], spec: Record<string, unknown> = {}): PlanInput {
  const first = plan(input({ object: object(spec) }), listed(users));
  const cached = (name: string) => {
    const write = first.configMapWrites.find((w) => w.manifest.metadata.name === name);
    if (write === undefined) throw new Error(`${name} not written`);
    return cachedFrom(write.manifest);
  };
  const [usersCm, nssCm] = [cached('lab-users'), cached('lab-nss')];
  return input({ object: object(spec, {}, first.status), configMaps: { users: usersCm, nss: nssCm } });
}

const ready = (p: Plan) => p.status?.conditions?.find((c) => c.type === 'Ready');
const conditionStatus = (p: Plan, type: string) => p.status?.conditions?.find((c) => c.type === type)?.status;

describe('planListing', () => {
  it('asks the provider for the spec’s cluster with the Secret’s keys', () => {
    expect(request(input({ object: object({ filter: { userId: 'usr-1' } }) }))).toMatchObject({
      target: { endpoint: 'https://hpc.api.shanhe.com', zone: 'jinan1a', clusterId: 'hpc-1', userId: 'usr-1', allowInsecureHttp: false },
      credentials: { accessKeyId: 'AKID', secretAccessKey: 'the-secret' },
    });
  });

  it('names the Secret to read only for a spec it can serve and is not suspended', () => {
    expect(credentialsSecretOf(object())).toBe('keys');
    expect(credentialsSecretOf(object({ suspend: true }))).toBeUndefined();
    expect(credentialsSecretOf(object({ zone: undefined }))).toBeUndefined();
  });

  it('stalls an invalid spec with InvalidSpec, saying what to fix, and writes no ConfigMap', () => {
    const p = settled(input({ object: object({ zone: undefined }) }));
    expect(ready(p)).toMatchObject({ status: 'False', reason: 'InvalidSpec' });
    expect(ready(p)?.message).toMatch(/^Invalid spec, fix: spec\.zone/);
    expect(conditionStatus(p, 'Stalled')).toBe('True');
    expect(p.configMapWrites).toEqual([]);
    expect(p.result).toEqual({ outcome: 'stalled' });
    expect(p.events).toEqual([{ type: 'Warning', reason: 'InvalidSpec', message: ready(p)?.message }]);
  });

  it('stalls a name too long to label the ConfigMaps with InvalidSpec', () => {
    const p = settled(input({ object: object({}, { name: `a${'b'.repeat(63)}` }) }));
    expect(ready(p)).toMatchObject({ reason: 'InvalidSpec', message: 'metadata.name must be at most 63 characters: it labels the ConfigMaps' });
    expect(p.result).toEqual({ outcome: 'stalled' });
  });

  it('reports a suspended resource Ready without a provider call or ConfigMap write', () => {
    const p = settled(input({ object: object({ suspend: true }), secret: undefined }));
    expect(ready(p)).toMatchObject({ status: 'True', reason: 'Suspended' });
    expect(p.configMapWrites).toEqual([]);
    expect(p.result).toEqual({ outcome: 'success' });
    expect(p.failure).toBeUndefined();
  });

  it('stalls on a Secret not lent to the operator, naming the label to add', () => {
    const p = settled(input({ secret: { state: 'not-lent' } }));
    expect(ready(p)).toMatchObject({ status: 'False', reason: 'CredentialsNotFound' });
    expect(ready(p)?.message).toContain('kubectl label secret keys hpc.shanhe.com/credentials=true');
    expect(conditionStatus(p, 'Stalled')).toBe('True');
  });

  it('stalls a missing Secret or key with CredentialsNotFound, naming what to create', () => {
    const missing = settled(input({ secret: { state: 'missing' } }));
    expect(ready(missing)).toMatchObject({
      reason: 'CredentialsNotFound',
      message: 'Secret keys not found in this namespace; create it with keys access_key_id and secret_access_key and the label hpc.shanhe.com/credentials: "true"',
    });
    expect(conditionStatus(missing, 'Stalled')).toBe('True');
    const empty = settled(input({ secret: { state: 'lent', data: { access_key_id: 'AKID', secret_access_key: ' ' }, resourceVersion: '1' } }));
    expect(ready(empty)?.message).toBe('Secret keys has no non-empty key secret_access_key');
    expect(JSON.stringify(empty)).not.toContain('AKID');
  });
});

describe('a ConfigMap name taken by another', () => {
  const theirs = (over: Partial<ConfigMapState>): ConfigMapState => ({ resourceVersion: '3', dataHash: 'sha256:x', ...over });

  it('settles a name held by a ConfigMap the operator did not write with ConfigMapConflict, asking no provider', () => {
    const p = settled(input({ configMaps: { users: theirs({ labels: { app: 'other' } }) } }));
    expect(ready(p)).toMatchObject({ status: 'False', reason: 'ConfigMapConflict' });
    expect(ready(p)?.message).toBe(
      'ConfigMap lab-users already exists and was not written by this operator, which never overwrites it: rename this HpcCluster, or remove that ConfigMap',
    );
    expect(p.configMapWrites).toEqual([]);
    // Not remembered: it is looked at again each interval, from the cluster alone.
    expect(p.result).toEqual({ outcome: 'requeue_after', requeueAfterMs: 600_000 });
    expect(p.memo).toBeUndefined();
    expect(p.events).toEqual([{ type: 'Warning', reason: 'ConfigMapConflict', message: ready(p)?.message }]);
  });

  it('never adopts a ConfigMap labelled as ours that another controller owns', () => {
    const labels = { 'app.kubernetes.io/managed-by': 'hpc-user-operator', 'hpc.shanhe.com/cluster': 'lab' };
    const p = settled(input({ configMaps: { nss: theirs({ labels, ownerReferences: [{ uid: 'uid-other', controller: true, kind: 'Deployment', name: 'web' }] }) } }));
    expect(ready(p)?.message).toBe(
      'ConfigMap lab-nss is controlled by Deployment web, and the operator never takes over another owner\'s object: rename this HpcCluster, or remove that ConfigMap',
    );
  });

  it('writes its own ConfigMaps and an orphan of its own labels', () => {
    const labels = { 'app.kubernetes.io/managed-by': 'hpc-user-operator', 'hpc.shanhe.com/cluster': 'lab' };
    expect(request(input({ configMaps: { users: theirs({ labels }) } }))).toBeDefined();
    expect(request(input({ configMaps: { users: theirs({ ownerReferences: [{ uid: UID, controller: true }] }) } }))).toBeDefined();
    // Another HpcCluster's orphan is not ours.
    expect(settled(input({ configMaps: { users: theirs({ labels: { ...labels, 'hpc.shanhe.com/cluster': 'other' } }) } })).reason).toBe('ConfigMapConflict');
  });
});

describe('planSync', () => {
  it('syncs a first listing: both ConfigMaps created, status Synced, one Synced event, back at the interval', () => {
    const p = plan(input(), listed([user('bob', 2001), user('ann', 2000)], [{ username: 'x:y', reason: 'bad' }]));
    expect(p.configMapWrites.map((w) => [w.manifest.metadata.name, w.existing])).toEqual([
      ['lab-nss', undefined],
      ['lab-users', undefined],
    ]);
    // No -users yet, so no list in it that admission trusts: the two creates need no order.
    expect(p.configMapWritesTogether).toBe(true);
    expect(p.configMapWrites[0]?.manifest.metadata.ownerReferences?.[0]).toMatchObject({ uid: UID, controller: true });
    expect(ready(p)).toMatchObject({ status: 'True', reason: 'Synced', message: '2 users synced, 1 skipped (see status.skippedUsers)' });
    expect(p.status).toMatchObject({ userCount: 2, skippedUserCount: 1, configMaps: ['lab-users', 'lab-nss'] });
    expect(p.events).toEqual([{ type: 'Normal', reason: 'Synced', message: '2 users synced' }]);
    expect(p.result).toEqual({ outcome: 'success', requeueAfterMs: 600_000 });
    expect(p.synced).toEqual({ users: 2, pages: 1 });
    expect(p.failure).toBeUndefined();
  });

  it("comes back at the slot the key's budget gives, and says when it stretched the interval, once", () => {
    const stretched = { nextSyncMs: 840_000, stretchedInterval: '15m', stretchedBecause: 'access key abc serves 40 resources' };
    const first = plan(input(), listed([user('ann', 2000)]), stretched);
    expect(first.result).toEqual({ outcome: 'success', requeueAfterMs: 840_000 });
    expect(first.status?.effectiveSyncInterval).toBe('15m');
    expect(first.events).toContainEqual({
      type: 'Warning',
      reason: 'SyncIntervalStretched',
      message: 'syncing every 15m instead of spec.syncInterval 10m: access key abc serves 40 resources',
    });
    const synced = input({ object: object({}, {}, first.status) });
    expect(plan(synced, listed([user('ann', 2000)]), stretched).events).toEqual([]);
    const restored = plan(synced, listed([user('ann', 2000)]));
    expect(restored.status?.effectiveSyncInterval).toBeUndefined();
    expect(restored.events).toEqual([{ type: 'Normal', reason: 'SyncIntervalRestored', message: 'spec.syncInterval (10m) applies again' }]);
  });

  it("says in Ready, and once by a Warning, that the Secret's declared rate is ignored", () => {
    const rateProblem = 'Secret keys: annotation hpc.shanhe.com/provider-rate-limit "lots" is not calls per duration';
    const first = plan(input(), listed([user('ann', 2000)]), { nextSyncMs: 600_000, rateProblem });
    expect(ready(first)).toMatchObject({ status: 'True', reason: 'Synced', message: `1 user synced; ${rateProblem}` });
    expect(first.events).toContainEqual({ type: 'Warning', reason: 'InvalidProviderRateLimit', message: rateProblem });
    const again = plan(input({ object: object({}, {}, first.status) }), listed([user('ann', 2000)]), { nextSyncMs: 600_000, rateProblem });
    expect(again.status).toBeUndefined();
    expect(again.events).toEqual([]);
    const fixed = plan(input({ object: object({}, {}, first.status) }), listed([user('ann', 2000)]));
    expect(ready(fixed)?.message).toBe('1 user synced');
    expect(fixed.events).toEqual([]);
  });

  it('puts off a sync its key cannot pay for: a synced resource keeps its status, a new one says why', () => {
    const synced = input({ object: object({}, {}, plan(input(), listed([user('ann', 2000)])).status) });
    expect(planDeferred(synced, 'no calls left', 5_000, { nextSyncMs: 600_000 })).toMatchObject({
      status: undefined,
      events: [],
      result: { outcome: 'requeue_after', requeueAfterMs: 5_000 },
      reason: 'Deferred',
    });
    const fresh = planDeferred(input(), 'no calls left', 5_000, { nextSyncMs: 600_000 });
    expect(fresh.result).toEqual({ outcome: 'requeue_after', requeueAfterMs: 5_000 });
    expect(ready(fresh)).toMatchObject({ status: 'False', reason: 'QuotaExceeded', message: 'no calls left' });
  });

  it('writes nothing when nothing changed upstream', () => {
    const before = afterFirstSync(team(3));
    const p = plan(before, listed(team(3)));
    expect(p.configMapWrites).toEqual([]);
    expect(p.status).toBeUndefined();
    expect(p.events).toEqual([]);
    expect(p.result).toEqual({ outcome: 'success', requeueAfterMs: 600_000 });
  });

  it('replaces both ConfigMaps at their resourceVersion and announces what changed', () => {
    const before = afterFirstSync(team(3));
    const p = plan(before, listed([...team(2), user('zed', 3000)]));
    expect(p.configMapWrites.map((w) => [w.manifest.metadata.name, w.existing?.resourceVersion])).toEqual([
      ['lab-nss', '7'],
      ['lab-users', '7'],
    ]);
    // -nss first: -users, which admission trusts, changes only once its companion is written.
    expect(p.configMapWritesTogether).toBeUndefined();
    expect(p.events).toEqual([{ type: 'Normal', reason: 'UsersChanged', message: 'Users changed: 1 added (zed), 1 removed (u002)' }]);
    expect(p.status?.userCount).toBe(3);
  });

  it('repairs drift: an edited ConfigMap is rewritten, a deleted one recreated, the other left alone', () => {
    const before = afterFirstSync(team(2));
    const edited = plan({ ...before, configMaps: { ...before.configMaps, users: { ...before.configMaps.users, dataHash: 'sha256:edited' } } }, listed(team(2)));
    expect(edited.configMapWrites.map((w) => w.manifest.metadata.name)).toEqual(['lab-users']);
    const deleted = plan({ ...before, configMaps: { users: before.configMaps.users } }, listed(team(2)));
    expect(deleted.configMapWrites.map((w) => [w.manifest.metadata.name, w.existing])).toEqual([['lab-nss', undefined]]);
    // -nss recreated while -users stands: still in order.
    const both = plan({ ...before, configMaps: { users: { ...before.configMaps.users, dataHash: 'sha256:edited' } } }, listed(team(2)));
    expect([both.configMapWrites.map((w) => w.manifest.metadata.name), both.configMapWritesTogether]).toEqual([['lab-nss', 'lab-users'], undefined]);
    // Repairing is no news about users.
    expect([...edited.events, ...deleted.events]).toEqual([]);
  });

  it('selects users by idRange and roles, reporting those outside idRange', () => {
    const p = plan(input({ object: object({ idRange: { min: 2000, max: 2001 }, filter: { roles: ['admin'] } }) }), listed([{ ...user('ann', 2000), role: 'admin' }, user('ben', 2001), user('cat', 2002)]));
    expect(p.status?.users?.map((u) => u.username)).toEqual(['ann']);
    expect(p.status?.skippedUsers).toEqual([{ username: 'cat', reason: 'uid 2002 is outside idRange 2000-2001' }]);
  });

  it.each<[string, SyncFailure, Plan['result'], boolean]>([
    ['a transient provider failure', { reason: 'ListUsersFailed', message: 'HTTP 503', retry: 'backoff' }, { outcome: 'error', retryAfterMs: expect.any(Number) as unknown as number }, false],
    ['a spent quota', { reason: 'QuotaExceeded', message: 'ret_code 2500', retry: { afterMs: 900_000 } }, { outcome: 'requeue_after', requeueAfterMs: 900_000 }, false],
    ['bad credentials', { reason: 'AuthenticationFailed', message: 'ret_code 1200; check the access key', retry: 'never' }, { outcome: 'stalled' }, true],
    ['an unknown cluster (ret_code 2100)', { reason: 'ListUsersFailed', message: 'ret_code 2100', retry: 'never' }, { outcome: 'stalled' }, true],
  ])('on %s keeps the ConfigMaps and the last good users, warns once, and comes back as the policy says', (_name, failure, result, stalled) => {
    const before = afterFirstSync(team(3));
    const p = plan(before, failed(failure));
    expect(p.configMapWrites).toEqual([]);
    expect(ready(p)).toMatchObject({ status: 'False', reason: failure.reason, message: failure.message });
    expect(p.status?.users).toEqual(before.object.status?.users);
    expect(conditionStatus(p, 'Stalled')).toBe(stalled ? 'True' : 'False');
    expect(p.events).toEqual([{ type: 'Warning', reason: failure.reason, message: failure.message }]);
    expect(p.result).toEqual(result);
    expect(p.failure).toEqual(failure);
    expect(p.memo !== undefined).toBe(stalled);
    // The same failure again is no news: no second event.
    const again = plan({ ...before, object: { ...before.object, status: p.status } }, failed(failure));
    expect(again.events).toEqual([]);
  });

  it('holds a removal above maxUserRemovalPercent, writing nothing, until the next periodic sync', () => {
    const before = afterFirstSync(team(10));
    const p = plan(before, listed(team(3)));
    expect(p.configMapWrites).toEqual([]);
    expect(ready(p)).toMatchObject({ reason: 'RemovalHeld' });
    expect(ready(p)?.message).toContain('remove 7 of 10 users, more than maxUserRemovalPercent 50%');
    expect(p.result).toEqual({ outcome: 'requeue_after', requeueAfterMs: 600_000 });
    expect(conditionStatus(p, 'Stalled')).toBe('False');
    const allowed = plan({ ...before, object: object({ maxUserRemovalPercent: 100 }, { generation: 2 }, before.object.status) }, listed(team(3)));
    expect(ready(allowed)?.reason).toBe('Synced');
    expect(allowed.configMapWrites).toHaveLength(2);
  });

  it("reads -users' users.json only when the list changed, and decides from the digest when it did not", () => {
    const before = afterFirstSync(team(10));
    // As a vouched version is known: its digest, not its text.
    const vouched = { ...before.configMaps.users };
    delete vouched.usersJson;
    const known = { ...before, configMaps: { ...before.configMaps, users: vouched } };
    const asked = request(known);
    const same = renderAnswer(known, asked, listed(team(10)));
    expect(previousUsersUnread(known, same)).toBe(false);
    const unchanged = planSync(known, asked, same, { nextSyncMs: 600_000 });
    expect([unchanged.configMapWrites, unchanged.events, unchanged.status]).toEqual([[], [], undefined]);
    const fewer = renderAnswer(known, asked, listed(team(3)));
    expect(previousUsersUnread(known, fewer)).toBe(true);
    // Once read, the removal is measured against it.
    expect(previousUsersUnread(before, fewer)).toBe(false);
    expect(ready(planSync(before, asked, fewer, { nextSyncMs: 600_000 }))?.reason).toBe('RemovalHeld');
    // A -users that is not the owner's own is never read for the list: status stands in.
    const foreign = { ...known, configMaps: { ...known.configMaps, users: { ...vouched, ownerReferences: [{ uid: 'uid-2', controller: true }] } } };
    expect(previousUsersUnread(foreign, fewer)).toBe(false);
    expect(previousUsersUnread(known, renderAnswer(known, asked, failed({ reason: 'ListUsersFailed', message: 'HTTP 503', retry: 'backoff' })))).toBe(false);
  });

  it("reuses this process's earlier render of the same list: no data rendered, nothing written, and still repairs drift", () => {
    const before = afterFirstSync(team(3));
    const asked = request(before);
    const earlier = renderAnswer(before, asked, listed(team(3)));
    if (!('desired' in earlier)) throw new Error('no listing');
    const again = renderAnswer(before, asked, listed(team(3)), earlier.desired.configMaps);
    if (!('desired' in again)) throw new Error('no listing');
    expect(again.desired.rendered).toBeUndefined();
    expect(again.desired.configMaps).toEqual(earlier.desired.configMaps);
    expect(planSync(before, asked, again, { nextSyncMs: 600_000 }).configMapWrites).toEqual([]);
    // -nss edited meanwhile: its data is rendered for the write, exactly as a fresh render gives it.
    const edited = { ...before, configMaps: { ...before.configMaps, nss: { ...before.configMaps.nss, dataHash: 'sha256:edited' } } };
    const repair = planSync(edited, asked, again, { nextSyncMs: 600_000 }).configMapWrites;
    expect(repair.map((w) => w.manifest)).toEqual(plan(edited, listed(team(3))).configMapWrites.map((w) => w.manifest));
    expect(repair.map((w) => w.manifest.metadata.name)).toEqual(['lab-nss']);
    // Another list is rendered afresh.
    const changed = renderAnswer(before, asked, listed(team(4)), earlier.desired.configMaps);
    expect('desired' in changed && changed.desired.rendered !== undefined).toBe(true);
  });

  it('holds a removal measured against status when users.json is gone', () => {
    const before = afterFirstSync(team(10));
    expect(ready(plan({ ...before, configMaps: {} }, listed(team(3))))?.reason).toBe('RemovalHeld');
  });

  it('refuses a user list too large for a ConfigMap, writing nothing', () => {
    const huge = team(4000).map((u) => ({ ...u, nasMountPoint: `/public/${'x'.repeat(200)}/${u.username}` }));
    const p = plan(input(), listed(huge));
    expect(p.configMapWrites).toEqual([]);
    expect(ready(p)?.reason).toBe('ConfigMapTooLarge');
    expect(ready(p)?.message).toMatch(/^ConfigMap lab-users would hold \d+ bytes/);
    expect(p.result).toEqual({ outcome: 'requeue_after', requeueAfterMs: 600_000 });
  });
});

describe('the memo of a failure retrying cannot mend', () => {
  const stalledBy = (failure: SyncFailure) => {
    const before = afterFirstSync(team(2));
    const p = plan(before, failed(failure));
    return { ...before, object: { ...before.object, status: p.status }, memo: p.memo };
  };
  const auth: SyncFailure = { reason: 'AuthenticationFailed', message: 'ret_code 1200', retry: 'never' };

  it('settles without the provider, writing nothing and warning nothing, while nothing changed', () => {
    const p = settled(stalledBy(auth));
    expect(p).toMatchObject({ configMapWrites: [], status: undefined, events: [], result: { outcome: 'stalled' }, reason: 'AuthenticationFailed' });
    expect(p.failure).toBeUndefined();
    expect(p.memo).toBeDefined();
  });

  it('asks the provider again after a new generation, a changed Secret or a sync request', () => {
    const stalled = stalledBy(auth);
    const meta = stalled.object.metadata;
    expect(request({ ...stalled, object: { ...stalled.object, metadata: { ...meta, generation: 2 } } })).toBeDefined();
    expect(request({ ...stalled, secret: { state: 'lent', data: { ...KEYS, secret_access_key: 'rotated' }, resourceVersion: '2' } })).toBeDefined();
    expect(request({ ...stalled, object: { ...stalled.object, metadata: { ...meta, annotations: { 'hpc.shanhe.com/sync-requested': '1' } } } })).toBeDefined();
  });

  it('is forgotten by a sync and not kept by a failure that may be retried', () => {
    const stalled = stalledBy(auth);
    const next = { ...stalled, object: { ...stalled.object, metadata: { ...stalled.object.metadata, generation: 2 } } };
    expect(plan(next, listed(team(2))).memo).toBeUndefined();
    expect(plan(next, failed({ reason: 'ListUsersFailed', message: 'HTTP 503', retry: 'backoff' })).memo).toBeUndefined();
  });
});

describe('one sync across both ConfigMaps', () => {
  it('finds the pair in step after a sync, and out of step when half-written, forged or not vouched for', () => {
    const before = afterFirstSync(team(2));
    const { users, nss } = before.configMaps;
    if (users === undefined || nss === undefined) throw new Error('not synced');
    expect(configMapsInStep(before.object, before.configMaps)).toBe(true);
    expect(nss.annotations?.[SYNC_ID_ANNOTATION]).toBe(before.object.status?.usersDigest);
    expect(users.annotations?.[SYNC_ID_ANNOTATION]).toBe(before.object.status?.usersDigest);
    // A crash between the writes: -nss of the next sync, -users and status of this one.
    const next = afterFirstSync(team(3)).configMaps.nss;
    expect(configMapsInStep(before.object, { users, nss: next })).toBe(false);
    // A users.json with its content hash made to match: the hash proves nothing, the digest does.
    const forgedJson = '[]\n';
    const forged = { ...users, usersJson: forgedJson, usersDigest: usersDigestOf(forgedJson), dataHash: 'sha256:forged', annotations: { ...users.annotations, [CONTENT_HASH_ANNOTATION]: 'sha256:forged' } };
    expect(configMapsInStep(before.object, { users: forged, nss })).toBe(false);
    expect(configMapsInStep(before.object, { users })).toBe(false);
    expect(configMapsInStep({ ...before.object, status: { ...before.object.status, usersDigest: undefined } }, before.configMaps)).toBe(false);
    // Neither a write nor a repair of the pair is due when it is in step: zero writes still hold.
    expect(plan(before, listed(team(2))).configMapWrites).toEqual([]);
    const stale = plan({ ...before, configMaps: { users, nss: next } }, listed(team(2)));
    expect(stale.configMapWrites.map((w) => w.manifest.metadata.name)).toEqual(['lab-nss']);
  });

  it('rewrites a ConfigMap whose sync id alone was changed', () => {
    const before = afterFirstSync(team(2));
    const nss = before.configMaps.nss;
    const relabelled = { ...nss, annotations: { ...nss?.annotations, [SYNC_ID_ANNOTATION]: 'other' } };
    expect(plan({ ...before, configMaps: { ...before.configMaps, nss: relabelled } }, listed(team(2))).configMapWrites.map((w) => w.manifest.metadata.name)).toEqual(['lab-nss']);
  });

  it('writes nothing for a sync request that finds nothing changed, also when the budget puts it off', () => {
    const requested = (value: string, status?: HpcClusterStatus) => object({}, { annotations: { 'hpc.shanhe.com/sync-requested': value } }, status);
    const first = afterFirstSync(team(1));
    const again = plan({ ...first, object: requested('two', first.object.status) }, listed(team(1)));
    expect(again.status).toBeUndefined();
    expect(again.configMapWrites).toEqual([]);
    const deferred = planDeferred(input({ object: requested('two', first.object.status) }), 'no calls left', 5_000, { nextSyncMs: 600_000 });
    expect(deferred.status).toBeUndefined();
  });

  it('never reports Synced when the apiserver refused a write: Ready False names the failure, the vouched list stays', () => {
    const before = afterFirstSync(team(2));
    const planned = plan(before, listed(team(3)));
    expect(ready(planned)?.reason).toBe('Synced');
    const refused = planWriteRefused(before, planned, 'the apiserver refused the write of ConfigMap lab-nss (HTTP 422): denied by policy');
    expect(ready(refused)).toMatchObject({ status: 'False', reason: 'ConfigMapWriteFailed', message: 'the apiserver refused the write of ConfigMap lab-nss (HTTP 422): denied by policy' });
    expect(conditionStatus(refused, 'Stalled')).toBe('False');
    expect(refused.status?.usersDigest).toBe(before.object.status?.usersDigest);
    expect(refused.status?.userCount).toBe(2);
    expect(refused.result).toEqual({ outcome: 'error', retryAfterMs: expect.any(Number) });
    expect(refused.memo).toBeUndefined();
    expect(refused.configMapWrites).toEqual([]);
    expect(refused.events).toEqual([{ type: 'Warning', reason: 'ConfigMapWriteFailed', message: ready(refused)?.message }]);
    expect(refused.synced).toBeUndefined();
    expect(refused.listed).toEqual(planned.listed);
  });
});

describe('the versions the ConfigMaps were written at', () => {
  it('are recorded in status with the sync that wrote them, and a repair alone makes a status write due', () => {
    const first = plan(input(), listed(team(2)));
    const recorded = recordConfigMapVersions(first, undefined, { nss: '11', users: '12' }, NOW);
    expect(recorded.status?.configMapVersions).toEqual({ nss: '11', users: '12' });
    expect(recorded.status?.usersDigest).toBe(first.status?.usersDigest);
    const before = afterFirstSync(team(2));
    const synced = { ...before, object: { ...before.object, status: recorded.status } };
    const nothing = plan(synced, listed(team(2)));
    expect(recordConfigMapVersions(nothing, synced.object.status, {}, NOW).status).toBeUndefined();
    // -users repaired: only its version changes, and status says so.
    const repaired = recordConfigMapVersions(nothing, synced.object.status, { users: '13' }, NOW);
    expect(repaired.status?.configMapVersions).toEqual({ nss: '11', users: '13' });
    expect(statusPatch(synced.object.status, repaired.status ?? {})).toEqual({ configMapVersions: { nss: '11', users: '13' } });
  });
});

describe('what survives a restart', () => {
  const outage: SyncFailure = { reason: 'ListUsersFailed', message: 'HTTP 503', retry: 'backoff' };

  it('keeps a Stalled failure in status, and takes it back as the memo only while Stalled', () => {
    const before = afterFirstSync(team(2));
    const auth: SyncFailure = { reason: 'AuthenticationFailed', message: 'ret_code 1200', retry: 'never' };
    const stalled = plan(before, failed(auth));
    expect(stalled.status?.stalledOn).toEqual({ generation: 1, secretResourceVersion: '1' });
    // A new process: no memo of its own, the one status keeps, so no call.
    const restarted = { ...before, object: { ...before.object, status: stalled.status }, memo: rememberedFailure(stalled.status) };
    expect(restarted.memo).toEqual({ ...stalled.memo, secretFingerprint: undefined });
    expect(settled(restarted).result).toEqual({ outcome: 'stalled' });
    // A changed Secret (a new resourceVersion, whatever its data) is tried again.
    expect(request({ ...restarted, secret: { ...SECRET, resourceVersion: '2' } })).toBeDefined();
    // Status says nothing of the Secret's data.
    expect(JSON.stringify(stalled.status)).not.toContain('the-secret');
    // A sync clears it.
    const recovered = plan({ ...restarted, secret: { ...SECRET, resourceVersion: '2' } }, listed(team(2)));
    expect(recovered.status?.stalledOn).toBeUndefined();
    expect(rememberedFailure(recovered.status)).toBeUndefined();
  });

  it('writes status as a merge patch that removes what the next status no longer has', () => {
    expect(statusPatch({ userCount: 2, consecutiveFailures: 3, nextRetryTime: 't' }, { userCount: 2 })).toEqual({ consecutiveFailures: null, nextRetryTime: null });
    // Only what changes is sent, each changed field whole; equal values in another key order are unchanged.
    const users = [{ username: 'ann', uid: 1, gid: 1, role: 'member', nasMountPoint: '/n/ann' }];
    const previous = { userCount: 1, users, usersDigest: 'a' } as unknown as HpcClusterStatus;
    const reordered = [{ nasMountPoint: '/n/ann', role: 'member', gid: 1, uid: 1, username: 'ann' }];
    expect(statusPatch(previous, { userCount: 1, users: reordered, usersDigest: 'b' } as unknown as HpcClusterStatus)).toEqual({ usersDigest: 'b' });
    expect(statusPatch(undefined, { userCount: 1 })).toEqual({ userCount: 1 });
  });

  it('backs off on the failure count status keeps, and a restart waits out the back-off', () => {
    let state = afterFirstSync(team(2));
    const delays: number[] = [];
    for (let i = 1; i <= 4; i++) {
      const p = plan(state, failed(outage));
      expect(p.status?.consecutiveFailures).toBe(i);
      const result = p.result as { outcome: 'error'; retryAfterMs: number };
      expect(result.outcome).toBe('error');
      // Status times have whole seconds.
      expect(Math.abs(Date.parse(p.status?.nextRetryTime ?? '') - (NOW.getTime() + result.retryAfterMs))).toBeLessThan(1000);
      delays.push(result.retryAfterMs);
      state = { ...state, object: { ...state.object, status: p.status } };
    }
    // Doubling (±20% jitter, fixed per resource): 1 s, 2 s, 4 s, 8 s.
    delays.forEach((delay, i) => expect(delay / 2 ** i).toBeCloseTo(delays[0] ?? 0, 0));
    expect(delays[0]).toBeGreaterThanOrEqual(800);
    expect(delays[0]).toBeLessThan(1200);
    const leaderGone = NOW.getTime() - 60_000;
    expect(Math.abs(backoffLeftMs(state.object, NOW.getTime(), leaderGone) - (delays[3] ?? 0))).toBeLessThan(1000);
    expect(backoffLeftMs(state.object, NOW.getTime() + 60_000, leaderGone)).toBe(0);
    // A new generation, or a sync request made after the previous leader was last seen, does not wait.
    expect(backoffLeftMs({ ...state.object, metadata: { ...state.object.metadata, generation: 2 } }, NOW.getTime(), leaderGone)).toBe(0);
    const requestedAt = (time: string) => ({
      ...state.object,
      metadata: {
        ...state.object.metadata,
        annotations: { 'hpc.shanhe.com/sync-requested': 'now' },
        managedFields: [{ manager: 'kubectl-annotate', time: time as unknown as Date, fieldsV1: { 'f:metadata': { 'f:annotations': { 'f:hpc.shanhe.com/sync-requested': {} } } } }],
      },
    });
    expect(backoffLeftMs(requestedAt(new Date(leaderGone + 5_000).toISOString()), NOW.getTime(), leaderGone)).toBe(0);
    expect(backoffLeftMs(requestedAt(new Date(leaderGone - 5_000).toISOString()), NOW.getTime(), leaderGone)).toBeGreaterThan(0);
    // A sync ends it.
    const synced = plan(state, listed(team(2)));
    expect(synced.status?.consecutiveFailures).toBeUndefined();
    expect(synced.status?.nextRetryTime).toBeUndefined();
  });
});
