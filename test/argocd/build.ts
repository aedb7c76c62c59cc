// Builds health-runner (gopher-lua, the Lua VM Argo CD embeds, driven the way Argo CD drives
// it) from the Go module in ./health-runner, and caches the binary outside the work tree keyed
// by gopher-lua's version and a hash of the module's sources, so only the first run pays.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

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

function toolsCacheRoot(): string {
  const userCache = process.env.XDG_CACHE_HOME || join(homedir(), '.cache');
  return join(userCache, 'hpc-user-operator', 'tools');
}

/** Where the binary for the current sources lives (it may not be built yet). */
export function healthRunnerPath(): string {
  const hash = createHash('sha256');
  for (const file of runnerSources) hash.update(readFileSync(join(runnerModuleDir, file)));
  const entry = `argocd-health-runner-gopher-lua-${gopherLuaVersion()}-${hash.digest('hex').slice(0, 12)}`;
  return join(toolsCacheRoot(), entry, binaryName);
}

/**
 * Builds the runner unless the cache holds it, and returns its path. The build goes to a
 * temporary directory beside the final one and is renamed into place, so an interrupted or
 * concurrent build never leaves a half-written binary behind. Go's output goes to stderr.
 */
export async function buildHealthRunner(): Promise<string> {
  const binary = healthRunnerPath();
  if (existsSync(binary)) return binary;
  const target = dirname(binary);
  mkdirSync(dirname(target), { recursive: true });
  const staging = mkdtempSync(`${target}.building-`);
  try {
    await runGo(['build', '-trimpath', '-o', join(staging, binaryName), '.']);
    chmodSync(staging, 0o755); // mkdtemp makes it private
    rmSync(target, { recursive: true, force: true });
    renameSync(staging, target);
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
  return binary;
}

function runGo(args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const go = spawn('go', args, {
      cwd: runnerModuleDir,
      // No toolchain download: the installed Go must satisfy go.mod.
      env: { ...process.env, GOTOOLCHAIN: 'local', CGO_ENABLED: '0' },
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    go.on('error', (error) => reject(new Error(`cannot run go (is it on PATH?): ${error.message}`)));
    go.on('exit', (code, signal) => {
      if (code === 0) resolve();
      else reject(new Error(`go ${args.join(' ')} failed with ${signal ?? `exit code ${String(code)}`}`));
    });
  });
}
