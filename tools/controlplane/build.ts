// Builds kube-apiserver, kubectl and etcd from the Go module in ./go, and helm for the chart
// tests, and caches the binaries outside the work tree, keyed by the pinned versions, so only
// the first run pays for the build.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, renameSync } from 'node:fs';
import { buildIntoCache, projectCacheDir } from '../cache.js';
import { runGo, type GoLog } from '../go-build.js';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const goModuleDir = join(dirname(fileURLToPath(import.meta.url)), 'go');

const mainPackages = {
  'kube-apiserver': 'k8s.io/kubernetes/cmd/kube-apiserver',
  'kube-controller-manager': 'k8s.io/kubernetes/cmd/kube-controller-manager',
  kubectl: 'k8s.io/kubernetes/cmd/kubectl',
  // The module root is etcd's main package; `go build -o <dir>/` names it after the module
  // path without its major version suffix.
  etcd: 'go.etcd.io/etcd/server/v3',
} as const;
const etcdBuiltName = 'server';

export type BinaryName = keyof typeof mainPackages;

export interface ControlPlaneVersions {
  kubernetes: string;
  etcd: string;
}

/** The versions go.mod pins, read from its require block. */
export function controlPlaneVersions(): ControlPlaneVersions {
  const goMod = readFileSync(join(goModuleDir, 'go.mod'), 'utf8');
  const required = (module: string): string => {
    const match = new RegExp(`^\\s*${module.replaceAll('.', '\\.')} (v\\S+)`, 'm').exec(goMod);
    if (!match?.[1]) throw new Error(`go.mod does not require ${module}`);
    return match[1];
  };
  return { kubernetes: required('k8s.io/kubernetes'), etcd: required('go.etcd.io/etcd/server/v3') };
}

function versionLdflags(kubernetesVersion: string): string {
  // What Kubernetes' own build stamps in, so `kubectl version` and /version report the release.
  const [major, minor] = kubernetesVersion.replace(/^v/, '').split('.');
  const stamps = { gitVersion: kubernetesVersion, gitMajor: major, gitMinor: minor, gitTreeState: 'clean' };
  const flags = ['-s', '-w'];
  for (const pkg of ['k8s.io/component-base/version', 'k8s.io/client-go/pkg/version']) {
    for (const [name, value] of Object.entries(stamps)) flags.push(`-X ${pkg}.${name}=${value}`);
  }
  return flags.join(' ');
}

function buildArgs(outputDir: string): string[] {
  const { kubernetes } = controlPlaneVersions();
  return ['build', '-trimpath', `-ldflags=${versionLdflags(kubernetes)}`, '-o', `${outputDir}/`, ...Object.values(mainPackages)];
}

/** Root of the binary cache: $HPC_CONTROLPLANE_CACHE, else the user's cache directory. */
export function cacheRoot(): string {
  const configured = process.env.HPC_CONTROLPLANE_CACHE;
  if (configured) return configured;
  return join(projectCacheDir(), 'controlplane');
}

/** The directory holding the binaries for the pinned versions (it may not be built yet). */
export function binariesDir(): string {
  const { kubernetes, etcd } = controlPlaneVersions();
  // The hash covers everything that changes the output besides the two headline versions.
  const hash = createHash('sha256');
  for (const file of ['go.mod', 'go.sum']) hash.update(readFileSync(join(goModuleDir, file)));
  hash.update(buildArgs('').join('\0'));
  return join(cacheRoot(), `kubernetes-${kubernetes}-etcd-${etcd}-${hash.digest('hex').slice(0, 12)}`);
}

export function binaryPath(name: BinaryName): string {
  return join(binariesDir(), name);
}

/** The kubectl built with the control plane, for tests that drive it as users do. */
export function kubectlPath(): string {
  return binaryPath('kubectl');
}

export function binariesBuilt(): boolean {
  return Object.keys(mainPackages).every((name) => existsSync(binaryPath(name as BinaryName)));
}

/**
 * Builds the binaries unless the cache already holds them. The build goes to a temporary
 * directory beside the final one and is renamed into place, so an interrupted build never
 * leaves a half-filled cache entry. Go's output goes to `log`, else to this process's stderr.
 */
export async function buildControlPlane(log?: GoLog): Promise<string> {
  const target = binariesDir();
  if (binariesBuilt()) return target;
  await buildIntoCache(target, async (staging) => {
    await runGo(buildArgs(staging), { cwd: goModuleDir, ...(log === undefined ? {} : { log }) });
    renameSync(join(staging, etcdBuiltName), join(staging, 'etcd'));
  });
  return target;
}

/**
 * Helm's release, installed with `go install` from its own module: its go.mod has no replace
 * directives, so its go.sum pins every dependency and the version is the whole cache key.
 */
export const HELM_VERSION = 'v3.22.0';
const helmModule = 'helm.sh/helm/v3';

export function helmPath(): string {
  return join(cacheRoot(), `helm-${HELM_VERSION}`, 'helm');
}

export function helmBuilt(): boolean {
  return existsSync(helmPath());
}

/**
 * What helm's Makefile stamps into a release: its version, and the Kubernetes version of its
 * client-go, which `helm template` and `helm lint` assume when no cluster is asked.
 */
async function helmLdflags(): Promise<string> {
  const downloaded = await runGo(['mod', 'download', '-json', `${helmModule}@${HELM_VERSION}`], { cwd: tmpdir(), captureStdout: true });
  const download = JSON.parse(downloaded) as { GoMod: string };
  const clientGo = /^\s*k8s\.io\/client-go v0\.(\d+)\./m.exec(readFileSync(download.GoMod, 'utf8'));
  if (!clientGo?.[1]) throw new Error(`helm ${HELM_VERSION}'s go.mod does not require k8s.io/client-go v0.N`);
  const stamps = {
    'internal/version.version': HELM_VERSION,
    'internal/version.gitTreeState': 'clean',
    'pkg/lint/rules.k8sVersionMajor': '1',
    'pkg/lint/rules.k8sVersionMinor': clientGo[1],
    'pkg/chartutil.k8sVersionMajor': '1',
    'pkg/chartutil.k8sVersionMinor': clientGo[1],
  };
  return ['-s', '-w', ...Object.entries(stamps).map(([name, value]) => `-X ${helmModule}/${name}=${value}`)].join(' ');
}

/** Builds helm unless the cache holds it; staged and renamed into place like the control plane. */
export async function buildHelm(): Promise<string> {
  if (helmBuilt()) return helmPath();
  const ldflags = await helmLdflags();
  // `go install module@version` builds with that module's go.mod, whatever the working directory.
  await buildIntoCache(dirname(helmPath()), async (staging) => {
    await runGo(['install', '-trimpath', `-ldflags=${ldflags}`, `${helmModule}/cmd/helm@${HELM_VERSION}`], { cwd: tmpdir(), env: { GOBIN: staging } });
  });
  return helmPath();
}

