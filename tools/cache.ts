// The cache of the project's test tools (control plane binaries, helm, Argo CD's health
// runner, the image's Node.js): outside the work tree, so a fresh clone on the same machine
// reuses it, and filled so that an interrupted fill never leaves a half-written entry.
import { chmodSync, mkdirSync, mkdtempSync, renameSync, rmSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';

/** The project's directory in the user's cache (`$XDG_CACHE_HOME`, else `~/.cache`). */
export function projectCacheDir(): string {
  return join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'hpc-user-operator');
}

/**
 * Fills cache directory `target` with what `build` writes into the staging directory it is
 * given, built beside it and renamed into place, so an interrupted or concurrent build never
 * leaves a half-filled cache entry.
 */
export async function buildIntoCache(target: string, build: (staging: string) => Promise<void>): Promise<void> {
  mkdirSync(dirname(target), { recursive: true });
  const staging = mkdtempSync(`${target}.building-`);
  try {
    await build(staging);
    chmodSync(staging, 0o755); // mkdtemp makes it private
    rmSync(target, { recursive: true, force: true });
    renameSync(staging, target);
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}
