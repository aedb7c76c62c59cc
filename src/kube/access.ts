// How the operator reaches the apiserver: its address, the TLS material and the credentials.
//
// client-node's KubeConfig module loads the whole generated API client (every model and
// every API group) with it: some 75 MB of a 2-core pod's memory, for the ten calls this
// operator makes. So the common configurations are read here, small: the pod's service
// account (the production case), and kubeconfig files with a token, a token file or a client
// certificate. A kubeconfig that needs more (exec or auth-provider plugins, proxies, several
// files merged) is loaded by client-node, imported only then, and used through the same
// interface (kubeAccessFromKubeConfig).
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { Agent, type AgentOptions } from 'node:https';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import type { KubeConfig } from '@kubernetes/client-node';

/** What one request needs: the apiserver's URL, a keep-alive agent with the TLS material, and headers. */
export interface KubeConnection {
  /** `https://host:port`, with no trailing slash. */
  server: string;
  agent: Agent;
  headers: Record<string, string>;
}

/** The apiserver as this process reaches it. Credentials may rotate: ask before every request. */
export interface KubeAccess {
  connection(): Promise<KubeConnection>;
  /** Closes idle connections. */
  close(): void;
}

const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';
/** Bound service-account tokens rotate (about hourly); re-reading the file each minute follows them, as client-go does. */
const TOKEN_FILE_REREAD_MS = 60_000;

/** A token read from a file and re-read now and then. */
function tokenFromFile(path: string, now: () => number = Date.now): () => string {
  let token = '';
  let readAt = -Infinity;
  return () => {
    if (now() - readAt >= TOKEN_FILE_REREAD_MS) {
      token = readFileSync(path, 'utf8').trim();
      readAt = now();
    }
    return token;
  };
}

interface StaticAccessOptions {
  server: string;
  tls: Pick<AgentOptions, 'ca' | 'cert' | 'key' | 'rejectUnauthorized' | 'servername'>;
  /** The bearer token, if any; called before every request. */
  token?: () => string;
  basic?: { username: string; password: string };
}

/** Access with fixed TLS material: one keep-alive agent for the life of the process. */
function staticAccess(options: StaticAccessOptions): KubeAccess {
  const agent = new Agent({ ...options.tls, keepAlive: true });
  const server = options.server.replace(/\/+$/, '');
  const basic = options.basic === undefined ? undefined : `Basic ${Buffer.from(`${options.basic.username}:${options.basic.password}`).toString('base64')}`;
  return {
    connection: (): Promise<KubeConnection> => {
      const token = options.token?.();
      const authorization = token ? `Bearer ${token}` : basic;
      const headers: Record<string, string> = authorization === undefined ? {} : { Authorization: authorization };
      return Promise.resolve({ server, agent, headers });
    },
    close: () => agent.destroy(),
  };
}

/** The pod's service account: the apiserver's Service address, its CA, and the rotating token. */
export function inClusterAccess(env: NodeJS.ProcessEnv = process.env, dir = SERVICE_ACCOUNT_DIR): KubeAccess {
  const host = env.KUBERNETES_SERVICE_HOST ?? '';
  const port = env.KUBERNETES_SERVICE_PORT ?? '443';
  return staticAccess({
    server: `https://${host.includes(':') ? `[${host}]` : host}:${port}`,
    tls: { ca: readFileSync(join(dir, 'ca.crt')) },
    token: tokenFromFile(join(dir, 'token')),
  });
}

// The parts of a kubeconfig file read here (clientcmd's names).
interface NamedCluster {
  name: string;
  cluster: {
    server?: string;
    'certificate-authority'?: string;
    'certificate-authority-data'?: string;
    'insecure-skip-tls-verify'?: boolean;
    'tls-server-name'?: string;
    'proxy-url'?: string;
  };
}
interface NamedUser {
  name: string;
  user?: {
    token?: string;
    tokenFile?: string;
    'client-certificate'?: string;
    'client-certificate-data'?: string;
    'client-key'?: string;
    'client-key-data'?: string;
    username?: string;
    password?: string;
    exec?: unknown;
    'auth-provider'?: unknown;
  };
}
interface KubeconfigFile {
  'current-context'?: string;
  clusters?: NamedCluster[];
  users?: NamedUser[];
  contexts?: { name: string; context: { cluster: string; user?: string } }[];
}

/** Why client-node must read this kubeconfig, or undefined when it is read here. */
function needsClientNode(cluster: NamedCluster['cluster'], user: NamedUser['user']): string | undefined {
  if (user?.exec !== undefined) return 'exec';
  if (user?.['auth-provider'] !== undefined) return 'auth-provider';
  if (cluster['proxy-url'] !== undefined) return 'proxy-url';
  return undefined;
}

/**
 * The kubeconfig at `path`, read here when it holds only what staticAccess covers; undefined
 * when it needs client-node. Paths inside are relative to the file, as clientcmd reads them.
 */
async function kubeconfigAccess(path: string): Promise<KubeAccess | undefined> {
  const { parse } = await import('yaml');
  const file = (parse(readFileSync(path, 'utf8')) ?? {}) as KubeconfigFile;
  const contextName = file['current-context'];
  if (!contextName) throw new Error(`${path} names no current context`);
  const context = file.contexts?.find((c) => c.name === contextName)?.context;
  if (context === undefined) throw new Error(`${path}: context "${contextName}" is not defined`);
  const cluster = file.clusters?.find((c) => c.name === context.cluster)?.cluster;
  if (cluster?.server === undefined) throw new Error(`${path} names no current cluster`);
  const user = file.users?.find((u) => u.name === context.user)?.user;
  if (needsClientNode(cluster, user) !== undefined) return undefined;

  const base = dirname(resolve(path));
  const bytes = (data: string | undefined, file: string | undefined): Buffer | undefined =>
    data !== undefined ? Buffer.from(data, 'base64') : file !== undefined ? readFileSync(resolve(base, file)) : undefined;
  const ca = bytes(cluster['certificate-authority-data'], cluster['certificate-authority']);
  const cert = bytes(user?.['client-certificate-data'], user?.['client-certificate']);
  const key = bytes(user?.['client-key-data'], user?.['client-key']);
  const tokenFile = user?.tokenFile;
  const token = user?.token;
  return staticAccess({
    server: cluster.server,
    tls: {
      ...(ca === undefined ? {} : { ca }),
      ...(cert === undefined ? {} : { cert }),
      ...(key === undefined ? {} : { key }),
      ...(cluster['insecure-skip-tls-verify'] === true ? { rejectUnauthorized: false } : {}),
      ...(cluster['tls-server-name'] === undefined ? {} : { servername: cluster['tls-server-name'] }),
    },
    ...(token !== undefined ? { token: () => token } : tokenFile !== undefined ? { token: tokenFromFile(resolve(base, tokenFile)) } : {}),
    ...(user?.username !== undefined && user.password !== undefined ? { basic: { username: user.username, password: user.password } } : {}),
  });
}

/**
 * Access through a client-node KubeConfig: it applies its own authentication (exec plugins,
 * auth providers, token refresh) to every request. The agent is kept while the TLS material
 * stays the same, so requests reuse connections (client-node alone makes an agent per request).
 */
export function kubeAccessFromKubeConfig(kubeConfig: KubeConfig): KubeAccess {
  let kept: { fingerprint: string; agent: Agent } | undefined;
  return {
    async connection() {
      const cluster = kubeConfig.getCurrentCluster();
      if (cluster === null) throw new Error('the kubeconfig names no current cluster');
      const options: AgentOptions & { headers?: Record<string, string>; auth?: string } = { headers: {} };
      await kubeConfig.applyToHTTPSOptions(options);
      const tls = { ca: options.ca, cert: options.cert, key: options.key, pfx: options.pfx, passphrase: options.passphrase, rejectUnauthorized: options.rejectUnauthorized, servername: options.servername };
      // Buffers serialise as their bytes, so equal material hashes equal.
      const fingerprint = createHash('sha256').update(JSON.stringify([cluster.server, tls])).digest('hex');
      if (kept?.fingerprint !== fingerprint) {
        kept?.agent.destroy();
        kept = { fingerprint, agent: new Agent({ ...tls, keepAlive: true }) };
      }
      const headers: Record<string, string> = { ...options.headers };
      if (options.auth !== undefined) headers.Authorization = `Basic ${Buffer.from(options.auth).toString('base64')}`;
      return { server: cluster.server.replace(/\/+$/, ''), agent: kept.agent, headers };
    },
    close: () => kept?.agent.destroy(),
  };
}

/** A kubeconfig client-node must read: imported only now, for its size. */
async function viaClientNode(load: (kc: KubeConfig) => void, source: string): Promise<KubeAccess> {
  const { KubeConfig } = await import('@kubernetes/client-node');
  const kc = new KubeConfig();
  load(kc);
  if (kc.getCurrentCluster() === null) throw new Error(`${source} names no current cluster`);
  return kubeAccessFromKubeConfig(kc);
}

/**
 * The Kubernetes access, from `--kubeconfig`, `KUBECONFIG`, `~/.kube/config`, or the pod's
 * service account — in that order. A missing configuration is a clear error, never a silent
 * fallback to http://localhost:8080.
 */
export async function loadKubeAccess(explicitPath?: string, env: NodeJS.ProcessEnv = process.env): Promise<KubeAccess> {
  const fromFile = async (path: string): Promise<KubeAccess> => (await kubeconfigAccess(path)) ?? viaClientNode((kc) => kc.loadFromFile(path), path);
  if (explicitPath !== undefined) {
    if (!existsSync(explicitPath)) throw new Error(`kubeconfig ${explicitPath} does not exist`);
    return fromFile(explicitPath);
  }
  const fromEnv = env.KUBECONFIG;
  if (fromEnv !== undefined && fromEnv !== '') {
    const paths = fromEnv.split(':').filter((p) => p !== '');
    // Several files are merged by clientcmd's rules: client-node implements them.
    if (paths.length === 1 && paths[0] !== undefined && existsSync(paths[0])) return fromFile(paths[0]);
    return viaClientNode((kc) => kc.loadFromDefault(), `KUBECONFIG=${fromEnv}`);
  }
  const home = join(env.HOME ?? homedir(), '.kube', 'config');
  if (existsSync(home)) return fromFile(home);
  if (env.KUBERNETES_SERVICE_HOST !== undefined && env.KUBERNETES_SERVICE_HOST !== '') return inClusterAccess(env);
  throw new Error('no Kubernetes configuration found: pass --kubeconfig, set KUBECONFIG, or run in a pod with a service account');
}
