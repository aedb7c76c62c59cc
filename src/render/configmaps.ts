import { createHash } from 'node:crypto';
import { z } from 'zod';
import { usersDigestOf } from '../domain/trusted-users.js';
import type { HpcUser } from '../domain/user.js';
import { API_VERSION, KIND, statusUserSchema } from '../api/hpccluster.js';

/**
 * The pure rendering of a user list into the two ConfigMaps SPEC defines. Output is
 * deterministic — users sorted by username, stable formatting — so an unchanged list
 * renders byte-identical data and the same content hash, and causes no write.
 */

export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by';
export const MANAGED_BY_VALUE = 'hpc-user-operator';
export const CLUSTER_LABEL = 'hpc.shanhe.com/cluster';
export const CONTENT_HASH_ANNOTATION = 'hpc.shanhe.com/content-hash';
/**
 * Both ConfigMaps of one sync carry the same sync id: the sha256 of the users.json it wrote
 * (status.usersDigest once status follows). A pair whose ids differ, or differ from status,
 * was left half-written and is synced again. Derived from the content, so an unchanged user
 * list keeps its id and causes no write.
 */
export const SYNC_ID_ANNOTATION = 'hpc.shanhe.com/sync-id';
/** The apiserver refuses a ConfigMap whose keys and values add up to more than 1 MiB. */
export const MAX_CONFIGMAP_BYTES = 1024 * 1024;
export const USERS_JSON_KEY = 'users.json';

export const usersConfigMapName = (clusterName: string): string => `${clusterName}-users`;
export const nssConfigMapName = (clusterName: string): string => `${clusterName}-nss`;

export interface RenderedConfigMap {
  name: string;
  data: Record<string, string>;
  /** sha256 of the data, recorded in the content-hash annotation. */
  contentHash: string;
  /** Bytes of keys and values, as the apiserver counts them against its 1 MiB limit. */
  size: number;
  /** The sync id both ConfigMaps of one user list carry (SYNC_ID_ANNOTATION). */
  syncId: string;
}

/** A rendered ConfigMap without its data: what is kept of a render once it is done. */
export type RenderSummary = Omit<RenderedConfigMap, 'data'>;

export const summaryOf = ({ data: _data, ...summary }: RenderedConfigMap): RenderSummary => summary;

const byUsername = (a: HpcUser, b: HpcUser): number => (a.username < b.username ? -1 : a.username > b.username ? 1 : 0);

/** The users in username order: the order of users.json, and of status.users. */
export function sortedUsers(users: readonly HpcUser[]): HpcUser[] {
  return [...users].sort(byUsername);
}

/** One user with its fields in SPEC's order, so the JSON text is stable. */
function canonicalUser(u: HpcUser): HpcUser {
  return { username: u.username, uid: u.uid, gid: u.gid, role: u.role, nasMountPoint: u.nasMountPoint, userId: u.userId, hpcUserId: u.hpcUserId };
}

const usersJsonOfSorted = (sorted: readonly HpcUser[]): string => `${JSON.stringify(sorted.map(canonicalUser), null, 2)}\n`;

/** The exact users.json text: sorted, canonical field order, two-space indent. */
export function renderUsersJson(users: readonly HpcUser[]): string {
  return usersJsonOfSorted(sortedUsers(users));
}

function usersDataOfSorted(sorted: readonly HpcUser[]): Record<string, string> {
  const data: Record<string, string> = { [USERS_JSON_KEY]: usersJsonOfSorted(sorted) };
  for (const u of sorted) {
    data[`${u.username}.uid`] = String(u.uid);
    data[`${u.username}.gid`] = String(u.gid);
    data[`${u.username}.nas`] = u.nasMountPoint;
  }
  return data;
}

export function renderUsersData(users: readonly HpcUser[]): Record<string, string> {
  return usersDataOfSorted(sortedUsers(users));
}

/** The members of each gid's group, in the order of `users`: a user belongs to the group of its gid. */
export function groupMembers(users: readonly HpcUser[]): Map<number, string[]> {
  const membersByGid = new Map<number, string[]>();
  for (const u of users) {
    const members = membersByGid.get(u.gid);
    if (members === undefined) membersByGid.set(u.gid, [u.username]);
    else members.push(u.username);
  }
  return membersByGid;
}

function nssDataOfSorted(sorted: readonly HpcUser[]): Record<string, string> {
  const passwd = sorted.map((u) => `${u.username}:x:${u.uid}:${u.gid}:${u.role}:${u.nasMountPoint}:/bin/sh\n`).join('');
  const nameByUid = new Map(sorted.map((u) => [u.uid, u.username]));
  const group = [...groupMembers(sorted).entries()]
    .sort(([a], [b]) => a - b)
    .map(([gid, members]) => `${nameByUid.get(gid) ?? `hpc${gid}`}:x:${gid}:${members.join(',')}\n`)
    .join('');
  return { group, passwd };
}

/** `passwd` and `group` files for name resolution inside containers. */
export function renderNssData(users: readonly HpcUser[]): Record<string, string> {
  return nssDataOfSorted(sortedUsers(users));
}

/**
 * The content hash and the size of ConfigMap data, from one pass over it: the keys in order,
 * each key and value length-prefixed (so that no two different maps hash the same text), all
 * hashed at once (one native call, not one per key).
 */
function measure(data: Readonly<Record<string, string>>): { contentHash: string; size: number } {
  const parts: string[] = [];
  let size = 0;
  for (const key of Object.keys(data).sort()) {
    const value = data[key] ?? '';
    const keyBytes = Buffer.byteLength(key);
    const valueBytes = Buffer.byteLength(value);
    size += keyBytes + valueBytes;
    parts.push(`${keyBytes}:${key}${valueBytes}:${value}`);
  }
  return { contentHash: `sha256:${createHash('sha256').update(parts.join('')).digest('hex')}`, size };
}

export function contentHashOf(data: Readonly<Record<string, string>>): string {
  return measure(data).contentHash;
}

function rendered(name: string, data: Record<string, string>, syncId: string): RenderedConfigMap {
  return { name, data, ...measure(data), syncId };
}

/** The sync id a user list renders with (both ConfigMaps carry it): the sha256 of its users.json. */
export function syncIdOf(users: readonly HpcUser[]): string {
  return usersDigestOf(renderUsersJson(users));
}

/** Both ConfigMaps of an HpcCluster, users first. */
export function renderConfigMaps(clusterName: string, users: readonly HpcUser[]): RenderedConfigMap[] {
  const sorted = sortedUsers(users);
  const usersData = usersDataOfSorted(sorted);
  const syncId = usersDigestOf(usersData[USERS_JSON_KEY] ?? '');
  return [rendered(usersConfigMapName(clusterName), usersData, syncId), rendered(nssConfigMapName(clusterName), nssDataOfSorted(sorted), syncId)];
}

/**
 * Users of the usual size one HpcCluster holds before its -users ConfigMap passes the limit:
 * 3,472 with 12-character usernames and /public/shanhe/<username> homes (README, "Large clusters").
 */
export const USUAL_MAX_USERS = 3400;

/** What is wrong when a ConfigMap would pass the apiserver's size limit, and which filter helps; or undefined. */
export function configMapSizeProblem(rendered: readonly RenderSummary[]): string | undefined {
  const tooLarge = rendered.find((cm) => cm.size > MAX_CONFIGMAP_BYTES);
  return tooLarge === undefined
    ? undefined
    : `ConfigMap ${tooLarge.name} would hold ${tooLarge.size} bytes, over the ${MAX_CONFIGMAP_BYTES}-byte limit ` +
        `(one HpcCluster holds about ${USUAL_MAX_USERS} users of the usual size): split the users over several HpcClusters ` +
        `of the same clusterId with spec.filter.searchWord (the API then returns fewer users per sync), or keep fewer with spec.filter.roles`;
}

/**
 * The user list a `users.json` holds — the last good sync — or undefined when the text is
 * missing or not what this operator writes (then nothing is assumed about earlier users).
 */
export function parseUsersJson(text: string | undefined): HpcUser[] | undefined {
  if (text === undefined) return undefined;
  try {
    const parsed = z.array(statusUserSchema).safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

export interface ConfigMapOwner {
  name: string;
  namespace: string;
  /** Absent when rendering without a cluster (`render`): no ownerReference then. */
  uid?: string;
}

export interface ConfigMapManifest {
  apiVersion: 'v1';
  kind: 'ConfigMap';
  metadata: {
    name: string;
    namespace: string;
    labels: Record<string, string>;
    annotations: Record<string, string>;
    ownerReferences?: {
      apiVersion: string;
      kind: string;
      name: string;
      uid: string;
      controller: boolean;
      blockOwnerDeletion: boolean;
    }[];
  };
  data: Record<string, string>;
}

/** The labels of HpcCluster `clusterName`'s ConfigMaps. */
export const configMapLabels = (clusterName: string): Record<string, string> => ({ [MANAGED_BY_LABEL]: MANAGED_BY_VALUE, [CLUSTER_LABEL]: clusterName });

/** The annotations of a rendered ConfigMap: its content hash and sync id. */
export const configMapAnnotations = (cm: RenderSummary): Record<string, string> => ({ [CONTENT_HASH_ANNOTATION]: cm.contentHash, [SYNC_ID_ANNOTATION]: cm.syncId });

/** The full ConfigMap object: labels, content hash and the controller ownerReference. */
export function configMapManifest(owner: ConfigMapOwner, cm: RenderedConfigMap): ConfigMapManifest {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: {
      name: cm.name,
      namespace: owner.namespace,
      labels: configMapLabels(owner.name),
      annotations: configMapAnnotations(cm),
      ...(owner.uid === undefined
        ? {}
        : {
            ownerReferences: [
              { apiVersion: API_VERSION, kind: KIND, name: owner.name, uid: owner.uid, controller: true, blockOwnerDeletion: true },
            ],
          }),
    },
    data: cm.data,
  };
}
