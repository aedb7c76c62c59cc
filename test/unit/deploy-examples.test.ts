// deploy/examples/ consume what the operator writes for the example HpcCluster: the
// ConfigMaps' names and keys are the rendered ones, and every workload claims the example user
// by name (no uid or gid in it) and gets that user's numbers at admission.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from '@jest/globals';
import { parse } from 'yaml';
import { isLentToOperator, validateSpec } from '../../src/api/hpccluster.js';
import { renderConfigMaps } from '../../src/render/configmaps.js';
import { admit, type ClaimResolver } from '../../src/webhook/admission.js';
import { applyPatch, patchOf } from '../support/json-patch.js';

const examplesDir = fileURLToPath(new URL('../../deploy/examples', import.meta.url));
const example = (file: string): Record<string, unknown> => parse(readFileSync(join(examplesDir, file), 'utf8')) as Record<string, unknown>;

// The user every example runs as (the SPEC's example user).
const USER = { username: 'usr-vceaHsJu', uid: 41522, gid: 41522, role: 'member', nasMountPoint: '/public/shanhe/s0723', userId: 'usr-vceaHsJu', hpcUserId: 'hpcuser-8a310ir1' } as const;

interface ConfigMapUse {
  configMap: string;
  key: string;
}

interface Container {
  env?: { valueFrom?: { configMapKeyRef?: { name: string; key: string } } }[];
  volumeMounts?: { name: string; mountPath: string; subPath?: string }[];
}

interface PodSpec {
  securityContext?: { runAsUser?: number; runAsGroup?: number; runAsNonRoot?: boolean; supplementalGroups?: number[] };
  volumes?: { name: string; configMap?: { name: string }; nfs?: { path: string } }[];
  containers: Container[];
}

interface PodMetadata {
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

type Workload = { kind: 'Pod'; metadata: PodMetadata; spec: PodSpec } | { kind: 'Job'; spec: { template: { metadata: PodMetadata; spec: PodSpec } } };

/** The pod a workload creates: itself, or its template. */
const podOf = (workload: Workload): { metadata: PodMetadata; spec: PodSpec } => (workload.kind === 'Pod' ? workload : workload.spec.template);
const podSpecOf = (workload: Workload): PodSpec => podOf(workload).spec;

/** Every ConfigMap key a pod reads: configMapKeyRef env, and subPath mounts of configMap volumes. */
function configMapUses(pod: PodSpec): ConfigMapUse[] {
  const configMapOfVolume = new Map((pod.volumes ?? []).flatMap((v) => (v.configMap ? [[v.name, v.configMap.name] as const] : [])));
  return pod.containers.flatMap((container) => [
    ...(container.env ?? []).flatMap(({ valueFrom }) => (valueFrom?.configMapKeyRef ? [{ configMap: valueFrom.configMapKeyRef.name, key: valueFrom.configMapKeyRef.key }] : [])),
    ...(container.volumeMounts ?? []).flatMap(({ name, subPath }) => {
      const configMap = configMapOfVolume.get(name);
      return configMap !== undefined && subPath !== undefined ? [{ configMap, key: subPath }] : [];
    }),
  ]);
}

describe('deploy/examples', () => {
  const cluster = example('hpccluster.yaml') as { metadata: { name: string }; spec: unknown };
  const rendered = new Map(renderConfigMaps(cluster.metadata.name, [USER]).map((cm) => [cm.name, cm.data]));

  it('registers an HpcCluster with a valid spec, credentials from the example Secret', () => {
    const validation = validateSpec(cluster.spec);
    expect(validation).toMatchObject({ ok: true });
    const secret = example('secret.yaml') as { metadata: { name: string; labels?: Record<string, string> }; stringData: Record<string, string> };
    expect(validation.ok && validation.spec.credentialsSecretRef.name).toBe(secret.metadata.name);
    expect(isLentToOperator(secret.metadata.labels)).toBe(true);
    expect(Object.keys(secret.stringData).sort()).toEqual(['access_key_id', 'secret_access_key']);
  });

  const consumers = readdirSync(examplesDir).filter((file) => /^pod-.*\.yaml$/.test(file) && configMapUses(podSpecOf(example(file) as unknown as Workload)).length > 0);

  it('some example reads the ConfigMaps directly', () => expect(consumers.length).toBeGreaterThan(0));

  it.each(consumers)('%s reads only keys the operator writes', (file) => {
    const uses = configMapUses(podSpecOf(example(file) as unknown as Workload));
    expect(uses.length).toBeGreaterThan(0);
    for (const { configMap, key } of uses) expect(rendered.get(configMap)).toHaveProperty([key]);
  });

  const workloads = readdirSync(examplesDir).filter((file) => /^(pod|job)-.*\.yaml$/.test(file));

  it.each(workloads)('%s claims the example user by name, with no uid or gid of its own', (file) => {
    expect(JSON.stringify(example(file))).not.toMatch(/runAsUser|runAsGroup|fsGroup|supplementalGroups|41522/);
    const { metadata } = podOf(example(file) as unknown as Workload);
    expect(metadata.labels?.['hpc.shanhe.com/cluster']).toBe(cluster.metadata.name);
    expect(metadata.annotations?.['hpc.shanhe.com/user']).toBe(USER.username);
  });

  it.each(workloads)("%s is admitted with the user's uid and gid, HOME at the NAS path", (file) => {
    const users = rendered.get(`${cluster.metadata.name}-users`) ?? {};
    // The webhook's answer for the one claim the rendered mapping holds.
    const resolve: ClaimResolver = (_namespace, clusterName, username) =>
      clusterName === cluster.metadata.name && users[`${username}.uid`] !== undefined
        ? {
            ok: true,
            identity: { cluster: clusterName, username, uid: Number(users[`${username}.uid`]), gid: Number(users[`${username}.gid`]), supplementalGroups: [Number(users[`${username}.gid`])], home: users[`${username}.nas`] ?? '' },
          }
        : { ok: false, message: `no user ${username} in ${clusterName}` };
    const pod = { apiVersion: 'v1', kind: 'Pod', ...podOf(example(file) as unknown as Workload) };
    const response = admit({ uid: 'req', kind: { group: '', version: 'v1', kind: 'Pod' }, namespace: 'research', operation: 'CREATE', object: pod }, resolve, true);
    expect(response).toMatchObject({ allowed: true });
    const admitted = applyPatch(pod, patchOf(response));
    expect(admitted.spec.securityContext).toMatchObject({ runAsUser: USER.uid, runAsGroup: USER.gid, runAsNonRoot: true });
    expect(String(admitted.spec.securityContext?.runAsUser)).toBe(users[`${USER.username}.uid`]);
    for (const container of admitted.spec.containers) expect(container.env).toContainEqual({ name: 'HOME', value: users[`${USER.username}.nas`] });
  });
});
