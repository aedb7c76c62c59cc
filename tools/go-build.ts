// Building the project's test tools from Go modules: the one way to run `go` and to put a
// build into its cache directory.
import { spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, renameSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';

export interface GoRun {
  cwd: string;
  env?: Record<string, string>;
  /** Return stdout instead of passing it through. */
  captureStdout?: boolean;
}

/** Runs `go`; static binaries, and no toolchain download: the installed Go must satisfy go.mod. */
export function runGo(args: string[], { cwd, env = {}, captureStdout = false }: GoRun): Promise<string> {
  return new Promise((resolve, reject) => {
    const go = spawn('go', args, {
      cwd,
      env: { ...process.env, GOTOOLCHAIN: 'local', CGO_ENABLED: '0', ...env },
      stdio: ['ignore', captureStdout ? 'pipe' : 'inherit', 'inherit'],
    });
    const stdout: Buffer[] = [];
    go.stdout?.on('data', (chunk: Buffer) => stdout.push(chunk));
    go.on('error', (error) => reject(new Error(`cannot run go (is it on PATH?): ${error.message}`)));
    go.on('exit', (code, signal) => {
      if (code === 0) resolve(Buffer.concat(stdout).toString('utf8'));
      else reject(new Error(`go ${args.join(' ')} failed with ${signal ?? `exit code ${String(code)}`}`));
    });
  });
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
