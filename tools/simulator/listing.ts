import { MAX_PAGE_SIZE, type WireUser } from '../../src/provider/wire.js';

/** What a ListUsers request selects; empty strings count as absent. */
export interface ListingQuery {
  userId?: string;
  searchWord?: string;
  offset: number;
  limit: number;
}

export interface Page {
  totalCount: number;
  rows: readonly WireUser[];
}

/**
 * The rows matching `user_id` (exact) and `search_word` (case-insensitive substring of the
 * username); the input itself when there is no filter, so the common case copies nothing.
 */
export function selectRows(rows: readonly WireUser[], query: Pick<ListingQuery, 'userId' | 'searchWord'>): readonly WireUser[] {
  const userId = query.userId === '' ? undefined : query.userId;
  const word = query.searchWord === '' || query.searchWord === undefined ? undefined : query.searchWord.toLowerCase();
  if (userId === undefined && word === undefined) return rows;
  return rows.filter(
    (row) =>
      (userId === undefined || row.user_id === userId) &&
      (word === undefined || (row.username ?? '').toLowerCase().includes(word)),
  );
}

/** One page: at most MAX_PAGE_SIZE rows whatever `limit` says; total_count counts every match. */
export function pageOf(rows: readonly WireUser[], offset: number, limit: number): Page {
  return { totalCount: rows.length, rows: rows.slice(offset, offset + Math.min(limit, MAX_PAGE_SIZE)) };
}
