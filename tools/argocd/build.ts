// Builds health-runner (gopher-lua, the Lua VM Argo CD embeds, driven the way Argo CD drives
// it) from the Go module in ./health-runner, and caches the binary outside the work tree keyed
// by gopher-lua's version and a hash of the module's sources, so only the first run pays.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildIntoCache, projectCacheDir } from '../cache.js';
import { runGo } from '../go-build.js';

const runnerModuleDir = join(dirname(fileURLToPath(import.meta.url)), 'health-runner');
const runnerSources = ['go.mod', 'go.sum', 'main.go'];
const binaryName = 'health-runner';

/** The gopher-lua version go.mod pins. */
export function gopherLuaVersion(): string {
  const goMod = readFileSync(join(runnerModuleDir, 'go.mod'), 'utf8');
  const match = /^require github\.com\/yuin\/gopher-lua (v\S+)/m.exec(goMod);
  if (!match?.[1]) throw new Error('health-runner/go.mod does not require github.com/yuin/gopher-lua');
  return match[1];
}

/** Where the binary for the current sources lives (it may not be built yet). */
export function healthRunnerPath(): string {
  const hash = createHash('sha256');
  for (const file of runnerSources) hash.update(readFileSync(join(runnerModuleDir, file)));
  const entry = `argocd-health-runner-gopher-lua-${gopherLuaVersion()}-${hash.digest('hex').slice(0, 12)}`;
  return join(projectCacheDir(), 'tools', entry, binaryName);
}

/**
 * Builds the runner unless the cache holds it, and returns its path. The build goes to a
 * temporary directory beside the final one and is renamed into place, so an interrupted or
 * concurrent build never leaves a half-written binary behind. Go's output goes to stderr.
 */
export async function buildHealthRunner(): Promise<string> {
  const binary = healthRunnerPath();
  if (existsSync(binary)) return binary;
  await buildIntoCache(dirname(binary), async (staging) => {
    await runGo(['build', '-trimpath', '-o', join(staging, binaryName), '.'], { cwd: runnerModuleDir });
  });
  return binary;
}
