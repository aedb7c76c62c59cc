import type { WireUser } from './wire.js';
import { MAX_PAGE_SIZE } from './wire.js';

/**
 * The checks that make a paged listing trustworthy: every page agrees on total_count, every
 * page but the last is full, no row comes twice, and the rows add up to total_count. Each
 * returns a sentence saying what did not add up, or undefined.
 */

/** Offsets of the pages after the first, for a listing of `total` rows. */
export function* laterPageOffsets(total: number, pageSize = MAX_PAGE_SIZE): Generator<number> {
  for (let offset = pageSize; offset < total; offset += pageSize) yield offset;
}

export function pageProblem(
  offset: number,
  page: { totalCount: number; rows: readonly unknown[] },
  expectedTotal: number,
  pageSize = MAX_PAGE_SIZE,
): string | undefined {
  if (page.totalCount !== expectedTotal) {
    return `total_count changed from ${expectedTotal} to ${page.totalCount} between pages (page at offset ${offset})`;
  }
  const got = page.rows.length;
  if (got > pageSize) return `page at offset ${offset} has ${got} rows, more than the page size ${pageSize}`;
  const expected = Math.min(pageSize, Math.max(0, expectedTotal - offset));
  if (got < expected) {
    return `page at offset ${offset} has ${got} rows where ${expected} were expected (total_count ${expectedTotal}): a short page before the end`;
  }
  if (got > expected) {
    return `page at offset ${offset} has ${got} rows but total_count ${expectedTotal} leaves room for ${expected}`;
  }
  return undefined;
}

/** A provider-chosen value in a message: escaped, and short enough that it cannot bloat one. */
function quoted(value: string): string {
  return JSON.stringify(value.length > 64 ? `${value.slice(0, 64)}…` : value);
}

/** The first row that repeats an earlier one: same hpcuser_id, or same username and uid. */
export function duplicateRowProblem(rows: readonly WireUser[]): string | undefined {
  const seenIds = new Map<string, number>();
  const seenNameUid = new Map<string, number>();
  for (const [index, row] of rows.entries()) {
    if (row.hpcuser_id != null && row.hpcuser_id !== '') {
      const earlier = seenIds.get(row.hpcuser_id);
      if (earlier !== undefined) {
        return `hpcuser_id ${quoted(row.hpcuser_id)} appears at rows ${earlier} and ${index}`;
      }
      seenIds.set(row.hpcuser_id, index);
    }
    if (row.username != null && row.uid_number != null) {
      const key = JSON.stringify([row.username, row.uid_number]);
      const earlier = seenNameUid.get(key);
      if (earlier !== undefined) {
        return `username ${quoted(row.username)} with uid ${quoted(row.uid_number)} appears at rows ${earlier} and ${index}`;
      }
      seenNameUid.set(key, index);
    }
  }
  return undefined;
}
