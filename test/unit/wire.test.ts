import { describe, expect, it } from '@jest/globals';
import { parseListUsersPage, parseListUsersResponse } from '../../src/provider/wire.js';
import { formatTimestamp } from '../../src/runtime/clock.js';

const ROW = {
  cluster_id: 'hpc-qig9xu97',
  create_time: '2021-08-17T09:12:40Z',
  gid_number: '41522',
  hpcuser_id: 'hpcuser-8a310ir1',
  mod: null,
  nas_mount_point: '/public/shanhe/s0723',
  role: 'member',
  uid_number: '41522',
  update_time: '2021-08-17T09:12:40Z',
  user_id: 'usr-vceaHsJu',
  username: 'usr-vceaHsJu',
};

function success(extra: Record<string, unknown>): string {
  return JSON.stringify({ action: 'HpcUserListUsersResponse', ret_code: 0, total_count: 1, ...extra });
}

describe('parseListUsersResponse', () => {
  it('reads the example response (users_set, mod null)', () => {
    expect(parseListUsersResponse(success({ users_set: [ROW] }))).toEqual({
      ok: true,
      page: { totalCount: 1, rows: [ROW] },
    });
  });

  it('reads the field table form (user_set, mod a string, the other action name)', () => {
    const body = success({ action: 'HpcClusterListClusterResponse', user_set: [{ ...ROW, mod: 'mod' }] });
    expect(parseListUsersResponse(body)).toMatchObject({ ok: true, page: { rows: [{ mod: 'mod' }] } });
  });

  it('accepts an empty page and ignores unknown fields', () => {
    expect(parseListUsersResponse(success({ total_count: 0, user_set: [], extra: true }))).toEqual({
      ok: true,
      page: { totalCount: 0, rows: [] },
    });
  });

  it('returns the provider refusal with its ret_code and message', () => {
    expect(parseListUsersResponse('{"ret_code":1200,"message":"auth failed"}')).toEqual({
      ok: false,
      retCode: 1200,
      message: 'auth failed',
    });
    expect(parseListUsersResponse('{"ret_code":5100,"message":null}')).toEqual({ ok: false, retCode: 5100, message: '' });
  });

  it.each([
    ['not JSON', '<html>Bad Gateway</html>', /not JSON \(24 bytes\)/],
    ['truncated JSON', success({ users_set: [ROW] }).slice(0, 40), /not JSON/],
    ['a JSON array', '[]', /not the documented shape/],
    ['no ret_code', '{"total_count":1,"users_set":[]}', /ret_code/],
    ['ret_code as a string', '{"ret_code":"0","total_count":0,"users_set":[]}', /ret_code/],
    ['no list', success({}), /neither user_set nor users_set/],
    ['both lists', success({ user_set: [], users_set: [] }), /both user_set and users_set/],
    ['no total_count', JSON.stringify({ ret_code: 0, users_set: [] }), /total_count/],
    ['negative total_count', success({ total_count: -1, users_set: [] }), /total_count/],
    ['a number where a string belongs', success({ users_set: [{ ...ROW, uid_number: 41522 }] }), /users_set\[0\]\.uid_number/],
    ['a row that is not an object', success({ users_set: [null] }), /users_set\[0\]/],
    ['the list as an object', success({ users_set: { 0: ROW } }), /users_set/],
  ])('fails on %s, saying what is wrong', (_name, body, message) => {
    expect(() => parseListUsersResponse(body)).toThrow(message);
  });

  it('names a few problems and counts the rest instead of listing thousands', () => {
    const rows = Array.from({ length: 50 }, () => ({ ...ROW, uid_number: 1 }));
    let message = '';
    try {
      parseListUsersPage({ ret_code: 0, total_count: 50, users_set: rows });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/users_set\[0\]\.uid_number.*users_set\[2\]\.uid_number.*and 47 more$/);
  });
});

describe('formatTimestamp', () => {
  it('is UTC without milliseconds', () => {
    expect(formatTimestamp(new Date(Date.UTC(2021, 7, 19, 16, 44, 40, 123)))).toBe('2021-08-19T16:44:40Z');
  });
});
