// The operator as a separate process, started the way a user starts it (`hpc-user-operator
// run ...`), under the control plane's guard script so that it never outlives the test run.
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { waitFor } from './wait-for.js';

const guardScript = fileURLToPath(new URL('../controlplane/guard.sh', import.meta.url));
const mainScript = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
const builtScript = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));

export interface LogLine {
  msg?: string;
  level?: number;
  pid?: number;
  [field: string]: unknown;
}

export interface OperatorProcess {
  /** The operator's own pid (not the guard's); found in /proc, so at any log level. */
  pid(): Promise<number>;
  readonly logs: LogLine[];
  /** Settles with the exit code (null when killed by a signal). */
  readonly exited: Promise<number | null>;
  /** Waits for a log line matching `predicate`. */
  waitForLog(predicate: (line: LogLine) => boolean, description: string, timeoutMs?: number): Promise<LogLine>;
  /** Sends `signal` to the operator process itself. */
  signal(signal: NodeJS.Signals): Promise<void>;
  /** SIGTERM if still running, and waits for the exit. */
  stop(): Promise<void>;
}

export interface SpawnOptions {
  /**
   * Run the build (`dist/cli/main.js`, from `npm run build`) with this node binary and these
   * NODE_OPTIONS, as the image runs it; by default the sources run under the tsx loader.
   */
  shipped?: { node: string; nodeOptions: string };
}

/** The pid of `guard`'s child running `script` (its other children are `sleep`s). */
function operatorPidUnder(guard: number, script: string): number | undefined {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const parent = /^PPid:\s+(\d+)$/m.exec(readFileSync(`/proc/${entry}/status`, 'utf8'))?.[1];
      if (parent === String(guard) && readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(script)) return Number(entry);
    } catch {
      // The process ended while being looked at.
    }
  }
  return undefined;
}

export function spawnOperator(args: string[], { shipped }: SpawnOptions = {}): OperatorProcess {
  if (shipped !== undefined && !existsSync(builtScript)) throw new Error(`${builtScript} is missing: run \`npm run build\` first`);
  const script = shipped === undefined ? mainScript : builtScript;
  const runtime = shipped === undefined ? [process.execPath, '--import', 'tsx'] : [shipped.node];
  const child = spawn('/bin/sh', [guardScript, String(process.pid), ...runtime, script, 'run', ...args], {
    env: shipped === undefined ? process.env : { ...process.env, NODE_OPTIONS: shipped.nodeOptions },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: LogLine[] = [];
  const stderr: string[] = [];
  createInterface({ input: child.stdout }).on('line', (text) => {
    try {
      logs.push(JSON.parse(text) as LogLine);
    } catch {
      logs.push({ msg: text });
    }
  });
  createInterface({ input: child.stderr }).on('line', (text) => stderr.push(text));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let running = true;
  void exited.then(() => (running = false));

  const waitForLog = (predicate: (line: LogLine) => boolean, description: string, timeoutMs = 60_000) =>
    waitFor(
      () => {
        if (!running && !logs.some(predicate)) throw new Error(`operator exited; stderr: ${stderr.join('\n')}`);
        return logs.find(predicate);
      },
      { timeoutMs, description },
    );
  const pid = () =>
    waitFor(
      () => {
        if (!running) throw new Error(`operator exited; stderr: ${stderr.join('\n')}`);
        return child.pid === undefined ? undefined : operatorPidUnder(child.pid, script);
      },
      { intervalMs: 20, description: 'the operator process' },
    );
  return {
    pid,
    logs,
    exited,
    waitForLog,
    async signal(signal) {
      process.kill(await pid(), signal);
    },
    async stop() {
      if (running && child.pid !== undefined) process.kill(child.pid, 'SIGTERM');
      await exited;
    },
  };
}
