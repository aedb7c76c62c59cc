// Every generated manifest (the CRD and its copies, the chart's copies of the RBAC rules, the
// argocd-cm patch) is committed exactly as `npm run manifests` writes it from its source.
import { describe, expect, it } from '@jest/globals';
import { generatedManifests, readCommitted } from '../../tools/manifests.js';

describe('generated manifests', () => {
  it.each(generatedManifests())('$path is what npm run manifests writes', ({ path, content }) => {
    const committed = readCommitted(path);
    expect(committed === content ? 'up to date' : `${path} differs from its source: run npm run manifests`).toBe('up to date');
  });

  it('have one source each: the CRD copies are the CRD, the rule copies name where they come from', () => {
    const byPath = new Map(generatedManifests().map((manifest) => [manifest.path, manifest.content]));
    const crd = byPath.get('crds/hpcclusters.hpc.shanhe.com.yaml');
    expect(crd).toMatch(/^# Generated from src\/api\/hpccluster.ts/);
    expect(byPath.get('deploy/crd/hpcclusters.hpc.shanhe.com.yaml')).toBe(crd);
    expect(byPath.get('deploy/helm/hpc-user-operator/crds/hpcclusters.hpc.shanhe.com.yaml')).toBe(crd);
    expect(byPath.get('deploy/helm/hpc-user-operator/files/rbac/clusterrole.yaml')).toMatch(/^# Generated from deploy\/rbac\/clusterrole.yaml by `npm run manifests`/);
  });
});
