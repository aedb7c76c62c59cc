import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import type { Agent, AgentOptions } from 'node:https';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { KubeConfig, type Cluster } from '@kubernetes/client-node';

/**
 * The Kubernetes configuration, from `--kubeconfig`, `KUBECONFIG`, `~/.kube/config`, or the
 * pod's service account — in that order. client-node's loadFromDefault would otherwise fall
 * back to http://localhost:8080 in silence; here a missing configuration is a clear error.
 */
export function loadKubeConfig(explicitPath?: string, env: NodeJS.ProcessEnv = process.env): KubeConfig {
  const kc = new KubeConfig();
  if (explicitPath !== undefined) {
    if (!existsSync(explicitPath)) throw new Error(`kubeconfig ${explicitPath} does not exist`);
    kc.loadFromFile(explicitPath);
    return checked(kc, explicitPath);
  }
  const fromEnv = env.KUBECONFIG;
  if (fromEnv !== undefined && fromEnv !== '') {
    kc.loadFromDefault();
    return checked(kc, `KUBECONFIG=${fromEnv}`);
  }
  const home = join(env.HOME ?? homedir(), '.kube', 'config');
  if (existsSync(home)) {
    kc.loadFromFile(home);
    return checked(kc, home);
  }
  if (env.KUBERNETES_SERVICE_HOST !== undefined && env.KUBERNETES_SERVICE_HOST !== '') {
    kc.loadFromCluster();
    return kc;
  }
  throw new Error('no Kubernetes configuration found: pass --kubeconfig, set KUBECONFIG, or run in a pod with a service account');
}

function checked(kc: KubeConfig, source: string): KubeConfig {
  if (kc.getCurrentCluster() === null) throw new Error(`${source} names no current cluster`);
  return kc;
}

type AgentFactory = (cluster: Cluster | null, options: AgentOptions & Record<string, unknown>) => Agent;

/**
 * client-node 1.4 builds a new https.Agent — so a new TLS connection — for every request
 * (KubeConfig's private createAgent). This makes the KubeConfig reuse one keep-alive agent
 * per server and TLS material instead, so syncs stop paying a handshake per call. The
 * bearer token is a header, not agent state, so token rotation is unaffected.
 *
 * A client-node internal, wrapped because it is the one place every request's agent is made
 * and client-node offers no option for it. test/unit/kubeconfig.test.ts pins it: it fails
 * when client-node renames the method (bind throws here too, at start-up, not silently) or
 * starts reusing agents itself ("is what client-node does not do by itself"), then drop this.
 */
export function reuseConnections(kc: KubeConfig): KubeConfig {
  const target = kc as unknown as { createAgent: AgentFactory };
  const create = target.createAgent.bind(kc);
  const agents = new Map<string, { fingerprint: string; agent: Agent }>();
  target.createAgent = (cluster, options) => {
    const server = cluster?.server ?? '';
    // Buffers serialise as their bytes (Buffer#toJSON), so equal material hashes equal.
    const material = [cluster?.proxyUrl, options.rejectUnauthorized, options.passphrase, options.ca, options.cert, options.key, options.pfx];
    const fingerprint = createHash('sha256').update(JSON.stringify(material)).digest('hex');
    const cached = agents.get(server);
    if (cached !== undefined && cached.fingerprint === fingerprint) return cached.agent;
    // New TLS material (a rotated client certificate, say): a fresh agent, the old one closed.
    cached?.agent.destroy();
    const agent = create(cluster, { ...options, keepAlive: true });
    agents.set(server, { fingerprint, agent });
    return agent;
  };
  return kc;
}
