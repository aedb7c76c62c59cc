// What the Dockerfile's runtime stage holds, made here without a container engine: the
// lockfile's production dependencies (`npm ci --omit=dev`), the compiled dist/ and crds/, in
// a directory of their own. The program must start from it as the image starts it,
// `node dist/cli/main.js run`, configured as the Deployment configures it.
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { CoordinationV1Api, type KubeConfig } from '@kubernetes/client-node';
import fetch from 'node-fetch';
import { writeKubeConfigFile } from '../../tools/controlplane/controlplane.js';
import { createTestNamespace, deleteTestNamespace, testKubeConfig } from '../../tools/harness/cluster.js';
import { installCrd, operatorKubeConfig } from '../../tools/harness/operator.js';
import { waitFor } from '../../tools/harness/wait-for.js';
import { runTool } from '../support/tools.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const guardScript = join(root, 'tools/controlplane/guard.sh');

let admin: KubeConfig;
let namespace: string;
let appDir: string;
let operator: ChildProcessByStdio<null, Readable, Readable> | undefined;

beforeAll(async () => {
  admin = testKubeConfig();
  appDir = mkdtempSync(join(tmpdir(), 'hpc-production-install-'));
  for (const file of ['package.json', 'package-lock.json']) copyFileSync(join(root, file), join(appDir, file));
  cpSync(join(root, 'crds'), join(appDir, 'crds'), { recursive: true });
  // The npm cache makes the install quick; `--prefer-offline` skips revalidating it.
  const install = runTool('npm', ['ci', '--omit=dev', '--ignore-scripts', '--prefer-offline', '--no-audit', '--no-fund'], { cwd: appDir });
  const compile = runTool(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json', '--outDir', join(appDir, 'dist')], { cwd: root });
  await Promise.all([install, compile, installCrd(admin)]);
  namespace = await createTestNamespace(admin, 'prod-install');
}, 300_000);

afterAll(async () => {
  if (operator !== undefined && operator.exitCode === null) {
    const exited = new Promise((resolve) => operator?.once('exit', resolve));
    operator.kill('SIGTERM');
    await exited;
  }
  await deleteTestNamespace(admin, namespace);
  rmSync(appDir, { recursive: true, force: true });
});

const main = (args: string[]) => runTool(process.execPath, ['dist/cli/main.js', ...args], { cwd: appDir });

test('has no development dependency to lean on', () => {
  expect(existsSync(join(appDir, 'node_modules/@kubernetes/client-node'))).toBe(true);
  expect(existsSync(join(appDir, 'node_modules/typescript'))).toBe(false);
  expect(existsSync(join(appDir, 'node_modules/tsx'))).toBe(false);
});

test('leaves the simulator out: the command says it is a development tool and where to get it', async () => {
  await expect(main(['simulator'])).rejects.toThrow(/exited with 1:\nhpc-user-operator simulator: the provider API simulator is a development tool, not part of this install: run it from a checkout/);
  expect(existsSync(join(appDir, 'dist/provider/simulator'))).toBe(false);
});

test('prints its usage and the run command\'s flags', async () => {
  expect((await main(['--help'])).stdout).toContain('Usage: hpc-user-operator <command>');
  expect((await main(['run', '--help'])).stdout).toContain('--leader-elect');
});

test('runs as the default install runs it: every namespace, leader in POD_NAMESPACE, healthy and ready, SIGTERM exits 0', async () => {
  const kubeconfigFile = join(appDir, 'kubeconfig');
  writeKubeConfigFile(await operatorKubeConfig(admin, namespace, 'cluster'), kubeconfigFile);
  const args = ['run', '--kubeconfig', kubeconfigFile, '--leader-elect', '--metrics-addr', '127.0.0.1:0', '--health-addr', '127.0.0.1:0'];
  // Under the guard, so it cannot outlive the test run; the guard passes SIGTERM on and exits with its status.
  const child = spawn('/bin/sh', [guardScript, String(process.pid), process.execPath, 'dist/cli/main.js', ...args], {
    cwd: appDir,
    env: { ...process.env, POD_NAMESPACE: namespace, POD_NAME: 'hpc-user-operator-0' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  operator = child;
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const logs: { msg?: string; health?: string }[] = [];
  createInterface({ input: child.stdout }).on('line', (line) => logs.push(JSON.parse(line) as { msg?: string }));
  const logged = (msg: string) => waitFor(() => logs.find((line) => line.msg === msg), { timeoutMs: 60_000, description: `log "${msg}"` });

  await logged('caches synced');
  const { health } = await logged('started');
  await logged('leading: reconciling');
  for (const path of ['/healthz', '/readyz']) expect((await fetch(`http://${health ?? ''}${path}`)).status).toBe(200);
  const lease = await admin.makeApiClient(CoordinationV1Api).readNamespacedLease({ namespace, name: 'hpc-user-operator' });
  expect(lease.spec?.holderIdentity).toMatch(/^hpc-user-operator-0-/);

  child.kill('SIGTERM');
  expect(await exited).toBe(0);
});
