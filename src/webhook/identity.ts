import type { HpcClusterObject, HpcClusterSpec } from '../api/hpccluster.js';
import { trustedUsersJson } from '../domain/trusted-users.js';
import { parseUsersJson } from '../render/configmaps.js';
import type { CachedConfigMap } from '../controller/cached-objects.js';

/**
 * Who a pod may run as: the claim (HpcCluster label + user annotation) resolved against the
 * operator's caches. Only data tenants cannot write decides the answer: the HpcCluster's
 * status (its usersDigest and skipped rows) and a -users ConfigMap that matches that digest.
 */

export type HomeVolume = NonNullable<NonNullable<HpcClusterSpec['podIdentity']>['home']>;

export interface PodIdentity {
  cluster: string;
  username: string;
  uid: number;
  gid: number;
  /** Every gid whose group lists the user: as in the -nss group file, the group of its own gid. */
  supplementalGroups: number[];
  /** The user's nasMountPoint: HOME, and where the home volume is mounted. */
  home: string;
  /** The HpcCluster's spec.podIdentity.home, when it names one. */
  homeVolume?: HomeVolume;
}

export type Resolution = { ok: true; identity: PodIdentity } | { ok: false; message: string; retry?: boolean };

/** What resolving reads: the cached HpcCluster and its cached -users ConfigMap. */
export interface ClaimSources {
  hpcCluster: HpcClusterObject | undefined;
  /** As the cache holds it (the cache replaces objects, never mutates them). */
  usersConfigMap: CachedConfigMap | undefined;
}

/** What admission reads of a user, and no more: an index is held for every HpcCluster cached. */
interface IndexedUser {
  uid: number;
  gid: number;
  home: string;
}

type UserIndex = Map<string, IndexedUser>;

/**
 * Resolves claims, remembering each HpcCluster's parsed user list by the digest it was
 * checked against, so an admission costs a map lookup, not a parse or a hash of users.json.
 * The check itself is memoised per cached ConfigMap object: the caches replace, never mutate.
 * `prepare` does the check and the parse as the objects arrive in the caches, so that no
 * admission pays for them (the first claim of each HpcCluster did, and with many HpcClusters
 * that was the slow tail).
 */
export class IdentityResolver {
  private readonly indexes = new Map<string, { usersDigest: string; index: UserIndex }>();
  private readonly verified = new WeakMap<CachedConfigMap, { owner: string; usersDigest: string; usersJson: string | undefined }>();

  resolve(namespace: string, clusterName: string, username: string, sources: ClaimSources): Resolution {
    const { hpcCluster } = sources;
    const named = `HpcCluster ${namespace}/${clusterName}`;
    if (hpcCluster === undefined) {
      return {
        ok: false,
        message: `the label hpc.shanhe.com/cluster names ${named}, which does not exist in this namespace: fix the label or create the HpcCluster`,
      };
    }
    const usersDigest = hpcCluster.status?.usersDigest;
    if (usersDigest === undefined) {
      return { ok: false, retry: true, message: `${named} has not synced its users yet (kubectl get hpcc ${clusterName} -n ${namespace}): retry once it is Ready` };
    }
    const usersConfigMap = sources.usersConfigMap;
    if (usersConfigMap === undefined) {
      return { ok: false, retry: true, message: `ConfigMap ${clusterName}-users of ${named} is missing (the operator recreates it): retry shortly` };
    }
    const index = this.index(`${namespace}/${clusterName}`, hpcCluster, usersDigest, usersConfigMap);
    if (index === undefined) {
      return {
        ok: false,
        retry: true,
        message: `the user list of ${named} does not match what the operator wrote (ConfigMap ${clusterName}-users was altered or replaced; the operator repairs it): retry shortly`,
      };
    }
    const user = index.get(username);
    if (user === undefined) {
      const skipped = hpcCluster.status?.skippedUsers?.find((s) => s.username === username);
      return {
        ok: false,
        message:
          skipped === undefined
            ? `user "${username}" (annotation hpc.shanhe.com/user) is not a user of ${named}: check the name against its status.users`
            : `user "${username}" of ${named} was skipped at the last sync: ${skipped.reason}`,
      };
    }
    const homeVolume = (hpcCluster.spec as HpcClusterSpec | undefined)?.podIdentity?.home;
    return {
      ok: true,
      identity: {
        cluster: clusterName,
        username,
        uid: user.uid,
        gid: user.gid,
        supplementalGroups: [user.gid],
        home: user.home,
        ...(homeVolume === undefined ? {} : { homeVolume }),
      },
    };
  }

  /**
   * Checks and indexes an HpcCluster's user list ahead of any claim. True when the index of its
   * current usersDigest is held; false while the sources cannot be trusted (not synced yet, or
   * the ConfigMap not yet the one the digest names): a claim then checks again.
   */
  prepare(namespace: string, clusterName: string, sources: ClaimSources): boolean {
    const usersDigest = sources.hpcCluster?.status?.usersDigest;
    if (sources.hpcCluster === undefined || usersDigest === undefined || sources.usersConfigMap === undefined) return false;
    return this.index(`${namespace}/${clusterName}`, sources.hpcCluster, usersDigest, sources.usersConfigMap) !== undefined;
  }

  /** Drops what is remembered of a deleted HpcCluster. */
  forget(namespace: string, clusterName: string): void {
    this.indexes.delete(`${namespace}/${clusterName}`);
  }

  private index(key: string, hpcCluster: HpcClusterObject, usersDigest: string, cm: CachedConfigMap): UserIndex | undefined {
    const usersJson = this.trusted(hpcCluster, usersDigest, cm);
    if (usersJson === undefined) return undefined;
    const known = this.indexes.get(key);
    if (known?.usersDigest === usersDigest) return known.index;
    const users = parseUsersJson(usersJson);
    if (users === undefined) return undefined;
    const index: UserIndex = new Map(users.map((u) => [u.username, { uid: u.uid, gid: u.gid, home: u.nasMountPoint }]));
    this.indexes.set(key, { usersDigest, index });
    return index;
  }

  /** The ConfigMap's users.json when trusted (see domain/trusted-users.ts), else undefined. */
  private trusted(hpcCluster: HpcClusterObject, usersDigest: string, cm: CachedConfigMap): string | undefined {
    const owner = hpcCluster.metadata.uid ?? '';
    const memo = this.verified.get(cm);
    if (memo?.owner === owner && memo.usersDigest === usersDigest) return memo.usersJson;
    const usersJson = trustedUsersJson({ uid: owner, usersDigest }, { ownerReferences: cm.metadata.ownerReferences, usersJson: cm.usersJson });
    this.verified.set(cm, { owner, usersDigest, usersJson });
    return usersJson;
  }
}
