import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { formatTimestamp } from '../../src/runtime/clock.js';
import type { WireUser } from '../../src/provider/wire.js';
import { seededRandom } from './prng.js';

/** The zone of clusters that name none, and the zone every simulator serves. */
export const DEFAULT_ZONE = 'jinan1a';

/**
 * A user as the simulator is given one (module API, admin endpoint, users file). Only
 * username, uid and gid are required; the rest default from them. Role and paths are kept as
 * given, valid or not: the simulator plays an outside party whose data may be wrong.
 */
export const simulatedUserSchema = z.strictObject({
  username: z.string(),
  uid: z.number().int(),
  gid: z.number().int(),
  role: z.string().optional(),
  nasMountPoint: z.string().optional(),
  userId: z.string().optional(),
  hpcUserId: z.string().optional(),
  mod: z.string().nullable().optional(),
  createTime: z.string().optional(),
  updateTime: z.string().optional(),
});
export type SimulatedUser = z.infer<typeof simulatedUserSchema>;

export const simulatedUserPatchSchema = simulatedUserSchema.partial();
export type SimulatedUserPatch = z.infer<typeof simulatedUserPatchSchema>;

/** One cluster with its users; `zone` defaults to the simulator's zone. */
export const clusterSeedSchema = z.strictObject({
  id: z.string().min(1),
  zone: z.string().min(1).optional(),
  users: z.array(simulatedUserSchema),
});
export type ClusterSeed = z.infer<typeof clusterSeedSchema>;

/** The `--users FILE` document, JSON or YAML: `{clusters: [{id, zone?, users: [...]}, ...]}`. */
export const usersFileSchema = z.strictObject({ clusters: z.array(clusterSeedSchema) });

/** A store mutation that cannot be applied: no such cluster or user, or a user that exists. */
export class StoreError extends Error {
  override readonly name = 'StoreError';
  constructor(
    readonly reason: 'not-found' | 'conflict',
    message: string,
  ) {
    super(message);
  }
}

/** The row the API sends for `user`, every value a string (or null for `mod`), as documented. */
export function toWireRow(clusterId: string, user: SimulatedUser, now: string): WireUser {
  const createTime = user.createTime ?? now;
  return {
    cluster_id: clusterId,
    create_time: createTime,
    gid_number: String(user.gid),
    hpcuser_id: user.hpcUserId ?? `hpcuser-${user.username}`,
    mod: user.mod ?? null,
    nas_mount_point: user.nasMountPoint ?? `/public/shanhe/${user.username}`,
    role: user.role ?? 'member',
    uid_number: String(user.uid),
    update_time: user.updateTime ?? createTime,
    user_id: user.userId ?? user.username,
    username: user.username,
  };
}

/** The inverse of toWireRow for rows the store made, so an update can patch a stored row. */
function fromWireRow(row: WireUser): SimulatedUser {
  return {
    username: row.username ?? '',
    uid: Number(row.uid_number),
    gid: Number(row.gid_number),
    role: row.role ?? undefined,
    nasMountPoint: row.nas_mount_point ?? undefined,
    userId: row.user_id ?? undefined,
    hpcUserId: row.hpcuser_id ?? undefined,
    mod: row.mod,
    createTime: row.create_time ?? undefined,
    updateTime: row.update_time ?? undefined,
  };
}

export interface ClusterSummary {
  id: string;
  zone: string;
  userCount: number;
}

interface StoredCluster {
  zone: string;
  /** In listing order (insertion order), so pages are stable across requests. */
  rows: WireUser[];
}

/**
 * The users of every simulated cluster, kept as wire rows in listing order: serving a page is
 * a slice, never a copy or sort of the whole list.
 */
export class UserStore {
  private readonly clusters = new Map<string, StoredCluster>();

  constructor(
    readonly defaultZone: string,
    private readonly now: () => number,
  ) {}

  /** Replaces a cluster's users, creating the cluster if needed; its zone stays unless given. */
  setUsers(clusterId: string, users: readonly SimulatedUser[], zone?: string): ClusterSummary {
    const stamp = this.timestamp();
    const cluster: StoredCluster = {
      zone: zone ?? this.clusters.get(clusterId)?.zone ?? this.defaultZone,
      rows: users.map((user) => toWireRow(clusterId, user, stamp)),
    };
    this.clusters.set(clusterId, cluster);
    return { id: clusterId, zone: cluster.zone, userCount: cluster.rows.length };
  }

  /** Adds a user at the end of the listing, or at the front (which shifts every offset). */
  addUser(clusterId: string, user: SimulatedUser, position: 'end' | 'front' = 'end'): WireUser {
    const cluster = this.existing(clusterId);
    if (cluster.rows.some((row) => row.username === user.username)) {
      throw new StoreError('conflict', `user ${user.username} already exists in cluster ${clusterId}`);
    }
    const row = toWireRow(clusterId, user, this.timestamp());
    if (position === 'front') cluster.rows.unshift(row);
    else cluster.rows.push(row);
    return row;
  }

  /** Changes the given fields of a user; the others keep their values, update_time moves to now. */
  updateUser(clusterId: string, username: string, patch: SimulatedUserPatch): WireUser {
    const cluster = this.existing(clusterId);
    const index = this.indexOf(clusterId, cluster, username);
    if (patch.username !== undefined && patch.username !== username && cluster.rows.some((r) => r.username === patch.username)) {
      throw new StoreError('conflict', `user ${patch.username} already exists in cluster ${clusterId}`);
    }
    const stamp = this.timestamp();
    const current = fromWireRow(cluster.rows[index] as WireUser);
    const row = toWireRow(clusterId, { ...current, updateTime: stamp, ...patch }, stamp);
    cluster.rows[index] = row;
    return row;
  }

  removeUser(clusterId: string, username: string): void {
    const cluster = this.existing(clusterId);
    cluster.rows.splice(this.indexOf(clusterId, cluster, username), 1);
  }

  /** The cluster's rows in listing order, or undefined for an unknown cluster or another zone. */
  rowsOf(clusterId: string, zone?: string): readonly WireUser[] | undefined {
    const cluster = this.clusters.get(clusterId);
    return cluster === undefined || (zone !== undefined && cluster.zone !== zone) ? undefined : cluster.rows;
  }

  /** Every row of every cluster in `zone`, clusters in creation order (computed per call). */
  rowsInZone(zone: string): readonly WireUser[] {
    return [...this.clusters.values()].filter((c) => c.zone === zone).flatMap((c) => c.rows);
  }

  /** The first cluster created in `zone`, if any. */
  firstClusterIn(zone: string): string | undefined {
    for (const [id, cluster] of this.clusters) if (cluster.zone === zone) return id;
    return undefined;
  }

  hasZone(zone: string): boolean {
    return zone === this.defaultZone || [...this.clusters.values()].some((c) => c.zone === zone);
  }

  summary(): ClusterSummary[] {
    return [...this.clusters].map(([id, c]) => ({ id, zone: c.zone, userCount: c.rows.length }));
  }

  private existing(clusterId: string): StoredCluster {
    const cluster = this.clusters.get(clusterId);
    if (cluster === undefined) throw new StoreError('not-found', `no cluster ${clusterId}`);
    return cluster;
  }

  private indexOf(clusterId: string, cluster: StoredCluster, username: string): number {
    const index = cluster.rows.findIndex((row) => row.username === username);
    if (index === -1) throw new StoreError('not-found', `no user ${username} in cluster ${clusterId}`);
    return index;
  }

  private timestamp(): string {
    return formatTimestamp(new Date(this.now()));
  }
}

const LETTERS = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ';
const LOWER_ALNUM = 'abcdefghijklmnopqrstuvwxyz0123456789';
/** The provider's sample user was created then; generated users follow a minute apart. */
const GENERATED_EPOCH_MS = Date.parse('2021-08-17T09:12:40Z');
export const FIRST_GENERATED_UID = 10000;

function randomText(random: () => number, alphabet: string, length: number): string {
  let text = '';
  for (let i = 0; i < length; i++) text += alphabet[Math.floor(random() * alphabet.length)];
  return text;
}

/**
 * `count` valid users, the same for the same seed: usernames like the provider's
 * (`usr-vceaHsJu`), unique; uid = gid, unique, from FIRST_GENERATED_UID; one boss, about
 * 5% admins, the rest members; NAS home `/public/shanhe/<username>`.
 */
export function generateUsers(count: number, seed: number): SimulatedUser[] {
  const random = seededRandom(seed);
  const taken = new Set<string>();
  const users: SimulatedUser[] = [];
  for (let i = 0; i < count; i++) {
    let username: string;
    do username = `usr-${randomText(random, LETTERS, 8)}`;
    while (taken.has(username));
    taken.add(username);
    const uid = FIRST_GENERATED_UID + i;
    users.push({
      username,
      uid,
      gid: uid,
      role: i === 0 ? 'boss' : random() < 0.05 ? 'admin' : 'member',
      hpcUserId: `hpcuser-${randomText(random, LOWER_ALNUM, 8)}`,
      createTime: formatTimestamp(new Date(GENERATED_EPOCH_MS + i * 60_000)),
    });
  }
  return users;
}

/**
 * One user with every field filled in the way the provider fills them: gid = uid, role
 * member, NAS home `/public/shanhe/<username>`, ids from the username; `over` replaces any.
 */
export function simulatedUser(username: string, uid: number, over: Partial<SimulatedUser> = {}): SimulatedUser {
  return {
    username,
    uid,
    gid: uid,
    role: 'member',
    nasMountPoint: `/public/shanhe/${username}`,
    userId: `usr-${username}`,
    hpcUserId: `hpcuser-${username}`,
    ...over,
  };
}

/** Reads a `--users` file; YAML is a superset of JSON, so one parser reads both. */
export async function loadUsersFile(path: string): Promise<ClusterSeed[]> {
  const text = await readFile(path, 'utf8');
  let document: unknown;
  try {
    document = parseYaml(text);
  } catch (err) {
    throw new Error(`${path}: not valid JSON or YAML: ${(err as Error).message}`, { cause: err });
  }
  const parsed = usersFileSchema.safeParse(document);
  if (!parsed.success) {
    throw new Error(`${path}: not a users file ({clusters: [{id, zone?, users: [...]}]}): ${z.prettifyError(parsed.error).replace(/\n/g, '; ')}`);
  }
  return parsed.data.clusters;
}
