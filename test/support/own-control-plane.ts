// A control plane of a test file's own, for tests that stop or restart the kube-apiserver:
// doing that to the shared one would break the tests running beside them.
import { afterAll, beforeAll } from '@jest/globals';
import type { KubeConfig } from '@kubernetes/client-node';
import { loadKubeConfig, startControlPlane, type ControlPlane, type StartControlPlaneOptions } from '../../tools/controlplane/controlplane.js';

export interface OwnControlPlane {
  /** Set once beforeAll has run. */
  controlPlane: ControlPlane;
  kubeConfig: KubeConfig;
}

/**
 * Starts a control plane before the file's (or describe block's) tests and stops it after; also
 * for tests that need kube-controller-manager or install cluster-wide admission policies.
 */
export function useOwnControlPlane(options: Pick<StartControlPlaneOptions, 'controllerManager'> = {}): OwnControlPlane {
  const own = {} as OwnControlPlane;
  beforeAll(async () => {
    own.controlPlane = await startControlPlane(options);
    own.kubeConfig = loadKubeConfig(own.controlPlane.kubeconfigPath);
  });
  afterAll(async () => {
    // Undefined when the start itself failed.
    await (own.controlPlane as ControlPlane | undefined)?.stop();
  });
  return own;
}
