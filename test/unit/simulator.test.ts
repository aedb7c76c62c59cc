import { afterEach, describe, expect, it } from '@jest/globals';
import { canonicalQuery, computeSignature, percentEncode, stringToSign } from '../../src/provider/signature.js';
import {
  DEV_ACCESS_KEY,
  startSimulator,
  type Simulator,
  type SimulatorOptions,
} from '../../tools/simulator/server.js';
import { generateUsers } from '../../tools/simulator/store.js';
import { formatTimestamp } from '../../src/runtime/clock.js';
import type { WireUser } from '../../src/provider/wire.js';
import { admin, signedGet, type Answer } from '../support/simulator-http.js';
import { waitFor } from '../../tools/harness/wait-for.js';

const USERS = generateUsers(250, 1);
const NOW = Date.parse('2024-05-01T12:00:00Z');

let simulator: Simulator | undefined;
afterEach(async () => {
  await simulator?.close();
  simulator = undefined;
});

async function start(options: SimulatorOptions = {}): Promise<Simulator> {
  simulator = await startSimulator({ clusters: [{ id: 'hpc-a', users: USERS }], ...options });
  return simulator;
}

const rowsOf = (answer: Answer): WireUser[] => answer.json?.user_set as WireUser[];
const usernames = (answer: Answer): string[] => rowsOf(answer).map((row) => row.username ?? '');
const retCode = (answer: Answer): unknown => answer.json?.ret_code;

describe('simulator: signature', () => {
  it('accepts a request signed like the provider sample, on the path with or without a slash', async () => {
    const sim = await start();
    const answer = await signedGet(sim, { params: { cluster_id: 'hpc-a', limit: '1' } });
    expect(answer.status).toBe(200);
    expect(answer.json).toEqual({
      action: 'HpcUserListUsersResponse',
      ret_code: 0,
      total_count: 250,
      user_set: [
        {
          cluster_id: 'hpc-a',
          create_time: '2021-08-17T09:12:40Z',
          gid_number: '10000',
          hpcuser_id: USERS[0]?.hpcUserId,
          mod: null,
          nas_mount_point: `/public/shanhe/${USERS[0]?.username}`,
          role: 'boss',
          uid_number: '10000',
          update_time: '2021-08-17T09:12:40Z',
          user_id: USERS[0]?.username,
          username: USERS[0]?.username,
        },
      ],
    });
    expect(retCode(await signedGet(sim, { path: '/api/user/', params: { cluster_id: 'hpc-a' } }))).toBe(0);
  });

  it('refuses with 1200 a changed parameter, a single-encoded signature, a wrong secret, an unknown key', async () => {
    const sim = await start();
    const params = { cluster_id: 'hpc-a', limit: '10' };
    const changed = await signedGet(sim, { params, alter: (q) => q.replace('limit=10', 'limit=11') });
    const singleEncoded = await signedGet(sim, {
      params,
      alter: (q) => {
        const unsigned = q.slice(0, q.indexOf('&signature='));
        const signature = computeSignature(DEV_ACCESS_KEY.secret, stringToSign('GET', '/api/user', unsigned));
        return `${unsigned}&signature=${percentEncode(signature)}`;
      },
    });
    const wrongSecret = await signedGet(sim, { params, key: { id: DEV_ACCESS_KEY.id, secret: 'not-the-secret' } });
    const unknownKey = await signedGet(sim, { params, key: { id: 'NOSUCHKEY', secret: DEV_ACCESS_KEY.secret } });
    for (const answer of [changed, singleEncoded, wrongSecret, unknownKey]) {
      expect(answer.status).toBe(200);
      expect(retCode(answer)).toBe(1200);
    }
    expect(unknownKey.json?.message).toBe('authentication failed: unknown access key');
  });

  it('verifies the raw query: a value with reserved characters signs and filters', async () => {
    const sim = await start({ clusters: [{ id: 'hpc-a', users: [{ username: 'a+b c', uid: 1001, gid: 1001 }] }] });
    const params = { cluster_id: 'hpc-a', search_word: 'A+B C' };
    expect(canonicalQuery(params)).toContain('search_word=A%2BB%20C');
    expect(usernames(await signedGet(sim, { params }))).toEqual(['a+b c']);
  });

  it('accepts several access keys', async () => {
    const keys = [
      { id: 'KEY1', secret: 's1' },
      { id: 'KEY2', secret: 's2' },
    ];
    const sim = await start({ accessKeys: keys });
    expect(retCode(await signedGet(sim, { key: keys[0] }))).toBe(0);
    expect(retCode(await signedGet(sim, { key: keys[1] }))).toBe(0);
    expect(retCode(await signedGet(sim, { key: { id: 'KEY1', secret: 's2' } }))).toBe(1200);
    expect(retCode(await signedGet(sim))).toBe(1200);
  });
});

describe('simulator: parameters', () => {
  it('answers 1300 for a timestamp more than 60 s off its clock', async () => {
    let now = NOW;
    const sim = await start({ clock: { now: () => now } });
    const client = { now: () => NOW };
    expect(retCode(await signedGet(sim, { clock: client }))).toBe(0);
    now = NOW + 61_000;
    const expired = await signedGet(sim, { clock: client });
    expect(retCode(expired)).toBe(1300);
    expect(expired.json?.message).toContain('2024-05-01T12:00:00Z');
    now = NOW - 61_000;
    expect(retCode(await signedGet(sim, { clock: client }))).toBe(1300);
  });

  it('answers 1100 naming a missing parameter', async () => {
    const sim = await start();
    const noZone = await signedGet(sim, { params: { zone: undefined } });
    expect(noZone.json).toEqual({ ret_code: 1100, message: 'parameter zone is missing' });
    const noKey = await signedGet(sim, { params: { access_key_id: undefined } });
    expect(noKey.json).toEqual({ ret_code: 1100, message: 'access_key_id is missing' });
    const badLimit = await signedGet(sim, { params: { limit: 'ten' } });
    expect(badLimit.json).toEqual({ ret_code: 1100, message: 'parameter limit must be a non-negative integer' });
  });

  it('pages with limit 10 by default, at most 100 rows, in a stable order', async () => {
    const sim = await start();
    const get = (params: Record<string, string>) => signedGet(sim, { params: { cluster_id: 'hpc-a', ...params } });
    expect(usernames(await get({}))).toEqual(USERS.slice(0, 10).map((u) => u.username));
    const pages = [await get({ limit: '500' }), await get({ limit: '100', offset: '100' }), await get({ limit: '100', offset: '200' })];
    expect(pages.map((page) => rowsOf(page).length)).toEqual([100, 100, 50]);
    expect(pages.flatMap(usernames)).toEqual(USERS.map((u) => u.username));
    expect(pages.map((page) => page.json?.total_count)).toEqual([250, 250, 250]);
    expect(rowsOf(await get({ offset: '250' }))).toEqual([]);
  });

  it('filters by user_id exactly and by search_word on the username, case-insensitively', async () => {
    const sim = await start();
    const target = USERS[42]?.username ?? '';
    const byId = await signedGet(sim, { params: { cluster_id: 'hpc-a', user_id: target } });
    expect(usernames(byId)).toEqual([target]);
    expect(byId.json?.total_count).toBe(1);
    const word = target.slice(4, 8).toUpperCase();
    const bySearch = await signedGet(sim, { params: { cluster_id: 'hpc-a', search_word: word, limit: '100' } });
    const expected = USERS.filter((u) => u.username.toLowerCase().includes(word.toLowerCase())).map((u) => u.username);
    expect(usernames(bySearch)).toEqual(expected);
    expect(usernames(bySearch)).toContain(target);
  });

  it('answers 2100 for an unknown cluster or zone, lists every cluster of the zone without cluster_id', async () => {
    const sim = await start({
      clusters: [
        { id: 'hpc-a', users: [{ username: 'alice', uid: 1001, gid: 1001 }] },
        { id: 'hpc-b', zone: 'jinan2a', users: [{ username: 'bob', uid: 1002, gid: 1002 }] },
        { id: 'hpc-c', users: [{ username: 'carol', uid: 1003, gid: 1003 }] },
      ],
    });
    expect(retCode(await signedGet(sim, { params: { cluster_id: 'hpc-x' } }))).toBe(2100);
    expect(retCode(await signedGet(sim, { params: { cluster_id: 'hpc-b' } }))).toBe(2100);
    expect(usernames(await signedGet(sim, { params: { cluster_id: 'hpc-b', zone: 'jinan2a' } }))).toEqual(['bob']);
    expect((await signedGet(sim, { params: { zone: 'mars1a' } })).json).toEqual({ ret_code: 2100, message: 'zone [mars1a] not found' });
    expect(usernames(await signedGet(sim))).toEqual(['alice', 'carol']);
  });

  it('answers 2500 once a key has spent its quota, per key, until the window ends', async () => {
    let now = NOW;
    const other = { id: 'OTHER', secret: 'other' };
    const sim = await start({ clock: { now: () => now }, quota: { limit: 2, windowSeconds: 3600 }, accessKeys: [DEV_ACCESS_KEY, other] });
    const clock = { now: () => now };
    const codes = [];
    for (let i = 0; i < 3; i++) codes.push(retCode(await signedGet(sim, { clock })));
    codes.push(retCode(await signedGet(sim, { clock, key: other })));
    expect(codes).toEqual([0, 0, 2500, 0]);
    expect(sim.calls().map((c) => [c.accessKeyId, c.at, c.quotaExceeded])).toEqual([
      [DEV_ACCESS_KEY.id, NOW, false],
      [DEV_ACCESS_KEY.id, NOW, false],
      [DEV_ACCESS_KEY.id, NOW, true],
      [other.id, NOW, false],
    ]);
    now += 3600_000;
    expect(retCode(await signedGet(sim, { clock }))).toBe(0);
    sim.resetStats();
    expect(sim.calls()).toEqual([]);
  });
});

describe('simulator: faults', () => {
  it('answers the next N requests with an injected ret_code, 5000 with the documented message', async () => {
    const sim = await start();
    sim.setFaults({ error: { retCode: 5000, next: 2 } });
    const answers = [await signedGet(sim, { params: { cluster_id: 'hpc-a' } }), await signedGet(sim), await signedGet(sim)];
    expect(answers[0]?.json).toEqual({ ret_code: 5000, message: 'get hpc cluster[hpc-a] user failed' });
    expect(answers.map(retCode)).toEqual([5000, 5000, 0]);
    expect(sim.faults().error).toBeNull();
  });

  it('answers with an HTTP 5xx and an HTML body', async () => {
    const sim = await start();
    sim.setFaults({ http5xx: { status: 502, next: 1 } });
    const answer = await signedGet(sim);
    expect(answer.status).toBe(502);
    expect(answer.json).toBeUndefined();
    expect(answer.text).toContain('<title>502 Bad Gateway</title>');
    expect(retCode(await signedGet(sim))).toBe(0);
  });

  it('hangs a request until the client gives up, then serves the next', async () => {
    const sim = await start();
    sim.setFaults({ hang: { next: 1 } });
    const abort = new AbortController();
    const hung = signedGet(sim, {}, abort.signal);
    await waitFor(() => sim.stats().hung === 1, { description: 'the request to hang' });
    abort.abort();
    await expect(hung).rejects.toThrow();
    expect(retCode(await signedGet(sim))).toBe(0);
  });

  it('drops hung connections and pending delayed answers on close', async () => {
    const sim = await start();
    sim.setFaults({ hang: { next: 1 } });
    const hung = signedGet(sim);
    await waitFor(() => sim.stats().hung === 1, { description: 'the request to hang' });
    sim.setFaults({ latencyMs: 600_000 });
    const delayed = signedGet(sim);
    await waitFor(() => sim.stats().requests === 2, { description: 'the delayed request to arrive' });
    await sim.close();
    await expect(hung).rejects.toThrow();
    await expect(delayed).rejects.toThrow();
  });

  it('delays answers by latencyMs', async () => {
    const sim = await start({ faults: { latencyMs: 20 } });
    expect(retCode(await signedGet(sim))).toBe(0);
  });

  it('truncates the JSON of a page', async () => {
    const sim = await start();
    sim.setFaults({ truncateJson: { next: 1 } });
    const answer = await signedGet(sim);
    expect(answer.status).toBe(200);
    expect(answer.text.startsWith('{"action":"HpcUserListUsersResponse"')).toBe(true);
    expect(answer.json).toBeUndefined();
    expect(sim.stats()).toMatchObject({ truncated: 1, byRetCode: {} });
  });

  it('lies about total_count, duplicates rows, uses users_set', async () => {
    const sim = await start({ faults: { totalCountDelta: -3, duplicateRows: 1, listKey: 'users_set' } });
    const answer = await signedGet(sim, { params: { limit: '3' } });
    expect(answer.json?.total_count).toBe(247);
    expect(answer.json).not.toHaveProperty('user_set');
    const rows = answer.json?.users_set as WireUser[];
    expect(rows.map((r) => r.username)).toEqual([USERS[0]?.username, USERS[1]?.username, USERS[0]?.username]);
  });

  it('changes the users after a first page, shifting later pages', async () => {
    const sim = await start({ faults: { mutateBetweenPages: true } });
    const first = await signedGet(sim, { params: { cluster_id: 'hpc-a', limit: '2' } });
    const second = await signedGet(sim, { params: { cluster_id: 'hpc-a', limit: '2', offset: '2' } });
    expect(first.json?.total_count).toBe(250);
    expect(second.json?.total_count).toBe(251);
    expect(usernames(second)[0]).toBe(usernames(first)[1]);
    expect(sim.users('hpc-a')?.[0]?.username).toBe('inserted-1990000');
  });

  it('appends invalid rows to the listing, counted and paged like the rest', async () => {
    const sim = await start({ faults: { invalidRows: ['uid-not-a-number', 'relative-nas'] } });
    const last = await signedGet(sim, { params: { cluster_id: 'hpc-a', offset: '249' } });
    expect(last.json?.total_count).toBe(252);
    expect(rowsOf(last).map((r) => [r.username, r.uid_number, r.nas_mount_point, r.cluster_id])).toEqual([
      [USERS[249]?.username, '10249', `/public/shanhe/${USERS[249]?.username}`, 'hpc-a'],
      ['invalid-uid-not-a-number', 'abc', '/public/shanhe/invalid-uid-not-a-number', 'hpc-a'],
      ['invalid-relative-nas', '1999001', 'relative/path', 'hpc-a'],
    ]);
  });

  it('refuses an invalid fault change and keeps the faults it had', async () => {
    const sim = await start({ faults: { latencyMs: 5 } });
    expect(() => sim.setFaults({ duplicateRows: -1 })).toThrow();
    expect(sim.faults().latencyMs).toBe(5);
    expect(sim.clearFaults().latencyMs).toBe(0);
  });
});

describe('simulator: stats', () => {
  it('counts requests by ret_code, HTTP status and access key, and resets', async () => {
    const sim = await start({ faults: { http5xx: { status: 503, next: 1 } } });
    await signedGet(sim);
    await signedGet(sim);
    await signedGet(sim, { params: { zone: undefined } });
    await signedGet(sim, { key: { id: 'NOSUCHKEY', secret: 'x' } });
    await fetch(`${sim.url}/api/user`, { method: 'POST' });
    await fetch(`${sim.url}/api/other`);
    expect(sim.stats()).toEqual({
      requests: 6,
      byRetCode: { 0: 1, 1100: 1, 1200: 1 },
      byHttpStatus: { 404: 1, 405: 1, 503: 1 },
      truncated: 0,
      hung: 0,
      byAccessKey: { [DEV_ACCESS_KEY.id]: 1 },
    });
    await admin(sim, 'GET', 'stats');
    expect(sim.stats().requests).toBe(6);
    sim.resetStats();
    expect(sim.stats()).toEqual({ requests: 0, byRetCode: {}, byHttpStatus: {}, truncated: 0, hung: 0, byAccessKey: {} });
  });
});

describe('simulator: admin endpoint', () => {
  it('reads and resets stats', async () => {
    const sim = await start();
    await signedGet(sim);
    expect((await admin(sim, 'GET', 'stats')).json).toMatchObject({ requests: 1, byRetCode: { 0: 1 } });
    expect((await admin(sim, 'POST', 'reset-stats')).status).toBe(204);
    expect(sim.stats().requests).toBe(0);
  });

  it('changes, reads and clears faults', async () => {
    const sim = await start();
    const patched = await admin(sim, 'PATCH', 'faults', { error: { retCode: 5100, next: 1 }, listKey: 'users_set' });
    expect(patched).toMatchObject({ status: 200, json: { error: { retCode: 5100, next: 1 }, listKey: 'users_set', latencyMs: 0 } });
    expect(retCode(await signedGet(sim))).toBe(5100);
    expect((await admin(sim, 'GET', 'faults')).json).toMatchObject({ error: null, listKey: 'users_set' });
    expect((await admin(sim, 'DELETE', 'faults')).json).toMatchObject({ listKey: 'user_set' });
    const refused = await admin(sim, 'PATCH', 'faults', { hang: {} });
    expect(refused.status).toBe(400);
    expect(refused.json).toMatchObject({ error: expect.stringContaining('give next') as unknown });
  });

  it('replaces, adds, changes and removes users while serving', async () => {
    const sim = await start();
    const put = await admin(sim, 'PUT', 'clusters/hpc-n/users', { zone: 'jinan2a', users: [{ username: 'alice', uid: 1001, gid: 1001 }] });
    expect(put).toEqual({ status: 200, json: { id: 'hpc-n', zone: 'jinan2a', userCount: 1 } });
    const added = await admin(sim, 'POST', 'clusters/hpc-n/users', { username: 'bad:name', uid: 1002, gid: 1002, role: 'admin' });
    expect(added).toMatchObject({ status: 201, json: { username: 'bad:name', uid_number: '1002', role: 'admin', cluster_id: 'hpc-n' } });
    expect((await admin(sim, 'PATCH', 'clusters/hpc-n/users/alice', { gid: 2000 })).json).toMatchObject({ gid_number: '2000' });
    expect((await admin(sim, 'DELETE', `clusters/hpc-n/users/${encodeURIComponent('bad:name')}`)).status).toBe(204);
    const listed = await signedGet(sim, { params: { zone: 'jinan2a', cluster_id: 'hpc-n' } });
    expect(rowsOf(listed).map((r) => [r.username, r.gid_number])).toEqual([['alice', '2000']]);
    expect((await admin(sim, 'GET', 'clusters/hpc-n/users')).json).toEqual(rowsOf(listed));
    expect((await admin(sim, 'GET', 'clusters')).json).toEqual([
      { id: 'hpc-a', zone: 'jinan1a', userCount: 250 },
      { id: 'hpc-n', zone: 'jinan2a', userCount: 1 },
    ]);
  });

  it('answers 404, 409 and 400 for what cannot be done', async () => {
    const sim = await start();
    expect((await admin(sim, 'DELETE', 'clusters/hpc-a/users/nobody')).status).toBe(404);
    expect((await admin(sim, 'GET', 'clusters/hpc-x/users')).status).toBe(404);
    expect((await admin(sim, 'POST', 'clusters/hpc-x/users', { username: 'x', uid: 1, gid: 1 })).status).toBe(404);
    expect((await admin(sim, 'POST', 'clusters/hpc-a/users', { username: USERS[0]?.username, uid: 1, gid: 1 })).status).toBe(409);
    expect((await admin(sim, 'POST', 'clusters/hpc-a/users', { username: 'x', uid: '1', gid: 1 })).status).toBe(400);
    expect((await admin(sim, 'GET', 'nothing')).status).toBe(404);
    expect(sim.stats().requests).toBe(0);
  });
});

describe('simulator: module mutations', () => {
  it('serves users set, added, changed and removed through the module API', async () => {
    let now = NOW;
    const sim = await start({ clock: { now: () => now } });
    const clock = { now: () => now };
    sim.setUsers('hpc-a', [{ username: 'alice', uid: 1001, gid: 1001 }]);
    sim.addUser('hpc-a', { username: 'bob', uid: 1002, gid: 1002 });
    now += 5_000;
    sim.updateUser('hpc-a', 'alice', { nasMountPoint: '/nas/alice' });
    sim.removeUser('hpc-a', 'bob');
    const answer = await signedGet(sim, { clock, params: { cluster_id: 'hpc-a' } });
    expect(rowsOf(answer)).toEqual([
      expect.objectContaining({
        username: 'alice',
        nas_mount_point: '/nas/alice',
        create_time: formatTimestamp(new Date(NOW)),
        update_time: formatTimestamp(new Date(now)),
      }),
    ]);
  });
});
