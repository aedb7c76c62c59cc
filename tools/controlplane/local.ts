// The local control plane for development, as `npm run dev` and `npm run cluster:*` share it:
// where they keep their state (.local/, git-ignored, or $HPC_DEV_DIR), the kubectl they leave
// at .local/bin/kubectl, and the cold build shown as one progress line with go's output in a log.
import { mkdirSync, rmSync, symlinkSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { binariesBuilt, binariesDir, buildControlPlane, controlPlaneVersions, kubectlPath } from './build.js';

const projectRoot = fileURLToPath(new URL('../..', import.meta.url));

export interface LocalPaths {
  dir: string;
  /** The control plane's data, keys and logs. */
  controlPlane: string;
  /** An admin kubeconfig for it. */
  kubeconfig: string;
  /** A link to the kubectl built with the control plane. */
  kubectl: string;
  /** go's output of a build started from here. */
  buildLog: string;
}

export function localPaths(dir = resolve(process.env.HPC_DEV_DIR || join(projectRoot, '.local'))): LocalPaths {
  return {
    dir,
    controlPlane: join(dir, 'controlplane'),
    kubeconfig: join(dir, 'kubeconfig'),
    kubectl: join(dir, 'bin', 'kubectl'),
    buildLog: join(dir, 'controlplane-build.log'),
  };
}

/** Points `paths.kubectl` at the kubectl built with the control plane. */
export function linkKubectl(paths: LocalPaths): void {
  mkdirSync(dirname(paths.kubectl), { recursive: true });
  rmSync(paths.kubectl, { force: true });
  symlinkSync(kubectlPath(), paths.kubectl);
}

export const secondsSince = (started: number): string => String(Math.round((Date.now() - started) / 1000));

/**
 * Builds the control plane binaries unless they are cached, saying which. With `log`, go's
 * output (hundreds of `go: downloading` lines on a cold build) goes to that file and one line
 * shows the progress, rewritten in place on a terminal; without, go prints as it goes (CI).
 */
export async function ensureControlPlaneBinaries(log?: string): Promise<void> {
  const { kubernetes, etcd } = controlPlaneVersions();
  if (binariesBuilt()) {
    console.log(`control plane binaries (Kubernetes ${kubernetes}, etcd ${etcd}) are cached in ${binariesDir()}`);
    return;
  }
  console.log(`building the control plane: Kubernetes ${kubernetes}, etcd ${etcd} (a cold build takes several minutes; later runs reuse it)`);
  const started = Date.now();
  if (log === undefined) {
    await buildControlPlane();
  } else {
    mkdirSync(dirname(log), { recursive: true });
    rmSync(log, { force: true });
    let downloaded = 0;
    const terminal = process.stdout.isTTY;
    const show = () => {
      process.stdout.write(`\r\x1b[Kbuilding: ${secondsSince(started)} s, ${String(downloaded)} modules downloaded (go's output: ${relative(process.cwd(), log)})`);
    };
    const ticker = terminal ? setInterval(show, 1_000) : undefined;
    try {
      await buildControlPlane({
        file: log,
        onLine: (line) => {
          if (line.startsWith('go: downloading ')) downloaded++;
        },
      });
    } finally {
      if (ticker !== undefined) {
        clearInterval(ticker);
        process.stdout.write('\r\x1b[K');
      }
    }
    if (!terminal) console.log(`${String(downloaded)} modules downloaded (go's output: ${log})`);
  }
  console.log(`built in ${secondsSince(started)} s into ${binariesDir()}`);
}
