import { z } from 'zod';
import { RetCode } from '../../src/provider/errors.js';
import type { WireUser } from '../../src/provider/wire.js';
import type { Page } from './listing.js';
import type { Random } from './prng.js';

/**
 * Which requests a fault hits: the `next` N ones, then each later one with probability `rate`
 * (drawn from the simulator's seeded PRNG). Prefer `next` in tests: it is exact.
 * A trigger whose `next` is spent and that has no `rate` is removed.
 */
export interface FaultTrigger {
  next?: number;
  rate?: number;
}

/** Rows the `invalidRows` fault adds, each breaking one rule of the SPEC's validation. */
export const INVALID_ROW_KINDS = [
  'bad-username', // `bad:name`
  'uid-zero', // uid_number "0"
  'uid-not-a-number', // uid_number "abc"
  'relative-nas', // nas_mount_point "relative/path"
  'nas-parent-segment', // nas_mount_point "/public/../etc"
  'bad-role', // role "root"
] as const;
export type InvalidRowKind = (typeof INVALID_ROW_KINDS)[number];

/** Every fault the simulator can inject; NO_FAULTS is the faithful server. */
export interface FaultConfig {
  /** Answer authenticated requests with this ret_code (HTTP 200) instead of the page. */
  error: (FaultTrigger & { retCode: number }) | null;
  /** Answer with this HTTP status and an HTML body, as a proxy in front of the API would. */
  http5xx: (FaultTrigger & { status: number }) | null;
  /** Never answer: the connection stays open until the client gives up or the simulator closes. */
  hang: FaultTrigger | null;
  /** Cut the JSON body of a successful page in half. */
  truncateJson: FaultTrigger | null;
  /** Delay every answer by this much. */
  latencyMs: number;
  /** Report total_count off by this much (never below 0). */
  totalCountDelta: number;
  /** Replace the last N rows of each page with copies of its first N: duplicates, and rows missing. */
  duplicateRows: number;
  /** After each first page (offset 0) is served, insert a user at the front of that cluster. */
  mutateBetweenPages: boolean;
  /** The documents disagree on the list key; the field table says user_set. */
  listKey: 'user_set' | 'users_set';
  /** Rows appended to every listing (counted in total_count, filtered and paged like the rest). */
  invalidRows: InvalidRowKind[];
}
export type FaultPatch = Partial<FaultConfig>;

export const NO_FAULTS: Readonly<FaultConfig> = Object.freeze({
  error: null,
  http5xx: null,
  hang: null,
  truncateJson: null,
  latencyMs: 0,
  totalCountDelta: 0,
  duplicateRows: 0,
  mutateBetweenPages: false,
  listKey: 'user_set',
  invalidRows: [],
});

const triggerShape = {
  next: z.number().int().nonnegative().optional(),
  rate: z.number().min(0).max(1).optional(),
};
const hasNextOrRate = [
  (t: FaultTrigger) => t.next !== undefined || t.rate !== undefined,
  { message: 'give next (a count) or rate (0..1)' },
] as const;

/** Validates a fault change from the module API or `PATCH /_admin/faults`. */
export const faultPatchSchema: z.ZodType<FaultPatch> = z
  .strictObject({
    error: z
      .strictObject({ ...triggerShape, retCode: z.number().int().positive() })
      .refine(...hasNextOrRate)
      .nullable(),
    http5xx: z
      .strictObject({ ...triggerShape, status: z.number().int().min(500).max(599) })
      .refine(...hasNextOrRate)
      .nullable(),
    hang: z.strictObject(triggerShape).refine(...hasNextOrRate).nullable(),
    truncateJson: z.strictObject(triggerShape).refine(...hasNextOrRate).nullable(),
    latencyMs: z.number().int().nonnegative(),
    totalCountDelta: z.number().int(),
    duplicateRows: z.number().int().nonnegative(),
    mutateBetweenPages: z.boolean(),
    listKey: z.enum(['user_set', 'users_set']),
    invalidRows: z.array(z.enum(INVALID_ROW_KINDS)),
  })
  .partial();

/** Whether a trigger fires on this request, and what is left of it for later requests. */
export function fireTrigger<T extends FaultTrigger>(trigger: T, random: Random): { fires: boolean; remaining: T | null } {
  const next = trigger.next ?? 0;
  const rate = trigger.rate ?? 0;
  if (next > 0) {
    return { fires: true, remaining: next === 1 && rate === 0 ? null : { ...trigger, next: next - 1 } };
  }
  return { fires: rate > 0 && random() < rate, remaining: rate > 0 ? trigger : null };
}

/** The lies a page can tell: a wrong total_count, duplicated rows. */
export function applyPageFaults(page: Page, faults: Pick<FaultConfig, 'totalCountDelta' | 'duplicateRows'>): Page {
  let rows = page.rows;
  if (faults.duplicateRows > 0 && rows.length > 1) {
    const copy = [...rows];
    for (let i = 0; i < faults.duplicateRows && i < copy.length - 1 - i; i++) copy[copy.length - 1 - i] = rows[i] as WireUser;
    rows = copy;
  }
  return { totalCount: Math.max(0, page.totalCount + faults.totalCountDelta), rows };
}

/** A successful ListUsers body, under the list key the faults choose. */
export function listUsersBody(page: Page, listKey: FaultConfig['listKey']): Record<string, unknown> {
  return { action: 'HpcUserListUsersResponse', ret_code: 0, total_count: page.totalCount, [listKey]: page.rows };
}

/** The first half of a body: what a client sees when the connection drops mid-response. */
export function truncateBody(body: string): string {
  return body.slice(0, Math.floor(body.length / 2));
}

/** The HTML page a reverse proxy answers with when the API behind it fails. */
export function http5xxBody(status: number, statusText: string): string {
  const title = `${status} ${statusText}`;
  return `<html>\r\n<head><title>${title}</title></head>\r\n<body>\r\n<center><h1>${title}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n`;
}

const INVALID_ROW_FIRST_UID = 1999000;

/** One row per kind, otherwise valid and distinct, so each breaks exactly its one rule. */
export function invalidRows(kinds: readonly InvalidRowKind[], clusterId: string): WireUser[] {
  return kinds.map((kind, index) => {
    const id = String(INVALID_ROW_FIRST_UID + index);
    const username = `invalid-${kind}`;
    const row: WireUser = {
      cluster_id: clusterId,
      create_time: '2021-08-17T09:12:40Z',
      gid_number: id,
      hpcuser_id: `hpcuser-${username}`,
      mod: null,
      nas_mount_point: `/public/shanhe/${username}`,
      role: 'member',
      uid_number: id,
      update_time: '2021-08-17T09:12:40Z',
      user_id: username,
      username,
    };
    switch (kind) {
      case 'bad-username':
        return { ...row, username: 'bad:name', user_id: 'bad:name' };
      case 'uid-zero':
        return { ...row, uid_number: '0' };
      case 'uid-not-a-number':
        return { ...row, uid_number: 'abc' };
      case 'relative-nas':
        return { ...row, nas_mount_point: 'relative/path' };
      case 'nas-parent-segment':
        return { ...row, nas_mount_point: '/public/../etc' };
      case 'bad-role':
        return { ...row, role: 'root' };
    }
  });
}

/** The message the provider pairs with a ret_code; 5000 is the one this call documents. */
export function retCodeMessage(retCode: number, clusterId: string): string {
  switch (retCode) {
    case RetCode.InternalError:
      return `get hpc cluster[${clusterId}] user failed`;
    case RetCode.ServerBusy:
      return 'server busy, please retry later';
    case RetCode.ServiceUpdating:
      return 'service is being updated, please retry later';
    case RetCode.AccessDenied:
      return 'access denied';
    case RetCode.QuotaExceeded:
      return 'quota exceeded: too many API calls for this access key';
    default:
      return `simulated error ${retCode}`;
  }
}
