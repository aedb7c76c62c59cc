// deploy/argocd/argocd-cm-patch.yaml is generated from deploy/argocd/health.lua (by `npm run
// manifests`), so the script has one source.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { GROUP, KIND } from '../../src/api/hpccluster.js';

const deployDir = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'deploy', 'argocd');
export const healthScriptPath = join(deployDir, 'health.lua');
export const cmPatchPath = join(deployDir, 'argocd-cm-patch.yaml');

/** The argocd-cm key Argo CD reads a health check for group/kind from (slash as underscore). */
export const HEALTH_KEY = `resource.customizations.health.${GROUP}_${KIND}`;

export const readHealthScript = (): string => readFileSync(healthScriptPath, 'utf8');

/** The ConfigMap patch embedding `script` as a YAML literal block. */
export function renderCmPatch(script: string): string {
  const indented = script
    .split('\n')
    .map((line) => (line === '' ? '' : `    ${line}`))
    .join('\n');
  return `# Generated from health.lua by \`npm run manifests\`: edit health.lua, then regenerate.
# Installs the HpcCluster health check into Argo CD (see README.md in this directory):
#   kubectl -n argocd patch configmap argocd-cm --patch-file deploy/argocd/argocd-cm-patch.yaml
apiVersion: v1
kind: ConfigMap
metadata:
  name: argocd-cm
  namespace: argocd
data:
  ${HEALTH_KEY}: |
${indented}`;
}
