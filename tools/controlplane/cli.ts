// npm run cluster:build | cluster:up | cluster:down — the local control plane for development
// (`build` also builds helm, which the chart tests run).
// `up` leaves etcd and kube-apiserver running in the background with their state in
// .local/controlplane/ and an admin kubeconfig at .local/kubeconfig; `down` stops them by pid.
import { copyFileSync, existsSync, rmSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { binariesBuilt, binariesDir, buildControlPlane, buildHelm, controlPlaneVersions, HELM_VERSION, helmBuilt, helmPath, kubectlPath } from './build.js';
import { startControlPlane, stopDetachedControlPlane } from './controlplane.js';

const projectRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const localDir = join(projectRoot, '.local');
const stateDir = join(localDir, 'controlplane');
const kubeconfigPath = join(localDir, 'kubeconfig');

const secondsSince = (started: number): string => String(Math.round((Date.now() - started) / 1000));

async function buildControlPlaneBinaries(): Promise<void> {
  const { kubernetes, etcd } = controlPlaneVersions();
  if (binariesBuilt()) {
    console.log(`control plane binaries (Kubernetes ${kubernetes}, etcd ${etcd}) are cached in ${binariesDir()}`);
    return;
  }
  console.log(`building kube-apiserver and kubectl ${kubernetes} and etcd ${etcd} (cold build: several minutes)`);
  const started = Date.now();
  await buildControlPlane();
  console.log(`built in ${secondsSince(started)} s into ${binariesDir()}`);
}

async function build(): Promise<void> {
  await buildControlPlaneBinaries();
  if (helmBuilt()) {
    console.log(`helm ${HELM_VERSION} is cached at ${helmPath()}`);
    return;
  }
  console.log(`building helm ${HELM_VERSION} (cold build: a few minutes)`);
  const started = Date.now();
  await buildHelm();
  console.log(`built in ${secondsSince(started)} s: ${helmPath()}`);
}

async function up(): Promise<void> {
  await buildControlPlaneBinaries();
  if (await stopDetachedControlPlane(stateDir)) console.log('stopped the control plane that was running');
  const started = Date.now();
  const controlPlane = await startControlPlane({ dir: stateDir, detached: true });
  copyFileSync(controlPlane.kubeconfigPath, kubeconfigPath);
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  console.log(`control plane ready at ${controlPlane.server} in ${seconds} s`);
  console.log(`export KUBECONFIG=${relative(process.cwd(), kubeconfigPath) || kubeconfigPath}`);
  console.log(`kubectl built with it: ${kubectlPath()}`);
  console.log(`logs: ${relative(process.cwd(), stateDir)}/{etcd,kube-apiserver}.log; stop with npm run cluster:down`);
}

async function down(): Promise<void> {
  const stopped = await stopDetachedControlPlane(stateDir);
  rmSync(kubeconfigPath, { force: true });
  if (existsSync(stateDir)) rmSync(stateDir, { recursive: true, force: true });
  console.log(stopped ? 'control plane stopped' : 'no control plane was running');
}

const commands: Record<string, () => Promise<void>> = { build, up, down };
const command = commands[process.argv[2] ?? ''];
if (!command) {
  console.error('usage: cli.ts build|up|down');
  process.exit(2);
}
await command();
