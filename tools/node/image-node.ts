// The Node.js the image runs and the NODE_OPTIONS the Deployment gives it, for benches that
// measure the operator as shipped. V8's heap sizing and compilers differ between majors (Node
// 24 lets the young generation grow to four times Node 20's by default), so memory and latency
// measured on another major say little about the image.
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { V1Deployment } from '@kubernetes/client-node';
import { buildIntoCache, projectCacheDir } from '../cache.js';
import { deployFile } from '../deploy-file.js';

const execFileAsync = promisify(execFile);
const dockerfile = fileURLToPath(new URL('../../Dockerfile', import.meta.url));

/** The NODE_OPTIONS the shipped Deployment (deploy/manager/deployment.yaml) gives the operator. */
export function deploymentNodeOptions(): string {
  const manifest = deployFile('manager/deployment.yaml') as V1Deployment;
  const value = manifest.spec?.template.spec?.containers[0]?.env?.find((variable) => variable.name === 'NODE_OPTIONS')?.value;
  if (value === undefined) throw new Error('deploy/manager/deployment.yaml sets no NODE_OPTIONS');
  return value;
}

/** The Node.js major of the Dockerfile's base image (`ARG NODE_IMAGE=node:<major>-...`). */
export function imageNodeMajor(text = readFileSync(dockerfile, 'utf8')): number {
  const major = /^ARG NODE_IMAGE=node:(\d+)\b/m.exec(text)?.[1];
  if (major === undefined) throw new Error('the Dockerfile has no ARG NODE_IMAGE=node:<major>...');
  return Number(major);
}

/** A version's numbers: "v24.22.3" → [24, 22, 3]. */
const versionNumbers = (version: string): number[] => version.replace(/^v/, '').split('.').map(Number);
const majorOf = (version: string): number | undefined => versionNumbers(version)[0];

/** Node.js's release builds as npm publishes them for the `node` package: one package per platform. */
const releasePackage = `node-${process.platform}-${process.arch}`;
const cacheDir = (): string => join(projectCacheDir(), 'node');

/** The newest of `versions` ("24.9.0", "v24.22.3") whose major is `major`. */
export function newestOfMajor(versions: readonly string[], major: number): string | undefined {
  return versions
    .filter((version) => /^v?\d+\.\d+\.\d+$/.test(version) && majorOf(version) === major)
    .sort((a, b) => {
      const [, minorA = 0, patchA = 0] = versionNumbers(a);
      const [, minorB = 0, patchB = 0] = versionNumbers(b);
      return minorA - minorB || patchA - patchB;
    })
    .at(-1);
}

/** The newest cached release of `major`, as its node binary's path. */
function cachedNode(major: number): string | undefined {
  const newest = existsSync(cacheDir()) ? newestOfMajor(readdirSync(cacheDir()), major) : undefined;
  return newest === undefined ? undefined : join(cacheDir(), newest, 'bin', 'node');
}

let found: Promise<{ path: string; version: string }> | undefined;

/**
 * A node binary of the image's major: this process's own when it is that major, else one in
 * the cache, else the newest release of that major fetched from the npm registry into the
 * cache (about 50 MB, once). Looked for once per process: benches ask at each operator start.
 */
export function imageNode(): Promise<{ path: string; version: string }> {
  found ??= findImageNode();
  return found;
}

async function findImageNode(): Promise<{ path: string; version: string }> {
  const major = imageNodeMajor();
  if (majorOf(process.version) === major) return { path: process.execPath, version: process.version };
  let path = cachedNode(major);
  if (path === undefined) {
    const { stdout } = await execFileAsync('npm', ['view', `${releasePackage}@${major}`, 'version', '--json']);
    const listed = JSON.parse(stdout) as string | string[];
    const version = newestOfMajor(Array.isArray(listed) ? listed : [listed], major);
    if (version === undefined) throw new Error(`npm lists no ${releasePackage}@${major}`);
    const target = join(cacheDir(), `v${version}`);
    process.stderr.write(`fetching Node.js ${version} (the image's major) from npm into ${target}\n`);
    await buildIntoCache(target, async (staging) => {
      const { stdout: packed } = await execFileAsync('npm', ['pack', `${releasePackage}@${version}`, '--pack-destination', staging, '--json']);
      const [{ filename }] = JSON.parse(packed) as [{ filename: string }];
      await execFileAsync('tar', ['-xzf', join(staging, filename), '-C', staging, '--strip-components', '1']);
      rmSync(join(staging, filename));
    });
    path = join(target, 'bin', 'node');
  }
  const { stdout } = await execFileAsync(path, ['--version']);
  return { path, version: stdout.trim() };
}
