// npm run argocd:build | argocd:patch — the Argo CD health check's tooling.
// `build` compiles (or finds cached) the gopher-lua runner the tests use; `patch` regenerates
// deploy/argocd/argocd-cm-patch.yaml from deploy/argocd/health.lua.
import { existsSync, writeFileSync } from 'node:fs';
import { relative } from 'node:path';
import { buildHealthRunner, gopherLuaVersion, healthRunnerPath } from './build.js';
import { cmPatchPath, readHealthScript, renderCmPatch } from './cm-patch.js';

async function build(): Promise<void> {
  if (existsSync(healthRunnerPath())) {
    console.log(`Argo CD health runner (gopher-lua ${gopherLuaVersion()}) is cached at ${healthRunnerPath()}`);
    return;
  }
  console.log(`building the Argo CD health runner with gopher-lua ${gopherLuaVersion()}`);
  const started = Date.now();
  const binary = await buildHealthRunner();
  console.log(`built in ${String(Math.round((Date.now() - started) / 1000))} s: ${binary}`);
}

function patch(): Promise<void> {
  writeFileSync(cmPatchPath, renderCmPatch(readHealthScript()));
  console.log(`wrote ${relative(process.cwd(), cmPatchPath)}`);
  return Promise.resolve();
}

const commands: Record<string, () => Promise<void>> = { build, patch };
const command = commands[process.argv[2] ?? ''];
if (!command) {
  console.error('usage: cli.ts build|patch');
  process.exit(2);
}
await command();
