// npm run argocd:build — compiles (or finds cached) the gopher-lua runner the Argo CD health
// check's tests use. (`npm run manifests` writes deploy/argocd/argocd-cm-patch.yaml.)
import { existsSync } from 'node:fs';
import { buildHealthRunner, gopherLuaVersion, healthRunnerPath } from './build.js';

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

if (process.argv[2] !== 'build') {
  console.error('usage: cli.ts build');
  process.exit(2);
}
await build();
