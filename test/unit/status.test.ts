import { describe, expect, it } from '@jest/globals';
import type { HpcClusterStatus } from '../../src/api/hpccluster.js';
import type { HpcUser } from '../../src/domain/user.js';
import { nextStatus, STATUS_HEARTBEAT_MS, statusWriteDue, type SyncOutcome } from '../../src/controller/status.js';
import { syncIdOf } from '../../src/render/configmaps.js';

const t0 = new Date('2026-01-01T00:00:00Z');
const later = (ms: number) => new Date(t0.getTime() + ms);
const cms = ['c-users', 'c-nss'];
const users = (n: number): HpcUser[] =>
  Array.from({ length: n }, (_, i) => ({ username: `u${String(i).padStart(4, '0')}`, uid: 2000 + i, gid: 2000 + i, role: 'member' as const, nasMountPoint: `/h/${i}`, userId: `usr-${i}`, hpcUserId: `h-${i}` }));
const synced = (n: number): SyncOutcome => ({ reason: 'Synced', users: users(n), skipped: [], usersDigest: syncIdOf(users(n)) });
const cond = (s: HpcClusterStatus, type: string) => s.conditions?.find((c) => c.type === type);

describe('nextStatus', () => {
  it('reports a successful sync as Ready=True, Synced, with users and times', () => {
    const s = nextStatus(undefined, 1, synced(2), t0, cms);
    expect(cond(s, 'Ready')).toMatchObject({ status: 'True', reason: 'Synced', message: '2 users synced', observedGeneration: 1, lastTransitionTime: '2026-01-01T00:00:00Z' });
    expect(cond(s, 'Reconciling')?.status).toBe('False');
    expect(cond(s, 'Stalled')?.status).toBe('False');
    expect(s).toMatchObject({ observedGeneration: 1, userCount: 2, usersTruncated: false, lastSyncTime: '2026-01-01T00:00:00Z', lastSuccessfulSyncTime: '2026-01-01T00:00:00Z', configMaps: cms });
  });

  it('truncates users at 500 and says so', () => {
    const s = nextStatus(undefined, 1, synced(501), t0, cms);
    expect(s.users).toHaveLength(500);
    expect(s.usersTruncated).toBe(true);
    expect(s.userCount).toBe(501);
  });

  it('keeps the last good users on a failure and marks a permanent one Stalled', () => {
    const good = nextStatus(undefined, 1, synced(3), t0, cms);
    const failed = nextStatus(good, 1, { reason: 'AuthenticationFailed', message: 'ret_code 1200', retry: 'never' }, later(1000), cms);
    expect(failed.users).toEqual(good.users);
    expect(failed.lastSuccessfulSyncTime).toBe(good.lastSuccessfulSyncTime);
    expect(failed.lastSyncTime).toBe('2026-01-01T00:00:01Z');
    expect(cond(failed, 'Ready')).toMatchObject({ status: 'False', reason: 'AuthenticationFailed', lastTransitionTime: '2026-01-01T00:00:01Z' });
    expect(cond(failed, 'Stalled')).toMatchObject({ status: 'True', reason: 'AuthenticationFailed' });
    expect(cond(failed, 'Reconciling')?.status).toBe('False');
  });

  it('marks a new generation Reconciling while its retryable failures last, until it syncs', () => {
    const good = nextStatus(undefined, 1, synced(1), t0, cms);
    const failing = { reason: 'ListUsersFailed', message: 'HTTP 503', retry: 'backoff' } as const;
    const first = nextStatus(good, 2, failing, later(1000), cms);
    expect(cond(first, 'Reconciling')?.status).toBe('True');
    const second = nextStatus(first, 2, failing, later(2000), cms);
    expect(cond(second, 'Reconciling')?.status).toBe('True');
    const done = nextStatus(second, 2, synced(1), later(3000), cms);
    expect(cond(done, 'Reconciling')?.status).toBe('False');
    const afterwards = nextStatus(done, 2, failing, later(4000), cms);
    expect(cond(afterwards, 'Reconciling')?.status).toBe('False');
  });

  it('marks a failure retrying cannot mend Stalled, not Reconciling, even on a new generation', () => {
    const good = nextStatus(undefined, 1, synced(1), t0, cms);
    const s = nextStatus(good, 2, { reason: 'ListUsersFailed', message: 'ret_code 2100', retry: 'never' }, later(1000), cms);
    expect(cond(s, 'Stalled')).toMatchObject({ status: 'True', reason: 'ListUsersFailed', message: 'ret_code 2100' });
    expect(cond(s, 'Reconciling')?.status).toBe('False');
  });

  it('marks a failure retried later Reconciling on a new generation, never Stalled', () => {
    const good = nextStatus(undefined, 1, synced(1), t0, cms);
    const s = nextStatus(good, 2, { reason: 'QuotaExceeded', message: 'ret_code 2500', retry: { afterMs: 900_000 } }, later(1000), cms);
    expect(cond(s, 'Stalled')?.status).toBe('False');
    expect(cond(s, 'Reconciling')?.status).toBe('True');
  });

  it('keeps lastTransitionTime while a condition keeps its status', () => {
    const a = nextStatus(undefined, 1, synced(1), t0, cms);
    const b = nextStatus(a, 1, synced(2), later(5000), cms);
    expect(cond(b, 'Ready')?.lastTransitionTime).toBe(cond(a, 'Ready')?.lastTransitionTime);
  });

  it('reports Suspended as Ready=True without touching sync times', () => {
    const good = nextStatus(undefined, 1, synced(1), t0, cms);
    const s = nextStatus(good, 2, { reason: 'Suspended' }, later(1000), cms);
    expect(cond(s, 'Ready')).toMatchObject({ status: 'True', reason: 'Suspended' });
    expect(s.lastSyncTime).toBe(good.lastSyncTime);
  });
});

describe('statusWriteDue', () => {
  it('skips a write when only the sync times moved, until the heartbeat', () => {
    const a = nextStatus(undefined, 1, synced(3), t0, cms);
    expect(statusWriteDue(a, nextStatus(a, 1, synced(3), later(60_000), cms), later(60_000))).toBe(false);
    const due = later(STATUS_HEARTBEAT_MS);
    expect(statusWriteDue(a, nextStatus(a, 1, synced(3), due, cms), due)).toBe(true);
  });

  it('writes when users, conditions or the generation change', () => {
    const a = nextStatus(undefined, 1, synced(3), t0, cms);
    expect(statusWriteDue(a, nextStatus(a, 1, synced(4), later(1), cms), later(1))).toBe(true);
    expect(statusWriteDue(a, nextStatus(a, 2, synced(3), later(1), cms), later(1))).toBe(true);
    expect(statusWriteDue(a, nextStatus(a, 1, { reason: 'QuotaExceeded', message: 'q', retry: { afterMs: 900_000 } }, later(1), cms), later(1))).toBe(true);
    expect(statusWriteDue(undefined, a, t0)).toBe(true);
  });
});
