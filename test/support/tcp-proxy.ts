// A TCP proxy in front of the real kube-apiserver, to cut one client's connection while
// everyone else keeps theirs: a network partition for one informer or elector, with the
// apiserver itself untouched. TLS passes through (the serving certificate names 127.0.0.1).
import { connect, createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';

export class TcpProxy {
  private readonly sockets = new Set<Socket>();
  private connected = true;

  private constructor(
    private readonly server: Server,
    private readonly target: { host: string; port: number },
  ) {
    server.on('connection', (client) => this.accept(client));
  }

  /** Listens on 127.0.0.1 on a free port and forwards to `target`. */
  static async start(target: { host: string; port: number }): Promise<TcpProxy> {
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    return new TcpProxy(server, target);
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  /** Resets every open connection and every new one until `restore()`. */
  cut(): void {
    this.connected = false;
    for (const socket of this.sockets) socket.resetAndDestroy();
  }

  restore(): void {
    this.connected = true;
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** A copy of `kubeConfig` whose current cluster is reached through this proxy. */
  kubeConfigThrough(kubeConfig: KubeConfig): KubeConfig {
    const current = kubeConfig.getCurrentCluster();
    if (!current) throw new Error('the kubeconfig has no current cluster');
    const proxied = new KubeConfig();
    proxied.loadFromOptions({
      clusters: kubeConfig.clusters.map((cluster) =>
        cluster.name === current.name ? { ...cluster, server: `https://127.0.0.1:${String(this.port)}` } : cluster,
      ),
      users: kubeConfig.users,
      contexts: kubeConfig.contexts,
      currentContext: kubeConfig.currentContext,
    });
    return proxied;
  }

  private accept(client: Socket): void {
    if (!this.connected) {
      client.resetAndDestroy();
      return;
    }
    const upstream = connect(this.target.port, this.target.host);
    for (const [from, to] of [
      [client, upstream],
      [upstream, client],
    ] as const) {
      this.sockets.add(from);
      from.pipe(to);
      from.on('error', () => to.destroy());
      from.on('close', () => {
        this.sockets.delete(from);
        to.destroy();
      });
    }
  }
}

/** The host and port of a kubeconfig's current cluster. */
export function apiServerAddress(kubeConfig: KubeConfig): { host: string; port: number } {
  const server = kubeConfig.getCurrentCluster()?.server;
  if (!server) throw new Error('the kubeconfig has no current cluster');
  const url = new URL(server);
  return { host: url.hostname, port: Number(url.port) };
}
