// The one control plane the integration tests share, started by Jest's global setup and
// stopped by its global teardown. Both run in Jest's main process but load this module
// separately, so the running control plane is kept on globalThis between them.
import { binariesBuilt, buildControlPlane, buildHelm, HELM_VERSION, helmBuilt } from '../../tools/controlplane/build.js';
import { startControlPlane, type ControlPlane } from '../../tools/controlplane/controlplane.js';

const key = Symbol.for('hpc-user-operator.test.sharedControlPlane');
const holder = globalThis as { [key]?: ControlPlane };

export async function startSharedControlPlane(): Promise<void> {
  if (!binariesBuilt()) {
    console.log('\ncontrol plane binaries not cached: cold build of kube-apiserver, kubectl and etcd (several minutes)');
    await buildControlPlane();
  }
  if (!helmBuilt()) {
    console.log(`\nhelm not cached: cold build of helm ${HELM_VERSION} for the chart tests (a few minutes)`);
    await buildHelm();
  }
  const controlPlane = await startControlPlane();
  holder[key] = controlPlane;
  // Test workers start after global setup and inherit this environment.
  process.env.HPC_TEST_KUBECONFIG = controlPlane.kubeconfigPath;
}

export async function stopSharedControlPlane(): Promise<void> {
  const controlPlane = holder[key];
  delete holder[key];
  await controlPlane?.stop();
}
