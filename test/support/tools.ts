// Command-line tools driven as users drive them: any program, and the kubectl and helm built
// with the control plane, kubectl acting as the shared control plane's admin.
import { spawn } from 'node:child_process';
import { helmPath, kubectlPath } from '../../tools/controlplane/build.js';
import { testKubeconfigPath } from '../../tools/harness/cluster.js';

export interface ToolOutput {
  stdout: string;
  stderr: string;
}

export interface ToolOptions {
  /** Written to the tool's stdin. */
  input?: string;
  cwd?: string;
}

/** Runs a program to its end; a non-zero exit rejects with its stderr. */
export function runTool(file: string, args: string[], { input, cwd }: ToolOptions = {}): Promise<ToolOutput> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      const output = { stdout: Buffer.concat(stdout).toString('utf8'), stderr: Buffer.concat(stderr).toString('utf8') };
      if (code === 0) resolve(output);
      else reject(new Error(`${file} ${args.join(' ')} exited with ${signal ?? String(code)}:\n${output.stderr}`));
    });
    child.stdin.end(input);
  });
}

export function kubectl(args: string[], options?: ToolOptions): Promise<ToolOutput> {
  return runTool(kubectlPath(), ['--kubeconfig', testKubeconfigPath(), ...args], options);
}

export function helm(args: string[], options?: ToolOptions): Promise<ToolOutput> {
  return runTool(helmPath(), args, options);
}

/**
 * `kubectl apply --server-side --dry-run=server` of `manifests` (YAML): the API server
 * validates and admits every object and stores none. Resolves with kubectl's output.
 */
export function serverSideDryRun(manifests: string, namespace?: string): Promise<ToolOutput> {
  const namespaceArgs = namespace === undefined ? [] : ['--namespace', namespace];
  return kubectl(['apply', '--server-side', '--dry-run=server', ...namespaceArgs, '-f', '-'], { input: manifests });
}
