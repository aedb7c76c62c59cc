// `npm run dev` as a developer uses it: started in its own directory (HPC_DEV_DIR), so a
// developer's .local/ is left alone; the printed commands run as printed, through a shell (the
// sample Job's pod, created by kube-controller-manager, runs as the user it claims by name);
// a Ctrl-C (SIGINT to its whole process group, as a terminal sends it) stops every process it
// started, the operator before the apiserver, so nothing fails on the way down.
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, expect, test } from '@jest/globals';
import type { DevState } from '../../dev/dev.js';
import { loadKubeConfig } from '../../tools/controlplane/controlplane.js';
import { readHpcCluster, readyOf } from '../../tools/harness/operator.js';
import { waitFor } from '../../tools/harness/wait-for.js';

const execFileAsync = promisify(execFile);
const projectRoot = fileURLToPath(new URL('../..', import.meta.url));
const devDir = mkdtempSync(join(tmpdir(), 'hpc-dev-test-'));
const startTimeoutMs = 180_000;

interface DevRun {
  pid: number;
  output: () => string;
  exited: Promise<number | null>;
}

/** The dev entry exactly as `npm run dev` runs it, without npm's own process in between. */
function startDev(): DevRun {
  const env: NodeJS.ProcessEnv = { ...process.env, HPC_DEV_DIR: devDir };
  delete env.NODE_OPTIONS; // Jest's --experimental-vm-modules is not a developer's setting
  // A process group of its own, as a terminal's foreground job has.
  const child = spawn(process.execPath, ['--import', 'tsx', 'dev/dev.ts'], { cwd: projectRoot, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  return { pid: child.pid ?? 0, output: () => output, exited };
}

const started: DevRun[] = [];

afterAll(async () => {
  // A failed test leaves it running: its processes' guards stop them once it is gone.
  for (const run of started) {
    try {
      process.kill(run.pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
    await run.exited;
  }
  rmSync(devDir, { recursive: true, force: true });
});

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw error;
  }
}

/** The process a guard runs: its child that is not one of its `sleep` polls. */
function guardedPid(guardPid: number): number | undefined {
  const children = readFileSync(`/proc/${String(guardPid)}/task/${String(guardPid)}/children`, 'utf8').trim().split(/\s+/).map(Number);
  return children.find((pid) => !readFileSync(`/proc/${String(pid)}/cmdline`, 'utf8').startsWith('sleep\0'));
}

test('npm run dev syncs the sample, runs a Job as a user claimed by name, shows a user added with the printed curl command, and stops everything on SIGINT', async () => {
  const dev = startDev();
  started.push(dev);
  await Promise.race([
    waitFor(() => dev.output().includes('Ctrl-C stops everything.'), { timeoutMs: startTimeoutMs, description: 'the printed instructions' }),
    dev.exited.then((code) => Promise.reject(new Error(`npm run dev exited with ${String(code)}:\n${dev.output()}`))),
  ]);
  expect(dev.output()).toContain('chem-lab is Ready: 33 users synced, 1 skipped');

  const kubeConfig = loadKubeConfig(join(devDir, 'kubeconfig'));
  const cluster = await readHpcCluster(kubeConfig, 'research', 'chem-lab');
  expect(readyOf(cluster)).toMatchObject({ status: 'True', reason: 'Synced' });
  expect(cluster.status?.userCount).toBe(33);
  expect(cluster.status?.skippedUsers).toEqual([{ username: 'root', reason: expect.stringContaining('uid 0') }]);

  const state = JSON.parse(readFileSync(join(devDir, 'dev.json'), 'utf8')) as DevState;
  expect(state.pid).toBe(dev.pid);
  const guards = Object.values(state.guardPids).map(Number);
  const processes = [dev.pid, ...guards, ...guards.map((guard) => guardedPid(guard) ?? 0)];
  // etcd, kube-apiserver, kube-controller-manager, the simulator and the operator
  expect(guards).toHaveLength(5);
  for (const pid of processes) expect(isRunning(pid)).toBe(true);

  // A second session with the same directory refuses to start instead of wiping the first.
  const second = startDev();
  expect(await second.exited).toBe(1);
  expect(second.output()).toContain(`npm run dev is already running with ${devDir} (pid ${String(dev.pid)})`);

  const printed = dev.output().split('\n').filter((line) => line.startsWith('  ')).map((line) => line.trim());
  const command = (predicate: (line: string) => boolean): string => {
    const line = printed.find(predicate);
    if (line === undefined) throw new Error(`no such command printed:\n${printed.join('\n')}`);
    return line;
  };
  const exportLine = command((line) => line.startsWith('export PATH='));
  const shell = async (line: string): Promise<string> => (await execFileAsync('/bin/sh', ['-c', `${exportLine}\n${line}`])).stdout;

  expect(await shell(command((line) => line === 'kubectl get hpcc -A'))).toMatch(/research\s+chem-lab\s+hpc-qig9xu97\s+jinan1a\s+33\s+True/);
  // zhangwei: uid 2010 in Prof. Wang's group 2000, from dev/sample-users.yaml.
  expect(dev.output()).toContain('created Job analysis, whose pods claim user zhangwei of chem-lab');
  const securityContextCommand = command((line) => line.endsWith("jsonpath='{.items[0].spec.securityContext}'"));
  const securityContext = await waitFor(
    async () => {
      const printedContext = await shell(securityContextCommand).catch(() => '');
      return printedContext.startsWith('{') ? (JSON.parse(printedContext) as unknown) : undefined;
    },
    { description: "the sample Job's pod" },
  );
  expect(securityContext).toEqual({ runAsUser: 2010, runAsGroup: 2000, runAsNonRoot: true, supplementalGroups: [2000] });
  await shell(command((line) => line.startsWith('curl -X POST ')));
  await shell(command((line) => line.includes(' annotate hpcc chem-lab hpc.shanhe.com/sync-requested=')));
  const passwdCommand = command((line) => line.endsWith("jsonpath='{.data.passwd}'"));
  await waitFor(async () => (await shell(passwdCommand)).includes('lihua:x:2022:2000:member:/public/shanhe/lihua:/bin/sh'), {
    description: 'the added user in the passwd file',
  });

  const beforeStop = dev.output().length;
  process.kill(-dev.pid, 'SIGINT'); // the terminal's Ctrl-C: to the whole foreground process group
  expect(await dev.exited).toBe(0);
  // The operator stopped while the apiserver still answered: no failed request logged.
  const stopping = dev.output().slice(beforeStop);
  expect(stopping).toContain('SIGINT: stopping');
  expect(stopping.split('\n').filter((line) => /ERROR|WARN|\b503\b/.test(line))).toEqual([]);
  expect(processes.filter(isRunning)).toEqual([]);
  expect(existsSync(join(devDir, 'dev.json'))).toBe(false);
}, startTimeoutMs + 120_000);
