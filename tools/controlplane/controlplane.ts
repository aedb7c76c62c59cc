// A real control plane for tests and development: etcd and kube-apiserver on free loopback
// ports, TLS everywhere the kubeconfig reaches, an admin client certificate, RBAC
// authorization and service-account tokens. Each process runs under guard.sh, so nothing
// survives the process that started it, even when that process is killed outright.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { waitFor } from '../harness/wait-for.js';
import { binariesBuilt, binaryPath, type BinaryName } from './build.js';
import { createPki, type ControlPlanePki } from './pki.js';

const guardScript = join(dirname(fileURLToPath(import.meta.url)), 'guard.sh');
const stateFileName = 'state.json';
const startTimeoutMs = 60_000;
const stopTimeoutMs = 30_000;

export interface StartControlPlaneOptions {
  /**
   * Where data, keys, logs and the kubeconfig go. Default: a fresh temporary directory that
   * `stop()` removes. A given directory is emptied first and kept on stop (logs stay readable).
   */
  dir?: string;
  /**
   * Leave the processes running after this process exits (`npm run cluster:up`); they are
   * stopped later from the state file with `stopDetachedControlPlane`. Default: false.
   */
  detached?: boolean;
  /**
   * The caller stops the control plane itself, in its own order, on SIGINT or SIGTERM (`npm
   * run dev` stops the operator first, so it does not log the apiserver going away). Its
   * processes then run in a process group of their own, so a Ctrl-C at the terminal reaches
   * the caller only; they are still stopped when the caller exits or dies. Default: false, a
   * signal to this process stops them at once.
   */
  callerStopsOnSignal?: boolean;
  /**
   * Also run kube-controller-manager with the controllers tests need (garbage collection,
   * Jobs, Deployments and their ReplicaSets), acting as the admin. Default: false.
   */
  controllerManager?: boolean;
  /**
   * Have kube-apiserver write an audit log (JSON lines) of what `policyFile` selects to
   * `path`: each request's arrival and completion by the apiserver's own clock. Default: none.
   */
  auditLog?: { policyFile: string; path: string };
}

/** The controllers started with `controllerManager: true`. */
export const CONTROLLERS = ['garbage-collector-controller', 'job-controller', 'deployment-controller', 'replicaset-controller'];

export interface ControlPlane {
  /** The kube-apiserver URL, https://127.0.0.1:<port>. */
  readonly server: string;
  /** An admin (system:masters) kubeconfig that verifies the server certificate. */
  readonly kubeconfigPath: string;
  /** Holds the data, keys, kubeconfig and the processes' logs. */
  readonly dir: string;
  /** Stops the kube-apiserver process; etcd keeps running with the data. */
  stopApiServer(): Promise<void>;
  /** Starts the kube-apiserver again on the same port and waits for /readyz. */
  startApiServer(): Promise<void>;
  restartApiServer(): Promise<void>;
  /** Pids of the guards running the processes; a guard exits only after its process. */
  guardPids(): { 'kube-apiserver': number | undefined; etcd: number | undefined; 'kube-controller-manager': number | undefined };
  /** Stops both processes (and removes the directory if it was a temporary one). */
  stop(): Promise<void>;
}

/** Guard pids of the processes this process owns, for the exit handlers. */
const ownedGuards = new Set<number>();
let exitHandlersInstalled = false;

let signalHandlersInstalled = false;

function installExitHandlers(stopOnSignal: boolean): void {
  if (!exitHandlersInstalled) {
    exitHandlersInstalled = true;
    // On exit only synchronous work runs: a SIGTERM to each guard, which stops its child.
    process.on('exit', signalOwnedGuards);
  }
  if (!stopOnSignal || signalHandlersInstalled) return;
  signalHandlersInstalled = true;
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const onSignal = () => {
      signalOwnedGuards();
      process.removeListener(signal, onSignal);
      // Without other listeners, re-raising gives the signal's default action (termination).
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    };
    process.on(signal, onSignal);
  }
}

function signalOwnedGuards(): void {
  for (const pid of ownedGuards) {
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      // Already gone.
    }
  }
}

/** Where freePort looks first: above the well-known and common service ports. */
const LOWEST_PICKED_PORT = 10_000;
/** Ports freePort has handed out in this process, never handed out again. */
const handedOut = new Set<number>();

/** The low end of the kernel's ephemeral port range, or undefined where it cannot be read. */
function ephemeralRangeStart(): number | undefined {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    return Number.isInteger(low) ? low : undefined;
  } catch {
    return undefined;
  }
}

/** Listens on 127.0.0.1:`port` (0: any) and closes again: the port it got, or undefined when taken. */
function probe(port: number): Promise<number | undefined> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', (error: NodeJS.ErrnoException) => (error.code === 'EADDRINUSE' ? resolve(undefined) : reject(error)));
    server.listen(port, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(address !== null && typeof address === 'object' ? address.port : undefined));
    });
  });
}

/**
 * A free TCP port on 127.0.0.1, for a process about to listen on it. Picked below the kernel's
 * ephemeral range: a port found by listening on 0 comes from that range, from which the kernel
 * also takes the source port of every outgoing connection, so it could be taken again before
 * the process listens (EADDRINUSE, seen in CI). Below the range only an explicit listen takes a
 * port; each pick is checked by listening on it, and none is handed out twice by this process.
 * Another process may still take it first; starts of the control plane retry.
 */
export async function freePort(): Promise<number> {
  const rangeStart = ephemeralRangeStart();
  if (rangeStart !== undefined && rangeStart - LOWEST_PICKED_PORT >= 1_000) {
    for (let attempt = 0; attempt < 100; attempt++) {
      const port = LOWEST_PICKED_PORT + Math.floor(Math.random() * (rangeStart - LOWEST_PICKED_PORT));
      if (handedOut.has(port) || (await probe(port)) === undefined) continue;
      handedOut.add(port);
      return port;
    }
  }
  const port = await probe(0);
  if (port === undefined) throw new Error('no port assigned');
  return port;
}

class GuardedProcess {
  private child: ChildProcess | undefined;
  private exit: Promise<void> | undefined;

  constructor(
    readonly name: BinaryName,
    private readonly args: string[],
    readonly logPath: string,
    private readonly detached: boolean,
    private readonly callerStopsOnSignal: boolean,
  ) {}

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  start(): void {
    const log = openSync(this.logPath, 'a');
    try {
      const owner = this.detached ? 0 : process.pid;
      const child = spawn('/bin/sh', [guardScript, String(owner), binaryPath(this.name), ...this.args], {
        stdio: ['ignore', log, log],
        // A session of its own: no terminal signal reaches it, and it outlives this process.
        detached: this.detached || this.callerStopsOnSignal,
      });
      if (child.pid === undefined) throw new Error(`cannot start ${this.name}`);
      this.child = child;
      this.exit = new Promise((resolve) => child.once('exit', () => resolve()));
      if (this.detached) child.unref();
      else {
        installExitHandlers(!this.callerStopsOnSignal);
        const pid = child.pid;
        ownedGuards.add(pid);
        void this.exit.then(() => ownedGuards.delete(pid));
      }
    } finally {
      closeSync(log);
    }
  }

  /** Resolves when `probe` succeeds; fails early, with the log's tail, if the process exits. */
  async waitUntilReady(probe: () => Promise<boolean>, description: string): Promise<void> {
    await waitFor(
      async () => {
        if (!this.running) throw new Error(`${this.name} exited:\n${this.logTail()}`);
        return probe();
      },
      { timeoutMs: startTimeoutMs, intervalMs: 200, description },
    ).catch((error: unknown) => {
      throw new Error(`${this.name} did not become ready (log: ${this.logPath})`, { cause: error });
    });
  }

  async stop(): Promise<void> {
    if (!this.child || !this.exit) return;
    if (this.running) this.child.kill('SIGTERM');
    await this.exit;
    this.child = undefined;
    this.exit = undefined;
  }

  logTail(): string {
    return readFileSync(this.logPath, 'utf8').split('\n').slice(-20).join('\n');
  }
}

/** What `stopDetachedControlPlane` needs: the guards' pids in stopping order (etcd last). */
interface DetachedState {
  guardPids: number[];
}

function httpOk(url: string): Promise<boolean> {
  return fetch(url, { signal: AbortSignal.timeout(2_000) }).then(
    (response) => response.ok,
    () => false,
  );
}

/** GET `url` answers 200; with `pki` as the admin, verified; without, unverified and anonymous. */
function httpsOk(url: string, pki: ControlPlanePki | undefined): Promise<boolean> {
  return new Promise((resolve) => {
    const credentials =
      pki === undefined ? { rejectUnauthorized: false } : { ca: readFileSync(pki.caCert), cert: readFileSync(pki.adminCert), key: readFileSync(pki.adminKey) };
    const req = request(url, { ...credentials, timeout: 2_000 });
    req.once('response', (response) => {
      response.resume();
      resolve(response.statusCode === 200);
    });
    req.once('timeout', () => req.destroy());
    req.once('error', () => resolve(false));
    req.end();
  });
}

function writeKubeconfig(path: string, server: string, pki: ControlPlanePki): void {
  const base64 = (file: string) => readFileSync(file).toString('base64');
  const kubeconfig = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'local', cluster: { server, 'certificate-authority-data': base64(pki.caCert) } }],
    users: [
      {
        name: 'admin',
        user: { 'client-certificate-data': base64(pki.adminCert), 'client-key-data': base64(pki.adminKey) },
      },
    ],
    contexts: [{ name: 'local-admin', context: { cluster: 'local', user: 'admin' } }],
    'current-context': 'local-admin',
  };
  writeFileSync(path, stringify(kubeconfig), { mode: 0o600 });
}

const temporaryDirPrefix = 'hpc-controlplane-';

/** Whether process `pid` exists (EPERM: it does, owned by someone else). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Temporary directories carry their owner's pid. An owner killed outright never removes its
 * directory (its guards still stop the processes), so the next start removes it.
 */
function removeAbandonedTemporaryDirs(): void {
  const pattern = new RegExp(`^${temporaryDirPrefix}(\\d+)-`);
  for (const entry of readdirSync(tmpdir())) {
    const owner = pattern.exec(entry)?.[1];
    if (owner !== undefined && !isAlive(Number(owner))) rmSync(join(tmpdir(), entry), { recursive: true, force: true });
  }
}

/** Starts etcd and kube-apiserver and returns once /readyz answers ok. */
export async function startControlPlane(options: StartControlPlaneOptions = {}): Promise<ControlPlane> {
  if (!binariesBuilt()) {
    throw new Error('control plane binaries are not built: run `npm run cluster:build` first');
  }
  const temporary = options.dir === undefined;
  if (temporary) removeAbandonedTemporaryDirs();
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), `${temporaryDirPrefix}${String(process.pid)}-`));
  const detached = options.detached ?? false;
  const callerStopsOnSignal = options.callerStopsOnSignal ?? false;
  if (!temporary) {
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
  }
  const pki = createPki(dir);
  const kubeconfigPath = join(dir, 'kubeconfig');

  const startWithFreePorts = async (
    name: BinaryName,
    portCount: number,
    argsFor: (ports: number[]) => string[],
    probeFor: (ports: number[]) => () => Promise<boolean>,
  ) => {
    // A port picked free can be taken before the process binds it: retry with new ones.
    for (let attempt = 1; ; attempt++) {
      const ports = await Promise.all(Array.from({ length: portCount }, freePort));
      const started = new GuardedProcess(name, argsFor(ports), join(dir, `${name}.log`), detached, callerStopsOnSignal);
      started.start();
      try {
        await started.waitUntilReady(probeFor(ports), `${name} ready`);
        return { process: started, ports };
      } catch (error) {
        await started.stop();
        if (attempt === 3 || !started.logTail().includes('address already in use')) throw error;
      }
    }
  };

  const etcd = await startWithFreePorts(
    'etcd',
    2,
    ([client, peer]) => {
      const clientUrl = `http://127.0.0.1:${String(client)}`;
      const peerUrl = `http://127.0.0.1:${String(peer)}`;
      return [
        '--name=default',
        `--data-dir=${join(dir, 'etcd')}`,
        `--listen-client-urls=${clientUrl}`,
        `--advertise-client-urls=${clientUrl}`,
        `--listen-peer-urls=${peerUrl}`,
        `--initial-advertise-peer-urls=${peerUrl}`,
        `--initial-cluster=default=${peerUrl}`,
        // Test data need not survive a power cut; fsync would dominate on small disks.
        '--unsafe-no-fsync',
        '--log-level=warn',
      ];
    },
    ([client]) => () => httpOk(`http://127.0.0.1:${String(client)}/health`),
  );
  const etcdUrl = `http://127.0.0.1:${String(etcd.ports[0])}`;

  const apiServerArgs = (port: number) => [
    `--etcd-servers=${etcdUrl}`,
    '--bind-address=127.0.0.1',
    '--advertise-address=127.0.0.1',
    `--secure-port=${String(port)}`,
    `--tls-cert-file=${pki.servingCert}`,
    `--tls-private-key-file=${pki.servingKey}`,
    `--client-ca-file=${pki.caCert}`,
    '--authorization-mode=RBAC',
    '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
    `--service-account-key-file=${pki.serviceAccountPublicKey}`,
    `--service-account-signing-key-file=${pki.serviceAccountPrivateKey}`,
    '--service-cluster-ip-range=10.0.0.0/24',
    '--allow-privileged=true',
    // No controller-manager creates ServiceAccounts, so pods would be refused without this.
    '--disable-admission-plugins=ServiceAccount',
    // Otherwise an open watch holds a stopping apiserver for a minute (until the HTTP
    // server's shutdown timeout); with a grace period it ends watches and exits.
    '--shutdown-watch-termination-grace-period=2s',
    // When a test process dies, both guards stop their children at once. Each of these
    // deregisters from etcd on shutdown and, with etcd gone, waits 10-20 s for it. A lone
    // apiserver needs none of them: no peers to proxy to or identify itself to, and the
    // kubernetes Service cannot have a loopback endpoint anyway.
    '--endpoint-reconciler-type=none',
    '--feature-gates=APIServerIdentity=false,UnknownVersionInteroperabilityProxy=false',
    ...(options.auditLog === undefined ? [] : [`--audit-policy-file=${options.auditLog.policyFile}`, `--audit-log-path=${options.auditLog.path}`]),
  ];
  let apiServer: { process: GuardedProcess; ports: number[] };
  try {
    apiServer = await startWithFreePorts(
      'kube-apiserver',
      1,
      ([port]) => apiServerArgs(port ?? 0),
      ([port]) => () => httpsOk(`https://127.0.0.1:${String(port)}/readyz`, pki),
    );
  } catch (error) {
    await etcd.process.stop();
    throw error;
  }
  const apiServerPort = apiServer.ports[0] ?? 0;
  const server = `https://127.0.0.1:${String(apiServerPort)}`;
  writeKubeconfig(kubeconfigPath, server, pki);

  let apiServerProcess = apiServer.process;
  let controllerManager: GuardedProcess | undefined;
  if (options.controllerManager === true) {
    try {
      const kcmDir = join(dir, 'kube-controller-manager');
      mkdirSync(kcmDir, { recursive: true });
      controllerManager = (
        await startWithFreePorts(
          'kube-controller-manager',
          1,
          ([port]) => [
            `--kubeconfig=${kubeconfigPath}`,
            `--authentication-kubeconfig=${kubeconfigPath}`,
            `--authorization-kubeconfig=${kubeconfigPath}`,
            '--bind-address=127.0.0.1',
            `--secure-port=${String(port)}`,
            `--cert-dir=${kcmDir}`,
            `--controllers=${CONTROLLERS.join(',')}`,
            '--leader-elect=false',
            '--use-service-account-credentials=false',
          ],
          // /healthz is open to anonymous requests; the serving certificate is self-signed.
          ([port]) => () => httpsOk(`https://127.0.0.1:${String(port)}/healthz`, undefined),
        )
      ).process;
    } catch (error) {
      await apiServerProcess.stop();
      await etcd.process.stop();
      throw error;
    }
  }
  if (detached) {
    const state: DetachedState = { guardPids: [...(controllerManager?.pid === undefined ? [] : [controllerManager.pid]), apiServerProcess.pid ?? 0, etcd.process.pid ?? 0] };
    writeFileSync(join(dir, stateFileName), JSON.stringify(state, null, 2));
  }

  const startApiServer = async () => {
    if (apiServerProcess.running) return;
    apiServerProcess = new GuardedProcess('kube-apiserver', apiServerArgs(apiServerPort), apiServerProcess.logPath, detached, callerStopsOnSignal);
    apiServerProcess.start();
    await apiServerProcess.waitUntilReady(() => httpsOk(`${server}/readyz`, pki), 'kube-apiserver ready');
  };
  const stopApiServer = () => apiServerProcess.stop();

  return {
    server,
    kubeconfigPath,
    dir,
    stopApiServer,
    startApiServer,
    async restartApiServer() {
      await stopApiServer();
      await startApiServer();
    },
    guardPids: () => ({ 'kube-apiserver': apiServerProcess.pid, etcd: etcd.process.pid, 'kube-controller-manager': controllerManager?.pid }),
    async stop() {
      await controllerManager?.stop();
      await apiServerProcess.stop();
      await etcd.process.stop();
      if (temporary) rmSync(dir, { recursive: true, force: true });
    },
  };
}

function isGuard(pid: number): boolean {
  try {
    return readFileSync(`/proc/${String(pid)}/cmdline`, 'utf8').includes(guardScript);
  } catch {
    return false;
  }
}

/**
 * Stops a control plane started with `detached: true` from its state file, by the guards'
 * pids (checked to still be guards, in case a stale file names reused pids). Returns false
 * when `dir` holds no running control plane.
 */
export async function stopDetachedControlPlane(dir: string): Promise<boolean> {
  let state: DetachedState;
  try {
    state = JSON.parse(readFileSync(join(dir, stateFileName), 'utf8')) as DetachedState;
  } catch {
    return false;
  }
  // In order, etcd last: an apiserver that loses etcd first stalls its
  // shutdown until the guard's SIGKILL.
  const running = state.guardPids.filter(isGuard);
  for (const pid of running) {
    process.kill(pid, 'SIGTERM');
    await waitFor(() => !isGuard(pid), { timeoutMs: stopTimeoutMs, description: `process ${String(pid)} to exit` });
  }
  rmSync(join(dir, stateFileName));
  return running.length > 0;
}

/** An admin KubeConfig for a control plane's kubeconfig file. */
export function loadKubeConfig(kubeconfigPath: string): KubeConfig {
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromFile(kubeconfigPath);
  return kubeConfig;
}

/**
 * A KubeConfig that acts as ServiceAccount `namespace/name` (which must exist), with a token
 * from the TokenRequest API: the identity a test gives the operator to prove its RBAC.
 */
export async function serviceAccountKubeConfig(
  admin: KubeConfig,
  namespace: string,
  name: string,
  { expirationSeconds = 3600 }: { expirationSeconds?: number } = {},
): Promise<KubeConfig> {
  const cluster = admin.getCurrentCluster();
  if (!cluster) throw new Error('the admin kubeconfig has no current cluster');
  const tokenRequest = await admin.makeApiClient(CoreV1Api).createNamespacedServiceAccountToken({
    namespace,
    name,
    // No audiences: the token is for the apiserver's own audience.
    body: { spec: { audiences: [], expirationSeconds } },
  });
  const token = tokenRequest.status?.token;
  if (!token) throw new Error(`TokenRequest for ${namespace}/${name} returned no token`);
  const user = `system:serviceaccount:${namespace}:${name}`;
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromOptions({
    clusters: [cluster],
    users: [{ name: user, token }],
    contexts: [{ name: user, cluster: cluster.name, user }],
    currentContext: user,
  });
  return kubeConfig;
}

/** Writes a KubeConfig to a file, for kubectl (`--kubeconfig`) or a child process. */
export function writeKubeConfigFile(kubeConfig: KubeConfig, path: string): void {
  writeFileSync(path, kubeConfig.exportConfig(), { mode: 0o600 });
}
