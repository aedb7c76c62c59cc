import { posix } from 'node:path';
import type { V1Container, V1EnvVar, V1Pod, V1PodSecurityContext, V1Volume, V1VolumeMount } from '@kubernetes/client-node';
import type { PodIdentity } from './identity.js';

/**
 * The pure part of admission: what a pod that runs as `identity` must look like, as a minimal
 * RFC 6902 patch, or why it cannot. Only unset fields are filled; a field the pod set to a
 * different uid or gid is a refusal naming it. Applying the patch and admitting the result
 * again yields an empty patch.
 */

export const USER_ANNOTATION = 'hpc.shanhe.com/user';
export const IDENTITY_ANNOTATION = 'hpc.shanhe.com/identity';
export const NSS_ANNOTATION = 'hpc.shanhe.com/nss';
export const FS_GROUP_ANNOTATION = 'hpc.shanhe.com/fs-group';
export const NSS_VOLUME = 'hpc-nss';
export const HOME_VOLUME = 'hpc-home';

export type JsonPatchOperation = { op: 'add' | 'replace'; path: string; value: unknown };

export type PodDecision = { allowed: true; patch: JsonPatchOperation[] } | { allowed: false; message: string };

/** `<cluster>/<user>:<uid>:<gid>`, the stamp a pod carries once admitted. */
export const identityStamp = (identity: Pick<PodIdentity, 'cluster' | 'username' | 'uid' | 'gid'>): string =>
  `${identity.cluster}/${identity.username}:${identity.uid}:${identity.gid}`;

/** The uid and gid a stamp records, or undefined when it is not one. */
export function parseIdentityStamp(stamp: string | undefined): { cluster: string; username: string; uid: number; gid: number } | undefined {
  const match = /^([^/]+)\/(.+):(\d+):(\d+)$/.exec(stamp ?? '');
  if (match === null) return undefined;
  return { cluster: match[1] ?? '', username: match[2] ?? '', uid: Number(match[3]), gid: Number(match[4]) };
}

/** RFC 6901: `~` and `/` inside a key. */
const pointer = (key: string): string => key.replace(/~/g, '~0').replace(/\//g, '~1');

type ContainerList = 'containers' | 'initContainers' | 'ephemeralContainers';
const CONTAINER_LISTS: readonly ContainerList[] = ['containers', 'initContainers', 'ephemeralContainers'];
const LIST_LABEL: Record<ContainerList, string> = { containers: 'container', initContainers: 'init container', ephemeralContainers: 'ephemeral container' };

/** Every uid or gid the pod sets that differs from the identity's, as fix-it messages. */
export function identityConflicts(pod: V1Pod, identity: Pick<PodIdentity, 'username' | 'uid' | 'gid'>, checkFsGroup: boolean): string[] {
  const who = `user ${identity.username} (uid ${identity.uid}, gid ${identity.gid})`;
  const problems: string[] = [];
  const check = (value: number | undefined, wanted: number, field: string, what: string) => {
    if (value === undefined || value === wanted) return;
    problems.push(value === 0 && what === 'uid' ? `${field} is 0 (root), but the pod runs as ${who}: remove ${field}` : `${field} is ${value}, but the pod runs as ${who}: remove ${field} or set it to ${wanted}`);
  };
  const podContext = pod.spec?.securityContext;
  check(podContext?.runAsUser, identity.uid, 'spec.securityContext.runAsUser', 'uid');
  check(podContext?.runAsGroup, identity.gid, 'spec.securityContext.runAsGroup', 'gid');
  if (checkFsGroup) check(podContext?.fsGroup, identity.gid, 'spec.securityContext.fsGroup', 'gid');
  for (const list of CONTAINER_LISTS) {
    (pod.spec?.[list] ?? []).forEach((container, i) => {
      const at = `spec.${list}[${i}] (${LIST_LABEL[list]} ${container.name}).securityContext`;
      check(container.securityContext?.runAsUser, identity.uid, `${at}.runAsUser`, 'uid');
      check(container.securityContext?.runAsGroup, identity.gid, `${at}.runAsGroup`, 'gid');
    });
  }
  return problems;
}

function desiredVolumes(identity: PodIdentity, nss: boolean): V1Volume[] {
  const volumes: V1Volume[] = [];
  if (nss) volumes.push({ name: NSS_VOLUME, configMap: { name: `${identity.cluster}-nss` } });
  const home = identity.homeVolume;
  if (home?.persistentVolumeClaim !== undefined) {
    volumes.push({ name: HOME_VOLUME, persistentVolumeClaim: { claimName: home.persistentVolumeClaim.claimName } });
  } else if (home?.nfs !== undefined) {
    volumes.push({ name: HOME_VOLUME, nfs: { server: home.nfs.server, path: home.nfs.path } });
  }
  return volumes;
}

function desiredMounts(identity: PodIdentity, nss: boolean): V1VolumeMount[] {
  const mounts: V1VolumeMount[] = [];
  if (nss) {
    mounts.push({ name: NSS_VOLUME, mountPath: '/etc/passwd', subPath: 'passwd', readOnly: true });
    mounts.push({ name: NSS_VOLUME, mountPath: '/etc/group', subPath: 'group', readOnly: true });
  }
  if (identity.homeVolume !== undefined) {
    // The export or claim holds every nasMountPoint under its root.
    mounts.push({ name: HOME_VOLUME, mountPath: identity.home, subPath: posix.relative('/', identity.home) });
  }
  return mounts;
}

const sameJson = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);

export interface PodIdentityOptions {
  /** Mount /etc/passwd and /etc/group from `<cluster>-nss` (the pod's `hpc.shanhe.com/nss` is not "false"). */
  nss: boolean;
  /** Set fsGroup too (`hpc.shanhe.com/fs-group: "true"`). */
  fsGroup: boolean;
}

export function podIdentityOptions(pod: V1Pod): PodIdentityOptions {
  const annotations = pod.metadata?.annotations ?? {};
  return { nss: annotations[NSS_ANNOTATION] !== 'false', fsGroup: annotations[FS_GROUP_ANNOTATION] === 'true' };
}

/** The patch that gives `pod` the identity, or the refusal that says what to change. */
export function applyIdentity(pod: V1Pod, identity: PodIdentity, options: PodIdentityOptions): PodDecision {
  const conflicts = identityConflicts(pod, identity, options.fsGroup);
  const volumes = desiredVolumes(identity, options.nss);
  for (const volume of volumes) {
    const existing = pod.spec?.volumes?.find((v) => v.name === volume.name);
    if (existing !== undefined && !sameJson(existing, volume)) {
      conflicts.push(`the volume name ${volume.name} is reserved for the identity of user ${identity.username}: rename spec.volumes "${volume.name}"`);
    }
  }
  if (conflicts.length > 0) return { allowed: false, message: conflicts.join('; ') };

  const patch: JsonPatchOperation[] = [];
  const stamp = identityStamp(identity);
  const annotations = pod.metadata?.annotations;
  if (annotations === undefined) patch.push({ op: 'add', path: '/metadata/annotations', value: { [IDENTITY_ANNOTATION]: stamp } });
  else if (annotations[IDENTITY_ANNOTATION] !== stamp) {
    patch.push({ op: annotations[IDENTITY_ANNOTATION] === undefined ? 'add' : 'replace', path: `/metadata/annotations/${pointer(IDENTITY_ANNOTATION)}`, value: stamp });
  }

  const context: V1PodSecurityContext = {
    runAsUser: identity.uid,
    runAsGroup: identity.gid,
    runAsNonRoot: true,
    supplementalGroups: identity.supplementalGroups,
    ...(options.fsGroup ? { fsGroup: identity.gid } : {}),
  };
  const current = pod.spec?.securityContext;
  if (current === undefined) patch.push({ op: 'add', path: '/spec/securityContext', value: context });
  else {
    for (const [field, value] of Object.entries(context)) {
      if (current[field as keyof V1PodSecurityContext] === undefined) patch.push({ op: 'add', path: `/spec/securityContext/${field}`, value });
    }
  }

  const missingVolumes = volumes.filter((v) => pod.spec?.volumes?.some((existing) => existing.name === v.name) !== true);
  if (pod.spec?.volumes === undefined) {
    if (missingVolumes.length > 0) patch.push({ op: 'add', path: '/spec/volumes', value: missingVolumes });
  } else for (const volume of missingVolumes) patch.push({ op: 'add', path: '/spec/volumes/-', value: volume });

  const env: V1EnvVar[] = [
    { name: 'HOME', value: identity.home },
    { name: 'USER', value: identity.username },
    { name: 'LOGNAME', value: identity.username },
  ];
  const mounts = desiredMounts(identity, options.nss);
  for (const list of ['containers', 'initContainers'] as const) {
    (pod.spec?.[list] ?? []).forEach((container, i) => patch.push(...containerPatch(container, `/spec/${list}/${i}`, env, mounts)));
  }
  return { allowed: true, patch };
}

/** Appends what the container lacks: unset variables, and mounts at paths it does not use. */
function containerPatch(container: V1Container, at: string, env: readonly V1EnvVar[], mounts: readonly V1VolumeMount[]): JsonPatchOperation[] {
  const patch: JsonPatchOperation[] = [];
  const appendTo = (field: 'env' | 'volumeMounts', items: readonly unknown[], present: boolean) => {
    if (items.length === 0) return;
    if (!present) patch.push({ op: 'add', path: `${at}/${field}`, value: items });
    else for (const item of items) patch.push({ op: 'add', path: `${at}/${field}/-`, value: item });
  };
  appendTo(
    'env',
    env.filter((e) => container.env?.some((existing) => existing.name === e.name) !== true),
    container.env !== undefined,
  );
  appendTo(
    'volumeMounts',
    mounts.filter((m) => container.volumeMounts?.some((existing) => existing.mountPath === m.mountPath) !== true),
    container.volumeMounts !== undefined,
  );
  return patch;
}
