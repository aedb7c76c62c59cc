import { describe, expect, it } from '@jest/globals';
import type { V1Pod } from '@kubernetes/client-node';
import { cachedConfigMap, type CachedConfigMap } from '../../../src/controller/cached-objects.js';
import type { HpcClusterObject } from '../../../src/api/hpccluster.js';
import { nextStatus } from '../../../src/controller/status.js';
import type { HpcUser } from '../../../src/domain/user.js';
import { configMapManifest, renderConfigMaps, syncIdOf } from '../../../src/render/configmaps.js';
import { admit, review, type AdmissionRequest } from '../../../src/webhook/admission.js';
import { IdentityResolver, type ConfigMapReader } from '../../../src/webhook/identity.js';
import { contentsOfData } from '../../../src/controller/configmap-contents.js';
import type { ConfigMapState } from '../../../src/controller/plan.js';
import { applyPatch, patchOf } from '../../support/json-patch.js';

const ann: HpcUser = { username: 'ann', uid: 30001, gid: 30000, role: 'member', nasMountPoint: '/public/shanhe/ann', userId: 'usr-ann', hpcUserId: 'hpcuser-ann' };
const ben: HpcUser = { username: 'ben', uid: 30000, gid: 30000, role: 'admin', nasMountPoint: '/public/shanhe/ben', userId: 'usr-ben', hpcUserId: 'hpcuser-ben' };

function hpcCluster(name: string, users: HpcUser[] | undefined, spec: Record<string, unknown> = {}): HpcClusterObject {
  return {
    apiVersion: 'hpc.shanhe.com/v1alpha1',
    kind: 'HpcCluster',
    metadata: { name, namespace: 'research', uid: `uid-${name}` },
    spec: { clusterId: 'hpc-1', zone: 'jinan1a', credentialsSecretRef: { name: 'key' }, ...spec },
    ...(users === undefined
      ? {}
      : { status: nextStatus(undefined, 1, { reason: 'Synced', users, skipped: [{ username: 'bad:name', reason: 'username has characters outside [A-Za-z0-9._-]' }], usersDigest: syncIdOf(users) }, new Date(0), []) }),
  };
}

/** What the apiserver answers for each cached ConfigMap read whole. */
const wholeOf = new WeakMap<CachedConfigMap, ConfigMapState>();

/** The -users ConfigMap the operator writes, as the cache holds it (metadata); wholeOf has the rest. */
function usersConfigMap(object: HpcClusterObject, users: HpcUser[]): CachedConfigMap {
  const [rendered] = renderConfigMaps(object.metadata.name ?? '', users);
  if (rendered === undefined) throw new Error('no users ConfigMap rendered');
  const manifest = configMapManifest({ name: object.metadata.name ?? '', namespace: 'research', uid: object.metadata.uid ?? '' }, rendered);
  const cached = cachedConfigMap(manifest);
  wholeOf.set(cached, { ...cached.metadata, ...contentsOfData(manifest.data), usersJson: manifest.data['users.json'] ?? '' });
  return cached;
}

/** Reads a ConfigMap of `configMaps` whole, as the apiserver would (each as it is when read). */
const reader =
  (configMaps: CachedConfigMap[]): ConfigMapReader =>
  (key) => {
    const cm = configMaps.find((c) => c.metadata.name === key.name);
    return Promise.resolve(cm === undefined ? undefined : { ...wholeOf.get(cm), ownerReferences: cm.metadata.ownerReferences.map((ref) => ({ uid: ref.uid, controller: ref.controller === true })) });
  };

/** The caches of one namespace, "research": HpcClusters and ConfigMaps by name, each index prepared as the webhook does. */
async function caches(clusters: HpcClusterObject[], configMaps: CachedConfigMap[]) {
  const resolver = new IdentityResolver();
  const sources = (cluster: string) => ({
    hpcCluster: clusters.find((c) => c.metadata.name === cluster),
    usersConfigMap: configMaps.find((cm) => cm.metadata.name === `${cluster}-users`),
  });
  for (const c of clusters) await resolver.prepare('research', c.metadata.name ?? '', sources(c.metadata.name ?? ''), reader(configMaps));
  return (namespace: string, cluster: string, username: string) =>
    resolver.resolve(namespace, cluster, username, namespace === 'research' ? sources(cluster) : { hpcCluster: undefined, usersConfigMap: undefined });
}

const chemLab = hpcCluster('chem-lab', [ann, ben]);
const synced = await caches([chemLab], [usersConfigMap(chemLab, [ann, ben])]);

function pod(spec: Partial<NonNullable<V1Pod['spec']>> = {}, annotations: Record<string, string> = {}, cluster = 'chem-lab'): V1Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { generateName: 'job-', labels: { 'hpc.shanhe.com/cluster': cluster }, annotations: { 'hpc.shanhe.com/user': 'ann', ...annotations } },
    spec: { containers: [{ name: 'main', image: 'busybox' }], ...spec },
  };
}

const create = (object: V1Pod, namespace = 'research'): AdmissionRequest => ({
  uid: 'req-1',
  kind: { group: '', version: 'v1', kind: 'Pod' },
  resource: { group: '', version: 'v1', resource: 'pods' },
  namespace,
  operation: 'CREATE',
  object,
});


function admitted(object: V1Pod, resolve = synced): V1Pod {
  const response = admit(create(object), resolve, true);
  expect(response).toMatchObject({ allowed: true });
  return applyPatch(object, patchOf(response));
}

function refusal(object: V1Pod, resolve = synced, namespace = 'research'): { code: number | undefined; message: string } {
  const response = admit(create(object, namespace), resolve, true);
  expect(response.allowed).toBe(false);
  return { code: response.status?.code, message: response.status?.message ?? '' };
}

const nssMounts = [
  { name: 'hpc-nss', mountPath: '/etc/passwd', subPath: 'passwd', readOnly: true },
  { name: 'hpc-nss', mountPath: '/etc/group', subPath: 'group', readOnly: true },
];
const userEnv = [
  { name: 'HOME', value: '/public/shanhe/ann' },
  { name: 'USER', value: 'ann' },
  { name: 'LOGNAME', value: 'ann' },
];

describe('a pod that claims a user', () => {
  it('gets every field of the identity, and the stamp', () => {
    const result = admitted(pod({ initContainers: [{ name: 'setup', image: 'busybox' }] }));
    expect(result.metadata?.annotations?.['hpc.shanhe.com/identity']).toBe('chem-lab/ann:30001:30000');
    expect(result.spec?.securityContext).toEqual({ runAsUser: 30001, runAsGroup: 30000, runAsNonRoot: true, supplementalGroups: [30000] });
    expect(result.spec?.volumes).toEqual([{ name: 'hpc-nss', configMap: { name: 'chem-lab-nss' } }]);
    for (const container of [...(result.spec?.containers ?? []), ...(result.spec?.initContainers ?? [])]) {
      expect(container.env).toEqual(userEnv);
      expect(container.volumeMounts).toEqual(nssMounts);
      expect(container.securityContext).toBeUndefined();
    }
  });

  it('admitted again, changes nothing', () => {
    const once = admitted(pod({ initContainers: [{ name: 'setup', image: 'busybox' }] }, { 'hpc.shanhe.com/fs-group': 'true' }));
    expect(admit(create(once), synced, true)).toEqual({ uid: 'req-1', allowed: true });
  });

  it('keeps what the pod set itself and adds only what is missing, to existing lists', () => {
    const own = pod({
      securityContext: { runAsUser: 30001, seccompProfile: { type: 'RuntimeDefault' } },
      volumes: [{ name: 'scratch', emptyDir: {} }],
      containers: [
        {
          name: 'main',
          image: 'busybox',
          env: [{ name: 'HOME', value: '/scratch' }],
          volumeMounts: [{ name: 'scratch', mountPath: '/etc/group' }],
          securityContext: { runAsGroup: 30000, allowPrivilegeEscalation: false },
        },
      ],
    });
    const response = admit(create(own), synced, true);
    expect(patchOf(response)).toEqual([
      { op: 'add', path: '/metadata/annotations/hpc.shanhe.com~1identity', value: 'chem-lab/ann:30001:30000' },
      { op: 'add', path: '/spec/securityContext/runAsGroup', value: 30000 },
      { op: 'add', path: '/spec/securityContext/runAsNonRoot', value: true },
      { op: 'add', path: '/spec/securityContext/supplementalGroups', value: [30000] },
      { op: 'add', path: '/spec/volumes/-', value: { name: 'hpc-nss', configMap: { name: 'chem-lab-nss' } } },
      { op: 'add', path: '/spec/containers/0/env/-', value: { name: 'USER', value: 'ann' } },
      { op: 'add', path: '/spec/containers/0/env/-', value: { name: 'LOGNAME', value: 'ann' } },
      { op: 'add', path: '/spec/containers/0/volumeMounts/-', value: nssMounts[0] },
    ]);
    const result = applyPatch(own, patchOf(response));
    expect(result.spec?.securityContext?.runAsUser).toBe(30001);
    expect(result.spec?.containers[0]?.env?.[0]).toEqual({ name: 'HOME', value: '/scratch' });
  });

  it('a pod whose runAsUser and runAsGroup already match is not touched there', () => {
    const result = admitted(pod({ securityContext: { runAsUser: 30001, runAsGroup: 30000, runAsNonRoot: true, supplementalGroups: [5] } }));
    expect(result.spec?.securityContext).toEqual({ runAsUser: 30001, runAsGroup: 30000, runAsNonRoot: true, supplementalGroups: [5] });
  });

  it('replaces a stamp copied from another pod', () => {
    const result = admitted(pod({}, { 'hpc.shanhe.com/identity': 'chem-lab/ben:30000:30000' }));
    expect(result.metadata?.annotations?.['hpc.shanhe.com/identity']).toBe('chem-lab/ann:30001:30000');
  });

  it('sets fsGroup only when asked, and refuses a different one then', () => {
    expect(admitted(pod()).spec?.securityContext?.fsGroup).toBeUndefined();
    expect(admitted(pod({}, { 'hpc.shanhe.com/fs-group': 'true' })).spec?.securityContext?.fsGroup).toBe(30000);
    expect(admitted(pod({ securityContext: { fsGroup: 7 } })).spec?.securityContext?.fsGroup).toBe(7);
    expect(refusal(pod({ securityContext: { fsGroup: 7 } }, { 'hpc.shanhe.com/fs-group': 'true' })).message).toContain('spec.securityContext.fsGroup is 7');
  });

  it('mounts no name files with hpc.shanhe.com/nss: "false"', () => {
    const result = admitted(pod({}, { 'hpc.shanhe.com/nss': 'false' }));
    expect(result.spec?.volumes).toBeUndefined();
    expect(result.spec?.containers[0]?.volumeMounts).toBeUndefined();
    expect(result.spec?.containers[0]?.env).toEqual(userEnv);
  });

  it('mounts the NAS home from a PersistentVolumeClaim with subPath', async () => {
    const object = hpcCluster('chem-lab', [ann], { podIdentity: { home: { persistentVolumeClaim: { claimName: 'chem-nas' } } } });
    const result = admitted(pod({}, { 'hpc.shanhe.com/nss': 'false' }), await caches([object], [usersConfigMap(object, [ann])]));
    expect(result.spec?.volumes).toEqual([{ name: 'hpc-home', persistentVolumeClaim: { claimName: 'chem-nas' } }]);
    expect(result.spec?.containers[0]?.volumeMounts).toEqual([{ name: 'hpc-home', mountPath: '/public/shanhe/ann', subPath: 'public/shanhe/ann' }]);
  });

  it('mounts the NAS home from an NFS export with subPath', async () => {
    const object = hpcCluster('chem-lab', [ann], { podIdentity: { home: { nfs: { server: 'nas.example.internal', path: '/export' } } } });
    const result = admitted(pod(), await caches([object], [usersConfigMap(object, [ann])]));
    expect(result.spec?.volumes).toEqual([
      { name: 'hpc-nss', configMap: { name: 'chem-lab-nss' } },
      { name: 'hpc-home', nfs: { server: 'nas.example.internal', path: '/export' } },
    ]);
    expect(result.spec?.containers[0]?.volumeMounts).toEqual([...nssMounts, { name: 'hpc-home', mountPath: '/public/shanhe/ann', subPath: 'public/shanhe/ann' }]);
  });

  it('refuses a volume of its own under a reserved name', () => {
    expect(refusal(pod({ volumes: [{ name: 'hpc-nss', configMap: { name: 'forged-nss' } }] })).message).toContain('rename spec.volumes "hpc-nss"');
  });
});

describe('refusals name the fix', () => {
  it.each([
    ['pod', pod({ securityContext: { runAsUser: 1234 } }), 'spec.securityContext.runAsUser is 1234, but the pod runs as user ann (uid 30001, gid 30000): remove spec.securityContext.runAsUser or set it to 30001'],
    ['pod gid', pod({ securityContext: { runAsGroup: 1 } }), 'spec.securityContext.runAsGroup is 1'],
    ['container', pod({ containers: [{ name: 'main', securityContext: { runAsUser: 30000 } }] }), 'spec.containers[0] (container main).securityContext.runAsUser is 30000'],
    ['init container', pod({ initContainers: [{ name: 'setup', securityContext: { runAsGroup: 4 } }] }), 'spec.initContainers[0] (init container setup).securityContext.runAsGroup is 4'],
    ['ephemeral container', pod({ ephemeralContainers: [{ name: 'dbg', securityContext: { runAsUser: 30000 } }] }), 'spec.ephemeralContainers[0] (ephemeral container dbg).securityContext.runAsUser is 30000'],
    ['uid 0', pod({ containers: [{ name: 'main', securityContext: { runAsUser: 0 } }] }), 'spec.containers[0] (container main).securityContext.runAsUser is 0 (root), but the pod runs as user ann'],
  ])('a conflicting uid or gid at %s level', (_level, object, message) => {
    expect(refusal(object)).toEqual({ code: 403, message: expect.stringContaining(message) });
  });

  it('an HpcCluster that does not exist in the namespace', () => {
    expect(refusal(pod({}, {}, 'nope')).message).toBe(
      'the label hpc.shanhe.com/cluster names HpcCluster research/nope, which does not exist in this namespace: fix the label or create the HpcCluster',
    );
  });

  it('a user of an HpcCluster of another namespace', () => {
    // chem-lab exists in research only; the same claim from "other" finds nothing.
    expect(refusal(pod(), synced, 'other').message).toContain('HpcCluster other/chem-lab, which does not exist in this namespace');
  });

  it('an HpcCluster that never synced: retry', async () => {
    const fresh = hpcCluster('fresh', undefined);
    expect(refusal(pod({}, {}, 'fresh'), await caches([fresh], []))).toEqual({
      code: 503,
      message: 'HpcCluster research/fresh has not synced its users yet (kubectl get hpcc fresh -n research): retry once it is Ready',
    });
  });

  it('a user not in the mapping, and a skipped one with the skip reason', () => {
    expect(refusal(pod({}, { 'hpc.shanhe.com/user': 'zed' })).message).toBe(
      'user "zed" (annotation hpc.shanhe.com/user) is not a user of HpcCluster research/chem-lab: check the name against its status.users',
    );
    expect(refusal(pod({}, { 'hpc.shanhe.com/user': 'bad:name' })).message).toBe(
      'user "bad:name" of HpcCluster research/chem-lab was skipped at the last sync: username has characters outside [A-Za-z0-9._-]',
    );
  });

  it('a replica whose caches are not synced vouches for nothing', () => {
    expect(admit(create(pod()), synced, false)).toMatchObject({ allowed: false, status: { code: 503, message: expect.stringContaining('retry') } });
  });
});

describe('what tenants can write changes nothing', () => {
  it('an edited users.json (uid 0 for ann) is not believed', async () => {
    const edited = usersConfigMap(chemLab, [{ ...ann, uid: 1 }, ben]);
    expect(refusal(pod(), await caches([chemLab], [edited]))).toMatchObject({ code: 503, message: expect.stringContaining('-users was altered or replaced') });
  });

  it('a missing -users ConfigMap is told apart from an altered one', async () => {
    expect(refusal(pod(), await caches([chemLab], []))).toMatchObject({ code: 503, message: expect.stringContaining('ConfigMap chem-lab-users of HpcCluster research/chem-lab is missing') });
  });

  it('a look-alike with the exact text but not controlled by the HpcCluster is not believed', async () => {
    const forged = usersConfigMap(chemLab, [ann, ben]);
    forged.metadata.ownerReferences = [];
    expect(refusal(pod(), await caches([chemLab], [forged]))).toMatchObject({ code: 503, message: expect.stringContaining('-users was altered or replaced') });
  });

  it('an edited users.json that carries the real sync id is read, and not believed', async () => {
    const edited = usersConfigMap(chemLab, [{ ...ann, uid: 0 }, ben]);
    edited.metadata.annotations = { ...edited.metadata.annotations, 'hpc.shanhe.com/sync-id': chemLab.status?.usersDigest ?? '' };
    expect(refusal(pod(), await caches([chemLab], [edited]))).toMatchObject({ code: 503, message: expect.stringContaining('-users was altered or replaced') });
  });

  it('after a sync without the user, the old users.json no longer counts and the new one refuses', async () => {
    const later = { ...chemLab, status: nextStatus(chemLab.status, 1, { reason: 'Synced', users: [ben], skipped: [], usersDigest: syncIdOf([ben]) }, new Date(1000), []) };
    expect(refusal(pod(), await caches([later], [usersConfigMap(chemLab, [ann, ben])])).code).toBe(503);
    expect(refusal(pod(), await caches([later], [usersConfigMap(later, [ben])])).message).toContain('user "ann" (annotation hpc.shanhe.com/user) is not a user');
  });
});

describe('the index prepared as the caches fill', () => {
  const trusted = usersConfigMap(chemLab, [ann, ben]);
  const edited = usersConfigMap(chemLab, [{ ...ann, uid: 1 }, ben]);
  const sources = (hpcCluster: HpcClusterObject, usersConfigMap: CachedConfigMap | undefined) => ({ hpcCluster, usersConfigMap });

  it('is built only from a list the HpcCluster vouches for, read only when its sync id is the one status names', async () => {
    const resolver = new IdentityResolver();
    let reads = 0;
    const counted: ConfigMapReader = (key, notOlderThan) => {
      reads++;
      return reader([trusted])(key, notOlderThan);
    };
    expect(await resolver.prepare('research', 'chem-lab', sources(chemLab, edited), counted)).toBe(false);
    expect(await resolver.prepare('research', 'fresh', sources(hpcCluster('fresh', undefined), trusted), counted)).toBe(false);
    expect(await resolver.prepare('research', 'chem-lab', sources(chemLab, undefined), counted)).toBe(false);
    expect(reads).toBe(0);
    expect(await resolver.prepare('research', 'chem-lab', sources(chemLab, trusted), counted)).toBe(true);
    expect(await resolver.prepare('research', 'chem-lab', sources(chemLab, trusted), counted)).toBe(true);
    expect(reads).toBe(1);
    expect(resolver.resolve('research', 'chem-lab', 'ann', sources(chemLab, trusted))).toMatchObject({ ok: true, identity: { uid: 30001, gid: 30000 } });
  });

  it('answers from the list status vouches for, never from an edit made since, and not for a ConfigMap it does not control', async () => {
    const resolver = new IdentityResolver();
    await resolver.prepare('research', 'chem-lab', sources(chemLab, trusted), reader([trusted]));
    expect(resolver.resolve('research', 'chem-lab', 'ann', sources(chemLab, edited))).toMatchObject({ ok: true, identity: { uid: 30001 } });
    const replaced = usersConfigMap(chemLab, [ann, ben]);
    replaced.metadata.ownerReferences = [];
    expect(resolver.resolve('research', 'chem-lab', 'ann', sources(chemLab, replaced))).toMatchObject({ ok: false, retry: true });
  });

  it('follows a new sync: the index of the new digest replaces the old', async () => {
    const later = { ...chemLab, status: nextStatus(chemLab.status, 1, { reason: 'Synced', users: [ben], skipped: [], usersDigest: syncIdOf([ben]) }, new Date(1000), []) };
    const resolver = new IdentityResolver();
    await resolver.prepare('research', 'chem-lab', sources(chemLab, trusted), reader([trusted]));
    expect(await resolver.prepare('research', 'chem-lab', sources(later, trusted), reader([trusted]))).toBe(false);
    expect(resolver.resolve('research', 'chem-lab', 'ben', sources(later, trusted))).toMatchObject({ ok: false, retry: true });
    const rewritten = usersConfigMap(later, [ben]);
    expect(await resolver.prepare('research', 'chem-lab', sources(later, rewritten), reader([rewritten]))).toBe(true);
    expect(resolver.resolve('research', 'chem-lab', 'ann', sources(later, rewritten))).toMatchObject({ ok: false, message: expect.stringContaining('is not a user') });
  });
});

describe('other requests', () => {
  it('a pod without a user annotation, or not a pod, passes untouched', () => {
    const unclaimed = pod();
    delete unclaimed.metadata?.annotations?.['hpc.shanhe.com/user'];
    expect(admit(create(unclaimed), synced, false)).toEqual({ uid: 'req-1', allowed: true });
    expect(admit({ ...create(pod()), kind: { group: 'apps', version: 'v1', kind: 'Deployment' } }, synced, true)).toEqual({ uid: 'req-1', allowed: true });
  });

  const debug = (before: V1Pod, after: V1Pod): AdmissionRequest => ({
    ...create(after),
    operation: 'UPDATE',
    subResource: 'ephemeralcontainers',
    oldObject: before,
  });

  it('kubectl debug: an ephemeral container with no uid of its own is admitted; another uid or root is refused', () => {
    const running = admitted(pod());
    const withDebug = (securityContext?: { runAsUser: number }) =>
      ({ ...running, spec: { ...running.spec, containers: running.spec?.containers ?? [], ephemeralContainers: [{ name: 'dbg', ...(securityContext === undefined ? {} : { securityContext }) }] } }) as V1Pod;
    expect(admit(debug(running, withDebug()), synced, true)).toEqual({ uid: 'req-1', allowed: true });
    expect(admit(debug(running, withDebug({ runAsUser: 0 })), synced, true).status?.message).toContain('spec.ephemeralContainers[0] (ephemeral container dbg).securityContext.runAsUser is 0 (root)');
  });

  it('kubectl debug of a pod that has no stamp is refused', () => {
    const unstamped = pod();
    expect(admit(debug(unstamped, unstamped), synced, true).status?.message).toContain('carries no matching hpc.shanhe.com/identity stamp');
  });

  it('answers in an AdmissionReview, and rejects a body that is not one', () => {
    expect(review({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: create(pod()) }, synced, true)).toMatchObject({
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      response: { uid: 'req-1', allowed: true, patchType: 'JSONPatch' },
    });
    expect(() => review({}, synced, true)).toThrow('not an admission.k8s.io/v1 AdmissionReview request');
  });
});
