// Every manifest that is made from another file, so that each has one source and no copy is
// kept in step by hand: `npm run manifests` (write-manifests.ts) writes them, and
// test/unit/manifests.test.ts fails, saying to run it, while a committed file differs.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { crdYaml } from '../src/api/crd.js';
import { readHealthScript, renderCmPatch } from './argocd/cm-patch.js';

const projectRoot = fileURLToPath(new URL('..', import.meta.url));

const CRD = 'hpcclusters.hpc.shanhe.com.yaml';
const CHART = 'deploy/helm/hpc-user-operator';

/** A generated file: its path from the project root and the content `npm run manifests` writes. */
export interface Manifest {
  path: string;
  content: string;
}

/** `source`'s content under a line that names it, for a copy kustomize or Helm needs inside its own directory. */
function copyOf(source: string): string {
  const header = `# Generated from ${source} by \`npm run manifests\`: edit that file, then regenerate.\n`;
  return header + readFileSync(join(projectRoot, source), 'utf8');
}

export function generatedManifests(): Manifest[] {
  const crd = crdYaml();
  return [
    // The CRD, from the zod schema the operator validates with (also `hpc-user-operator crd`);
    // kustomize and Helm read nothing outside their directories, so each gets the same file.
    { path: `crds/${CRD}`, content: crd },
    { path: `deploy/crd/${CRD}`, content: crd },
    { path: `${CHART}/crds/${CRD}`, content: crd },
    // The operator's rules: deploy/rbac/ is the source the integration tests run the operator
    // under; the chart's templates read the rules from these copies.
    { path: `${CHART}/files/rbac/clusterrole.yaml`, content: copyOf('deploy/rbac/clusterrole.yaml') },
    { path: `${CHART}/files/rbac/leader-election-role.yaml`, content: copyOf('deploy/rbac/leader-election-role.yaml') },
    { path: `${CHART}/files/rbac/webhook-role.yaml`, content: copyOf('deploy/rbac/webhook-role.yaml') },
    { path: `${CHART}/files/rbac/webhook-clusterrole.yaml`, content: copyOf('deploy/rbac/webhook-clusterrole.yaml') },
    // The admission policies; the chart names its release's ServiceAccount in them.
    { path: `${CHART}/files/webhook/admission-policies.yaml`, content: copyOf('deploy/webhook/admission-policies.yaml') },
    // The Argo CD health check, embedded in the argocd-cm patch that installs it.
    { path: 'deploy/argocd/argocd-cm-patch.yaml', content: renderCmPatch(readHealthScript()) },
  ];
}

/** The committed content of a generated file, or undefined when there is none. */
export function readCommitted(path: string): string | undefined {
  try {
    return readFileSync(join(projectRoot, path), 'utf8');
  } catch {
    return undefined;
  }
}

/** The generated files whose committed content is not what `npm run manifests` writes. */
export function staleManifests(): Manifest[] {
  return generatedManifests().filter((manifest) => readCommitted(manifest.path) !== manifest.content);
}

export function writeManifest(manifest: Manifest): void {
  writeFileSync(join(projectRoot, manifest.path), manifest.content);
}
