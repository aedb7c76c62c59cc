// npm run cluster:build | cluster:up | cluster:down — the local control plane for development
// (`build` also builds helm, which the chart tests run).
// `up` leaves etcd and kube-apiserver running in the background with their state in
// .local/controlplane/, an admin kubeconfig at .local/kubeconfig and the kubectl built with
// them at .local/bin/kubectl (as `npm run dev` does); `down` stops them by pid.
import { copyFileSync, existsSync, rmSync } from 'node:fs';
import { dirname, relative } from 'node:path';
import { buildHelm, HELM_VERSION, helmBuilt, helmPath } from './build.js';
import { startControlPlane, stopDetachedControlPlane } from './controlplane.js';
import { ensureControlPlaneBinaries, linkKubectl, localPaths, secondsSince } from './local.js';

const paths = localPaths();
const shown = (path: string): string => relative(process.cwd(), path) || path;

async function build(): Promise<void> {
  // go's output on the console: CI keeps it in the job's log.
  await ensureControlPlaneBinaries();
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
  await ensureControlPlaneBinaries(paths.buildLog);
  if (await stopDetachedControlPlane(paths.controlPlane)) console.log('stopped the control plane that was running');
  const started = Date.now();
  const controlPlane = await startControlPlane({ dir: paths.controlPlane, detached: true, controllerManager: true });
  copyFileSync(controlPlane.kubeconfigPath, paths.kubeconfig);
  linkKubectl(paths);
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  console.log(`control plane ready at ${controlPlane.server} in ${seconds} s`);
  console.log(`export PATH="${dirname(paths.kubectl)}:$PATH" KUBECONFIG="${paths.kubeconfig}"   # the kubectl built with it`);
  console.log(`logs: ${shown(paths.controlPlane)}/{etcd,kube-apiserver}.log; stop with npm run cluster:down`);
}

async function down(): Promise<void> {
  const stopped = await stopDetachedControlPlane(paths.controlPlane);
  rmSync(paths.kubeconfig, { force: true });
  if (existsSync(paths.controlPlane)) rmSync(paths.controlPlane, { recursive: true, force: true });
  console.log(stopped ? 'control plane stopped' : 'no control plane was running');
}

const commands: Record<string, () => Promise<void>> = { build, up, down };
const command = commands[process.argv[2] ?? ''];
if (!command) {
  console.error('usage: cli.ts build|up|down');
  process.exit(2);
}
await command();
