import type { HpcClusterObject, HpcClusterSpec } from '../api/hpccluster.js';
import { controlledBy, usersTrusted } from '../domain/trusted-users.js';
import { parseUsersJson, SYNC_ID_ANNOTATION } from '../render/configmaps.js';
import type { CachedConfigMap } from '../controller/cached-objects.js';
import type { ConfigMapState } from '../controller/plan.js';

/**
 * Who a pod may run as: the claim (HpcCluster label + user annotation) resolved against the
 * operator's caches. Only data tenants cannot write decides the answer: the HpcCluster's
 * status (its usersDigest and skipped rows) and a users.json, read from its -users ConfigMap,
 * that matches that digest.
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

/** What resolving reads: the cached HpcCluster and its cached -users ConfigMap (metadata only). */
export interface ClaimSources {
  hpcCluster: HpcClusterObject | undefined;
  usersConfigMap: CachedConfigMap | undefined;
}

/** Reads a ConfigMap whole from the apiserver (the cache holds metadata only), not older than a version seen. */
export type ConfigMapReader = (key: { namespace: string; name: string }, notOlderThan: string | undefined) => Promise<ConfigMapState | undefined>;

/** What admission reads of a user, and no more: an index is held for every HpcCluster cached. */
interface IndexedUser {
  uid: number;
  gid: number;
  home: string;
}

type UserIndex = Map<string, IndexedUser>;

/**
 * Resolves claims from each HpcCluster's user list, indexed by the digest its users.json was
 * checked against, so an admission costs a map lookup. `prepare` reads, checks and indexes the
 * list as the objects arrive in the caches, so that no admission waits for it; a claim is
 * answered from the index of the digest status names now, and from nothing else.
 */
export class IdentityResolver {
  private readonly indexes = new Map<string, { usersDigest: string; index: UserIndex }>();

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
    const owned = controlledBy(usersConfigMap.metadata.ownerReferences, hpcCluster.metadata.uid);
    const known = this.indexes.get(`${namespace}/${clusterName}`);
    const index = owned && known?.usersDigest === usersDigest ? known.index : undefined;
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
   * Reads, checks and indexes an HpcCluster's user list ahead of any claim. True when the index
   * of its current usersDigest is held; false while the sources cannot be trusted (not synced
   * yet, or the ConfigMap not yet the one the digest names): a later event prepares again.
   */
  async prepare(namespace: string, clusterName: string, sources: ClaimSources, read: ConfigMapReader): Promise<boolean> {
    const { hpcCluster, usersConfigMap } = sources;
    const usersDigest = hpcCluster?.status?.usersDigest;
    if (hpcCluster === undefined || usersDigest === undefined || usersConfigMap === undefined) return false;
    const key = `${namespace}/${clusterName}`;
    if (this.indexes.get(key)?.usersDigest === usersDigest) return true;
    // Its sync id says whether this version can be the one status names: no read before it is.
    if (usersConfigMap.metadata.annotations?.[SYNC_ID_ANNOTATION] !== usersDigest) return false;
    const cm = await read({ namespace, name: usersConfigMap.metadata.name }, usersConfigMap.metadata.resourceVersion);
    if (!usersTrusted({ uid: hpcCluster.metadata.uid, usersDigest }, cm)) return false;
    const users = parseUsersJson(cm?.usersJson);
    if (users === undefined) return false;
    this.indexes.set(key, { usersDigest, index: new Map(users.map((u) => [u.username, { uid: u.uid, gid: u.gid, home: u.nasMountPoint }])) });
    return true;
  }

  /** Drops what is remembered of a deleted HpcCluster. */
  forget(namespace: string, clusterName: string): void {
    this.indexes.delete(`${namespace}/${clusterName}`);
  }
}
