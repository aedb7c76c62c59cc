import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';

/**
 * The Kubernetes configuration, from `--kubeconfig`, `KUBECONFIG`, `~/.kube/config`, or the
 * pod's service account — in that order. client-node's loadFromDefault would otherwise fall
 * back to http://localhost:8080 in silence; here a missing configuration is a clear error.
 */
export function loadKubeConfig(explicitPath?: string, env: NodeJS.ProcessEnv = process.env): KubeConfig {
  const kc = new KubeConfig();
  if (explicitPath !== undefined) {
    if (!existsSync(explicitPath)) throw new Error(`kubeconfig ${explicitPath} does not exist`);
    kc.loadFromFile(explicitPath);
    return checked(kc, explicitPath);
  }
  const fromEnv = env.KUBECONFIG;
  if (fromEnv !== undefined && fromEnv !== '') {
    kc.loadFromDefault();
    return checked(kc, `KUBECONFIG=${fromEnv}`);
  }
  const home = join(homedir(), '.kube', 'config');
  if (existsSync(home)) {
    kc.loadFromFile(home);
    return checked(kc, home);
  }
  if (env.KUBERNETES_SERVICE_HOST !== undefined && env.KUBERNETES_SERVICE_HOST !== '') {
    kc.loadFromCluster();
    return kc;
  }
  throw new Error('no Kubernetes configuration found: pass --kubeconfig, set KUBECONFIG, or run in a pod with a service account');
}

function checked(kc: KubeConfig, source: string): KubeConfig {
  if (kc.getCurrentCluster() === null) throw new Error(`${source} names no current cluster`);
  return kc;
}
