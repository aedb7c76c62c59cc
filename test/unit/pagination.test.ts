import { describe, expect, it } from '@jest/globals';
import { duplicateRowProblem, laterPageOffsets, pageProblem } from '../../src/provider/pagination.js';
import type { WireUser } from '../../src/provider/wire.js';

const rows = (n: number) => Array.from({ length: n }, () => ({}));

describe('laterPageOffsets', () => {
  it.each([
    [0, []],
    [1, []],
    [100, []],
    [101, [100]],
    [250, [100, 200]],
    [300, [100, 200]],
  ])('for %i rows', (total, offsets) => {
    expect([...laterPageOffsets(total)]).toEqual(offsets);
  });
});

describe('pageProblem', () => {
  it.each([
    ['an empty listing', 0, 0, 0],
    ['one row', 0, 1, 1],
    ['a full first page', 0, 100, 250],
    ['a full middle page', 100, 100, 250],
    ['the last partial page', 200, 50, 250],
    ['an exactly full last page', 100, 100, 200],
  ])('accepts %s', (_name, offset, count, total) => {
    expect(pageProblem(offset, { totalCount: total, rows: rows(count) }, total)).toBeUndefined();
  });

  it('reports a total that changed between pages', () => {
    expect(pageProblem(100, { totalCount: 251, rows: rows(100) }, 250)).toBe(
      'total_count changed from 250 to 251 between pages (page at offset 100)',
    );
  });

  it('reports a short page before the end', () => {
    expect(pageProblem(100, { totalCount: 250, rows: rows(99) }, 250)).toMatch(
      /^page at offset 100 has 99 rows where 100 were expected \(total_count 250\)/,
    );
    expect(pageProblem(0, { totalCount: 3, rows: rows(2) }, 3)).toMatch(/has 2 rows where 3 were expected/);
  });

  it('reports an over-long page', () => {
    expect(pageProblem(0, { totalCount: 500, rows: rows(101) }, 500)).toBe(
      'page at offset 0 has 101 rows, more than the page size 100',
    );
  });

  it('reports more rows than the total leaves room for', () => {
    expect(pageProblem(200, { totalCount: 250, rows: rows(60) }, 250)).toBe(
      'page at offset 200 has 60 rows but total_count 250 leaves room for 50',
    );
    expect(pageProblem(0, { totalCount: 0, rows: rows(1) }, 0)).toMatch(/leaves room for 0/);
  });
});

describe('duplicateRowProblem', () => {
  const user = (hpcuser_id: string | null, username: string, uid_number: string): WireUser => ({
    hpcuser_id,
    username,
    uid_number,
  });

  it('accepts distinct rows, including rows without hpcuser_id', () => {
    expect(
      duplicateRowProblem([user('h1', 'a', '1000'), user('h2', 'b', '1001'), user(null, 'c', '1002')]),
    ).toBeUndefined();
  });

  it('reports the same hpcuser_id twice', () => {
    expect(duplicateRowProblem([user('h1', 'a', '1000'), user('h2', 'b', '1001'), user('h1', 'c', '1002')])).toBe(
      'hpcuser_id "h1" appears at rows 0 and 2',
    );
  });

  it('reports the same username and uid twice, whatever the ids', () => {
    expect(duplicateRowProblem([user(null, 'a', '1000'), user('h9', 'a', '1000')])).toBe(
      'username "a" with uid "1000" appears at rows 0 and 1',
    );
  });

  it('leaves a repeated username with another uid to validation', () => {
    expect(duplicateRowProblem([user('h1', 'a', '1000'), user('h2', 'a', '1001')])).toBeUndefined();
  });
});
