// deploy/examples/ consume what the operator writes for the example HpcCluster: the
// ConfigMaps' names and keys, and the example user's numbers, are the rendered ones.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from '@jest/globals';
import { parse } from 'yaml';
import { isLentToOperator, validateSpec } from '../../src/api/hpccluster.js';
import { renderConfigMaps } from '../../src/render/configmaps.js';

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
  securityContext?: { runAsUser?: number; runAsGroup?: number };
  volumes?: { name: string; configMap?: { name: string }; nfs?: { path: string } }[];
  containers: Container[];
}

type Workload = { kind: 'Pod'; spec: PodSpec } | { kind: 'Job'; spec: { template: { spec: PodSpec } } };

const podSpecOf = (workload: Workload): PodSpec => (workload.kind === 'Pod' ? workload.spec : workload.spec.template.spec);

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

  const consumers = readdirSync(examplesDir).filter((file) => /^pod-.*\.yaml$/.test(file));

  it.each(consumers)('%s reads only keys the operator writes', (file) => {
    const uses = configMapUses(podSpecOf(example(file) as unknown as Workload));
    expect(uses.length).toBeGreaterThan(0);
    for (const { configMap, key } of uses) expect(rendered.get(configMap)).toHaveProperty([key]);
  });

  it("job-as-user.yaml runs as the user's uid and gid, with the NAS home mounted at its path", () => {
    const pod = podSpecOf(example('job-as-user.yaml') as unknown as Workload);
    const users = rendered.get(`${cluster.metadata.name}-users`) ?? {};
    expect(String(pod.securityContext?.runAsUser)).toBe(users[`${USER.username}.uid`]);
    expect(String(pod.securityContext?.runAsGroup)).toBe(users[`${USER.username}.gid`]);
    expect(pod.volumes?.[0]?.nfs?.path).toBe(users[`${USER.username}.nas`]);
    expect(pod.containers[0]?.volumeMounts?.[0]?.mountPath).toBe(users[`${USER.username}.nas`]);
  });
});
