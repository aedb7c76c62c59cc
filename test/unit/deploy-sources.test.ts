// The kustomize tree and the Helm chart can read nothing outside their own directories, so
// they hold copies of crds/ and deploy/rbac/. Each copy must stay byte-identical to its
// source, and both installs must ship the version in package.json.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from '@jest/globals';
import { parse } from 'yaml';

const read = (path: string): string => readFileSync(new URL(`../../${path}`, import.meta.url), 'utf8');
const CHART = 'deploy/helm/hpc-user-operator';
const CRD = 'hpcclusters.hpc.shanhe.com.yaml';

const COPIES: [source: string, copy: string][] = [
  [`crds/${CRD}`, `deploy/crd/${CRD}`],
  [`crds/${CRD}`, `${CHART}/crds/${CRD}`],
  ['deploy/rbac/clusterrole.yaml', `${CHART}/files/rbac/clusterrole.yaml`],
  ['deploy/rbac/leader-election-role.yaml', `${CHART}/files/rbac/leader-election-role.yaml`],
];

describe('deploy/ copies', () => {
  it.each(COPIES)('%s is copied unchanged to %s', (source, copy) => {
    // On failure: cp <source> <copy>
    expect(read(copy)).toBe(read(source));
  });
});

describe('deploy/ versions', () => {
  const { version } = JSON.parse(read('package.json')) as { version: string };

  it('kustomize tags the image with the package version', () => {
    const kustomization = parse(read('deploy/kustomization.yaml')) as { images: { name: string; newTag: string }[] };
    expect(kustomization.images).toEqual([{ name: 'ghcr.io/hpc-user-operator/hpc-user-operator', newTag: version }]);
  });

  it("the chart's appVersion, its default image tag, is the package version", () => {
    const chart = parse(read(`${CHART}/Chart.yaml`)) as { appVersion: string };
    expect(chart.appVersion).toBe(version);
  });
});
