// Both installs must ship the version in package.json. (Their copies of the CRD and the rules
// are generated: test/unit/manifests.test.ts.)
import { readFileSync } from 'node:fs';
import { describe, expect, it } from '@jest/globals';
import { parse } from 'yaml';

const read = (path: string): string => readFileSync(new URL(`../../${path}`, import.meta.url), 'utf8');
const CHART = 'deploy/helm/hpc-user-operator';

describe('deploy/ versions', () => {
  const { version } = JSON.parse(read('package.json')) as { version: string };

  it.each(['deploy/kustomization.yaml', 'deploy/namespaced/kustomization.yaml'])('kustomize (%s) tags the image with the package version', (file) => {
    const kustomization = parse(read(file)) as { images: { name: string; newTag: string }[] };
    expect(kustomization.images).toEqual([{ name: 'ghcr.io/hpc-user-operator/hpc-user-operator', newTag: version }]);
  });

  it("the chart's appVersion, its default image tag, is the package version", () => {
    const chart = parse(read(`${CHART}/Chart.yaml`)) as { appVersion: string };
    expect(chart.appVersion).toBe(version);
  });
});
