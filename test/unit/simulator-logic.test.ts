import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { signQuery } from '../../src/provider/signature.js';
import {
  applyPageFaults,
  faultPatchSchema,
  fireTrigger,
  INVALID_ROW_KINDS,
  invalidRows,
  listUsersBody,
  truncateBody,
} from '../../tools/simulator/faults.js';
import { pageOf, selectRows } from '../../tools/simulator/listing.js';
import { seededRandom } from '../../tools/simulator/prng.js';
import { FixedWindowQuota } from '../../tools/simulator/quota.js';
import { checkListUsersRequest } from '../../tools/simulator/request.js';
import { FIRST_GENERATED_UID, generateUsers, loadUsersFile, toWireRow, UserStore } from '../../tools/simulator/store.js';
import { wireUserSchema, type WireUser } from '../../src/provider/wire.js';

const NOW = Date.parse('2024-05-01T12:00:00Z');
const row = (username: string, userId = username): WireUser =>
  toWireRow('hpc-a', { username, uid: 2000, gid: 2000, userId }, '2024-05-01T12:00:00Z');

describe('selectRows and pageOf', () => {
  const rows = ['alice', 'Bob', 'carol', 'ALICIA'].map((name) => row(name, `usr-${name}`));

  it('returns the input itself without filters', () => {
    expect(selectRows(rows, {})).toBe(rows);
    expect(selectRows(rows, { userId: '', searchWord: '' })).toBe(rows);
  });

  it('matches user_id exactly and search_word as a case-insensitive username substring', () => {
    expect(selectRows(rows, { userId: 'usr-Bob' }).map((r) => r.username)).toEqual(['Bob']);
    expect(selectRows(rows, { userId: 'usr-bob' })).toEqual([]);
    expect(selectRows(rows, { searchWord: 'ALI' }).map((r) => r.username)).toEqual(['alice', 'ALICIA']);
    expect(selectRows(rows, { searchWord: 'ali', userId: 'usr-ALICIA' }).map((r) => r.username)).toEqual(['ALICIA']);
  });

  it('pages by offset, never more than 100 rows, total counting every match', () => {
    const many = Array.from({ length: 250 }, (_, i) => row(`u${i}`));
    expect(pageOf(many, 0, 10).rows.map((r) => r.username)).toEqual(many.slice(0, 10).map((r) => r.username));
    expect(pageOf(many, 200, 500)).toEqual({ totalCount: 250, rows: many.slice(200, 250) });
    expect(pageOf(many, 0, 500).rows).toHaveLength(100);
    expect(pageOf(many, 300, 10)).toEqual({ totalCount: 250, rows: [] });
  });
});

describe('fault logic', () => {
  it('fires a trigger on its next N requests, then drops it', () => {
    const random = seededRandom(1);
    expect(fireTrigger({ next: 2 }, random)).toEqual({ fires: true, remaining: { next: 1 } });
    expect(fireTrigger({ next: 1 }, random)).toEqual({ fires: true, remaining: null });
    expect(fireTrigger({ next: 0 }, random)).toEqual({ fires: false, remaining: null });
  });

  it('keeps a rate trigger after its count and fires it at about the rate, reproducibly', () => {
    const draws = (seed: number) => {
      const random = seededRandom(seed);
      return Array.from({ length: 1000 }, () => fireTrigger({ rate: 0.3 }, random).fires);
    };
    const hits = draws(7).filter(Boolean).length;
    expect(hits).toBeGreaterThan(200);
    expect(hits).toBeLessThan(400);
    expect(draws(7)).toEqual(draws(7));
    expect(fireTrigger({ next: 1, rate: 0.3 }, seededRandom(1)).remaining).toEqual({ next: 0, rate: 0.3 });
  });

  it('lies about total_count and duplicates rows without changing the page length', () => {
    const rows = ['a', 'b', 'c', 'd', 'e'].map((name) => row(name));
    const page = applyPageFaults({ totalCount: 5, rows }, { totalCountDelta: -7, duplicateRows: 2 });
    expect(page.totalCount).toBe(0);
    expect(page.rows.map((r) => r.username)).toEqual(['a', 'b', 'c', 'b', 'a']);
    expect(rows.map((r) => r.username)).toEqual(['a', 'b', 'c', 'd', 'e']);
    expect(applyPageFaults({ totalCount: 1, rows: [rows[0] as WireUser] }, { totalCountDelta: 3, duplicateRows: 1 })).toEqual({
      totalCount: 4,
      rows: [rows[0]],
    });
  });

  it('builds the body under either list key and truncates it into invalid JSON', () => {
    const page = { totalCount: 1, rows: [row('a')] };
    expect(listUsersBody(page, 'users_set')).toEqual({ action: 'HpcUserListUsersResponse', ret_code: 0, total_count: 1, users_set: page.rows });
    const body = JSON.stringify(listUsersBody(page, 'user_set'));
    expect(() => JSON.parse(truncateBody(body)) as unknown).toThrow();
  });

  it('makes one invalid row per kind, each a wire row breaking its rule', () => {
    const rows = invalidRows(INVALID_ROW_KINDS, 'hpc-a');
    expect(rows.map((r) => wireUserSchema.parse(r))).toHaveLength(INVALID_ROW_KINDS.length);
    expect(rows.map((r) => [r.username, r.uid_number, r.nas_mount_point, r.role])).toEqual([
      ['bad:name', '1999000', '/public/shanhe/invalid-bad-username', 'member'],
      ['invalid-uid-zero', '0', '/public/shanhe/invalid-uid-zero', 'member'],
      ['invalid-uid-not-a-number', 'abc', '/public/shanhe/invalid-uid-not-a-number', 'member'],
      ['invalid-relative-nas', '1999003', 'relative/path', 'member'],
      ['invalid-nas-parent-segment', '1999004', '/public/../etc', 'member'],
      ['invalid-bad-role', '1999005', '/public/shanhe/invalid-bad-role', 'root'],
    ]);
  });

  it('refuses a trigger with neither next nor rate, and unknown faults', () => {
    expect(faultPatchSchema.safeParse({ hang: {} }).success).toBe(false);
    expect(faultPatchSchema.safeParse({ noSuchFault: true }).success).toBe(false);
    expect(faultPatchSchema.safeParse({ http5xx: { status: 404, next: 1 } }).success).toBe(false);
    expect(faultPatchSchema.parse({ error: null, listKey: 'users_set' })).toEqual({ error: null, listKey: 'users_set' });
  });
});

describe('checkListUsersRequest', () => {
  const secretFor = (id: string) => (id === 'KEY' ? 'secret' : undefined);
  const common = {
    access_key_id: 'KEY',
    zone: 'jinan1a',
    timestamp: '2024-05-01T12:00:00Z',
    version: '1',
    signature_method: 'HmacSHA256',
    signature_version: '1',
  };
  const check = (params: Record<string, string>, nowMs = NOW) =>
    checkListUsersRequest('GET', '/api/user', signQuery('GET', '/api/user', params, 'secret'), secretFor, nowMs);

  it('reads a signed request with defaults for limit and offset', () => {
    expect(check({ ...common, cluster_id: 'hpc-a', search_word: 'a b' })).toEqual({
      ok: true,
      request: { accessKeyId: 'KEY', zone: 'jinan1a', clusterId: 'hpc-a', userId: undefined, searchWord: 'a b', limit: 10, offset: 0 },
    });
  });

  it.each([
    ['zone', 'parameter zone is missing'],
    ['timestamp', 'parameter timestamp is missing'],
    ['version', 'parameter version is missing'],
    ['signature_method', 'parameter signature_method is missing'],
    ['signature_version', 'parameter signature_version is missing'],
  ])('answers 1100 naming a missing %s', (name, message) => {
    const params: Record<string, string> = { ...common };
    delete params[name];
    expect(check(params)).toEqual({ ok: false, retCode: 1100, message });
  });

  it.each([
    [{ version: '2' }, 'parameter version must be 1'],
    [{ signature_method: 'HmacSHA1' }, 'parameter signature_method must be HmacSHA256'],
    [{ signature_version: '2' }, 'parameter signature_version must be 1'],
    [{ timestamp: '2024-05-01 12:00:00' }, 'parameter timestamp must be YYYY-MM-DDThh:mm:ssZ (UTC)'],
    [{ timestamp: '2024-05-01T12:00:00.000Z' }, 'parameter timestamp must be YYYY-MM-DDThh:mm:ssZ (UTC)'],
    [{ limit: '-1' }, 'parameter limit must be a non-negative integer'],
    [{ offset: 'x' }, 'parameter offset must be a non-negative integer'],
  ])('answers 1100 for %j', (change, message) => {
    expect(check({ ...common, ...change })).toEqual({ ok: false, retCode: 1100, message });
  });

  it('answers 1300 outside the 60 s window, either way, and accepts its edges', () => {
    expect(check(common, NOW + 60_000)).toMatchObject({ ok: true });
    expect(check(common, NOW - 60_000)).toMatchObject({ ok: true });
    expect(check(common, NOW + 61_000)).toMatchObject({ ok: false, retCode: 1300 });
    expect(check(common, NOW - 61_000)).toMatchObject({ ok: false, retCode: 1300 });
  });

  it('answers 1200 for an unknown key and 1100 without a signature', () => {
    expect(check({ ...common, access_key_id: 'OTHER' })).toMatchObject({ ok: false, retCode: 1200 });
    const unsigned = signQuery('GET', '/api/user', common, 'secret').replace(/&signature=.*$/, '');
    expect(checkListUsersRequest('GET', '/api/user', unsigned, secretFor, NOW)).toEqual({
      ok: false,
      retCode: 1100,
      message: 'signature is missing',
    });
  });
});

describe('FixedWindowQuota', () => {
  it('allows the limit per key per window, then refuses until the window ends', () => {
    let now = NOW;
    const quota = new FixedWindowQuota({ limit: 2, windowSeconds: 60 }, () => now);
    expect([quota.take('a'), quota.take('a'), quota.take('a'), quota.take('b')]).toEqual([true, true, false, true]);
    now += 59_999;
    expect(quota.take('a')).toBe(false);
    now += 1;
    expect(quota.take('a')).toBe(true);
  });
});

describe('UserStore', () => {
  const store = () => {
    const s = new UserStore('jinan1a', () => NOW);
    s.setUsers('hpc-a', [
      { username: 'alice', uid: 1001, gid: 1001 },
      { username: 'bob', uid: 1002, gid: 1002, role: 'admin', nasMountPoint: '/nas/bob', userId: 'usr-bob', hpcUserId: 'hpcuser-b' },
    ]);
    return s;
  };

  it('stores wire rows with defaults filled in', () => {
    expect(store().rowsOf('hpc-a')).toEqual([
      {
        cluster_id: 'hpc-a',
        create_time: '2024-05-01T12:00:00Z',
        gid_number: '1001',
        hpcuser_id: 'hpcuser-alice',
        mod: null,
        nas_mount_point: '/public/shanhe/alice',
        role: 'member',
        uid_number: '1001',
        update_time: '2024-05-01T12:00:00Z',
        user_id: 'alice',
        username: 'alice',
      },
      expect.objectContaining({ username: 'bob', role: 'admin', nas_mount_point: '/nas/bob', user_id: 'usr-bob', hpcuser_id: 'hpcuser-b' }),
    ]);
  });

  it('adds at the end or the front, updates in place, removes, and refuses what cannot be', () => {
    const s = store();
    s.addUser('hpc-a', { username: 'carol', uid: 1003, gid: 1003 });
    s.addUser('hpc-a', { username: 'dave', uid: 1004, gid: 1004 }, 'front');
    expect(s.updateUser('hpc-a', 'bob', { uid: 2002 })).toMatchObject({ uid_number: '2002', gid_number: '1002', user_id: 'usr-bob' });
    s.removeUser('hpc-a', 'alice');
    expect(s.rowsOf('hpc-a')?.map((r) => r.username)).toEqual(['dave', 'bob', 'carol']);
    expect(() => s.addUser('hpc-a', { username: 'bob', uid: 1, gid: 1 })).toThrow('already exists');
    expect(() => s.updateUser('hpc-a', 'bob', { username: 'carol' })).toThrow('already exists');
    expect(() => s.removeUser('hpc-a', 'nobody')).toThrow('no user nobody');
    expect(() => s.addUser('hpc-x', { username: 'x', uid: 1, gid: 1 })).toThrow('no cluster hpc-x');
  });

  it('knows zones: clusters of another zone are not found there, listing without a cluster spans the zone', () => {
    const s = store();
    s.setUsers('hpc-b', [{ username: 'zed', uid: 1, gid: 1 }], 'jinan2a');
    s.setUsers('hpc-c', [{ username: 'yan', uid: 2, gid: 2 }]);
    expect(s.rowsOf('hpc-b', 'jinan1a')).toBeUndefined();
    expect(s.rowsOf('hpc-b', 'jinan2a')).toHaveLength(1);
    expect(s.rowsInZone('jinan1a').map((r) => r.username)).toEqual(['alice', 'bob', 'yan']);
    expect([s.hasZone('jinan1a'), s.hasZone('jinan2a'), s.hasZone('nowhere')]).toEqual([true, true, false]);
    expect(s.summary()).toEqual([
      { id: 'hpc-a', zone: 'jinan1a', userCount: 2 },
      { id: 'hpc-b', zone: 'jinan2a', userCount: 1 },
      { id: 'hpc-c', zone: 'jinan1a', userCount: 1 },
    ]);
  });
});

describe('generateUsers', () => {
  it('makes 100,000 distinct valid users, the same for the same seed', () => {
    const users = generateUsers(100_000, 42);
    expect(users).toHaveLength(100_000);
    expect(new Set(users.map((u) => u.username)).size).toBe(100_000);
    expect(new Set(users.map((u) => u.uid)).size).toBe(100_000);
    expect(users.every((u) => /^usr-[A-Za-z]{8}$/.test(u.username) && u.uid === u.gid && u.uid >= FIRST_GENERATED_UID)).toBe(true);
    expect(users.filter((u) => u.role === 'boss')).toHaveLength(1);
    expect(generateUsers(50, 42)).toEqual(users.slice(0, 50));
    expect(generateUsers(50, 43)).not.toEqual(users.slice(0, 50));
  });
});

describe('loadUsersFile', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'simulator-users-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('reads JSON and YAML in the same format', async () => {
    const document = { clusters: [{ id: 'hpc-a', zone: 'jinan2a', users: [{ username: 'alice', uid: 1001, gid: 1001, role: 'admin' }] }] };
    await writeFile(join(dir, 'users.json'), JSON.stringify(document));
    await writeFile(
      join(dir, 'users.yaml'),
      'clusters:\n- id: hpc-a\n  zone: jinan2a\n  users:\n  - {username: alice, uid: 1001, gid: 1001, role: admin}\n',
    );
    expect(await loadUsersFile(join(dir, 'users.json'))).toEqual(document.clusters);
    expect(await loadUsersFile(join(dir, 'users.yaml'))).toEqual(document.clusters);
  });

  it('names the file and the problem when the document is wrong', async () => {
    await writeFile(join(dir, 'bad.yaml'), 'clusters:\n- id: hpc-a\n  users:\n  - {username: alice, uid: "1001", gid: 1001}\n');
    await writeFile(join(dir, 'broken.json'), '{"clusters": [');
    await expect(loadUsersFile(join(dir, 'bad.yaml'))).rejects.toThrow(/bad\.yaml: not a users file.*uid/);
    await expect(loadUsersFile(join(dir, 'broken.json'))).rejects.toThrow(/broken\.json: not valid JSON or YAML/);
  });
});
