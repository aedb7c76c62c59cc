import type { HpcClusterObject, HpcClusterStatus } from '../api/hpccluster.js';
import { controlledBy, usersDigestOf } from '../domain/trusted-users.js';
import { CONTENT_HASH_ANNOTATION, contentHashOf, nssConfigMapName, SYNC_ID_ANNOTATION, USERS_JSON_KEY, usersConfigMapName } from '../render/configmaps.js';
import { keyOf, type ObjectKey } from './object-key.js';
import type { ConfigMapState } from './plan.js';

/**
 * The operator's ConfigMaps are watched as metadata only: a `-users` ConfigMap of 1,000 users
 * is some 250 KB, and each of the operator's own writes came back whole on the watch. What one
 * holds is known without keeping its data. Its annotations name the hash of its data and its
 * sync id, but tenants can write annotations too, so they are believed only at a
 * resourceVersion vouched for: one this process wrote, one status records as written
 * (status.configMapVersions, which outlives a restart), or one this process read and hashed.
 * Any other version is read whole before anything is decided from it.
 */

/** What a ConfigMap holds, as far as the controller needs to know. */
export interface ConfigMapContents {
  /** contentHashOf its data. */
  dataHash: string;
  /** sha256 hex of its users.json, when it has one (`<name>-users`). */
  usersDigest: string | undefined;
}

/** Which of an HpcCluster's two ConfigMaps. */
export type ConfigMapRole = keyof NonNullable<HpcClusterStatus['configMapVersions']>;

export const CONFIGMAP_ROLES: readonly ConfigMapRole[] = ['users', 'nss'];

/** The name of HpcCluster `owner`'s ConfigMap of `role`. */
export const configMapNameOf = (role: ConfigMapRole, owner: string): string => (role === 'users' ? usersConfigMapName(owner) : nssConfigMapName(owner));

/** What each role's name adds to its owner's: `-users`, `-nss`. */
const ROLE_SUFFIXES = CONFIGMAP_ROLES.map((role) => configMapNameOf(role, ''));

/**
 * Whether ConfigMap `name` may be one of some HpcCluster's two: `<owner>-users` or
 * `<owner>-nss`. Asked of every ConfigMap event in the watched namespaces.
 */
export const mayBeAnHpcClustersConfigMap = (name: string): boolean =>
  ROLE_SUFFIXES.some((suffix) => name.length > suffix.length && name.endsWith(suffix));

/** The role of ConfigMap `name` for HpcCluster `owner`, if it is one of its two. */
export function roleOf(name: string, owner: string): ConfigMapRole | undefined {
  return CONFIGMAP_ROLES.find((role) => configMapNameOf(role, owner) === name);
}

/** What a ConfigMap read whole holds. */
export function contentsOfData(data: Readonly<Record<string, string>>): ConfigMapContents {
  const usersJson = data[USERS_JSON_KEY];
  return { dataHash: contentHashOf(data), usersDigest: usersJson === undefined ? undefined : usersDigestOf(usersJson) };
}

/**
 * What its annotations say it holds: the truth at a version the operator wrote, where the
 * content hash is that of the data written and `-users`' sync id is its users.json's sha256.
 */
export function contentsClaimed(annotations: Readonly<Record<string, string>> | undefined, role: ConfigMapRole): ConfigMapContents | undefined {
  const dataHash = annotations?.[CONTENT_HASH_ANNOTATION];
  if (dataHash === undefined) return undefined;
  return { dataHash, usersDigest: role === 'users' ? annotations?.[SYNC_ID_ANNOTATION] : undefined };
}

/**
 * The contents of a cached ConfigMap when vouched for: `known` (this process wrote or read
 * that version), or its annotations when status records that version as written.
 */
export function vouchedContents(
  cm: { resourceVersion?: string | undefined; annotations?: Readonly<Record<string, string>> | undefined },
  role: ConfigMapRole,
  known: ConfigMapContents | undefined,
  status: HpcClusterStatus | undefined,
): ConfigMapContents | undefined {
  if (known !== undefined) return known;
  const written = status?.configMapVersions?.[role];
  return written !== undefined && written === cm.resourceVersion ? contentsClaimed(cm.annotations, role) : undefined;
}

/**
 * Whether a ConfigMap read whole is in order for its owner: unedited (its content hash names
 * its data), carrying the sync id status.usersDigest names and, for `-users`, holding the
 * users.json that digest vouches for. Before a first sync nothing is vouched for, and that
 * sync writes it anyway.
 */
export function contentsInOrder(
  annotations: Readonly<Record<string, string>> | undefined,
  contents: ConfigMapContents,
  role: ConfigMapRole,
  owner: Pick<HpcClusterObject, 'status'> | undefined,
): boolean {
  if (contents.dataHash !== annotations?.[CONTENT_HASH_ANNOTATION]) return false;
  const digest = owner?.status?.usersDigest;
  if (digest === undefined) return true;
  return annotations[SYNC_ID_ANNOTATION] === digest && (role !== 'users' || contents.usersDigest === digest);
}

/**
 * The versions status should record, so that a restart believes them without a read: those of
 * the owner's own ConfigMaps whose contents are known and whose annotations say so truly (a
 * version another writer made, read whole and found unedited, counts as much as one written).
 */
export function versionsWorthRecording(
  configMaps: Partial<Record<ConfigMapRole, ConfigMapState | undefined>>,
  ownerUid: string | undefined,
): Partial<Record<ConfigMapRole, string>> {
  const versions: Partial<Record<ConfigMapRole, string>> = {};
  for (const role of CONFIGMAP_ROLES) {
    const cm = configMaps[role];
    if (cm?.resourceVersion === undefined || cm.dataHash === undefined) continue;
    const claimed = contentsClaimed(cm.annotations, role);
    if (controlledBy(cm.ownerReferences, ownerUid) && claimed?.dataHash === cm.dataHash && claimed.usersDigest === cm.usersDigest) versions[role] = cm.resourceVersion;
  }
  return versions;
}

/** A write in flight: what it replaces and writes, and its answer (the version it got; undefined if it failed). */
export interface WriteInFlight {
  replacing: string | undefined;
  syncId: string | undefined;
  answer: Promise<string | undefined>;
}

interface Entry {
  /** Undefined while a write is in flight. */
  resourceVersion: string | undefined;
  contents: ConfigMapContents;
  write?: WriteInFlight & { settle: (resourceVersion: string | undefined) => void };
}

/** What this process knows its ConfigMaps to hold, by the version it knows it at. */
export class ConfigMapLedger {
  private readonly entries = new Map<string, Entry>();

  /** Before a write is sent: its own watch event may arrive before its answer. */
  writing(key: ObjectKey, contents: ConfigMapContents, syncId: string | undefined, replacing: string | undefined): void {
    let settle!: (resourceVersion: string | undefined) => void;
    const answer = new Promise<string | undefined>((resolve) => (settle = resolve));
    this.entries.get(keyOf(key))?.write?.settle(undefined);
    this.entries.set(keyOf(key), { resourceVersion: undefined, contents, write: { replacing, syncId, answer, settle } });
  }

  /** The write's answer: the version it got, from which on that version is known; undefined when it failed. */
  written(key: ObjectKey, resourceVersion: string | undefined): void {
    const entry = this.entries.get(keyOf(key));
    if (entry?.write === undefined) return;
    entry.write.settle(resourceVersion);
    if (resourceVersion === undefined) this.entries.delete(keyOf(key));
    else this.entries.set(keyOf(key), { resourceVersion, contents: entry.contents });
  }

  /** A whole read: what that version holds. */
  read(key: ObjectKey, resourceVersion: string | undefined, contents: ConfigMapContents): void {
    const entry = this.entries.get(keyOf(key));
    if (resourceVersion !== undefined && entry?.write === undefined) this.entries.set(keyOf(key), { resourceVersion, contents });
  }

  /** What the ConfigMap holds at `resourceVersion`, when this process knows. */
  at(key: ObjectKey, resourceVersion: string | undefined): ConfigMapContents | undefined {
    const entry = this.entries.get(keyOf(key));
    return entry?.resourceVersion !== undefined && entry.resourceVersion === resourceVersion ? entry.contents : undefined;
  }

  /**
   * The write in flight a watched version may be: the version it replaces (an event from
   * before it) or one carrying what it writes. Which one it is, its answer tells: writes are
   * made at the version they replace (or as creates), so no other writer's version comes
   * between that one and the write's own.
   */
  inFlight(key: ObjectKey, cm: { resourceVersion?: string | undefined; annotations?: Readonly<Record<string, string>> | undefined }): WriteInFlight | undefined {
    const entry = this.entries.get(keyOf(key));
    const write = entry?.write;
    if (entry === undefined || write === undefined) return undefined;
    const carriesIt = cm.annotations?.[CONTENT_HASH_ANNOTATION] === entry.contents.dataHash && cm.annotations[SYNC_ID_ANNOTATION] === write.syncId;
    return cm.resourceVersion === write.replacing || carriesIt ? write : undefined;
  }

  forget(key: ObjectKey): void {
    this.entries.get(keyOf(key))?.write?.settle(undefined);
    this.entries.delete(keyOf(key));
  }
}
