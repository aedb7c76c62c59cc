// Building the project's test tools from Go modules: the one way to run `go`.
import { spawn } from 'node:child_process';
import { closeSync, openSync, writeSync } from 'node:fs';
import { createInterface } from 'node:readline';

/** Where go's messages (`go: downloading ...`, compile errors) go instead of this process's stderr. */
export interface GoLog {
  /** Appended to. */
  file: string;
  /** Each line as it comes, e.g. to show progress. */
  onLine?(line: string): void;
}

export interface GoRun {
  cwd: string;
  env?: Record<string, string>;
  /** Return stdout instead of passing it through. */
  captureStdout?: boolean;
  /** Default: go's stderr is this process's. */
  log?: GoLog;
}

/** Runs `go`; static binaries, and no toolchain download: the installed Go must satisfy go.mod. */
export function runGo(args: string[], { cwd, env = {}, captureStdout = false, log }: GoRun): Promise<string> {
  return new Promise((resolve, reject) => {
    const logFd = log === undefined ? undefined : openSync(log.file, 'a');
    const go = spawn('go', args, {
      cwd,
      env: { ...process.env, GOTOOLCHAIN: 'local', CGO_ENABLED: '0', ...env },
      stdio: ['ignore', captureStdout ? 'pipe' : 'inherit', logFd === undefined ? 'inherit' : 'pipe'],
    });
    const stdout: Buffer[] = [];
    go.stdout?.on('data', (chunk: Buffer) => stdout.push(chunk));
    if (go.stderr !== null && logFd !== undefined) {
      createInterface({ input: go.stderr }).on('line', (line) => {
        writeSync(logFd, `${line}\n`);
        log?.onLine?.(line);
      });
    }
    const failure = (message: string) => new Error(log === undefined ? message : `${message} (log: ${log.file})`);
    go.on('error', (error) => reject(failure(`cannot run go (is it on PATH?): ${error.message}`)));
    go.on('close', (code, signal) => {
      if (logFd !== undefined) closeSync(logFd);
      if (code === 0) resolve(Buffer.concat(stdout).toString('utf8'));
      else reject(failure(`go ${args.join(' ')} failed with ${signal ?? `exit code ${String(code)}`}`));
    });
  });
}
