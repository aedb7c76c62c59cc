// A TCP proxy in front of the real kube-apiserver, to cut one client's connection while
// everyone else keeps theirs: a network partition for one informer or elector, with the
// apiserver itself untouched. TLS passes through (the serving certificate names 127.0.0.1).
// With a target chosen per connection, it stands in for a Service in front of webhook replicas.
import { connect, createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';

type Mode = 'forwarding' | 'cut' | 'stalled';

export class TcpProxy {
  private readonly sockets = new Set<Socket>();
  private mode: Mode = 'forwarding';

  private constructor(
    private readonly server: Server,
    private readonly target: () => { host: string; port: number } | undefined,
  ) {
    server.on('connection', (client) => this.accept(client));
  }

  /**
   * Listens on 127.0.0.1 on a free port and forwards to `target`, or, when it is a function,
   * to where it says each new connection goes (none: the connection is refused), as a
   * Service's load balancing does.
   */
  static async start(target: { host: string; port: number } | (() => { host: string; port: number } | undefined)): Promise<TcpProxy> {
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    return new TcpProxy(server, typeof target === 'function' ? target : () => target);
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  /** Resets every open connection and every new one until `restore()`: a refused network. */
  cut(): void {
    this.mode = 'cut';
    for (const socket of this.sockets) socket.resetAndDestroy();
  }

  /**
   * Stops moving bytes, on open connections and on new ones until `restore()`, without
   * closing anything: a network that died silently. Stalled connections stay stalled.
   */
  stall(): void {
    this.mode = 'stalled';
    for (const socket of this.sockets) {
      socket.unpipe();
      socket.pause();
    }
  }

  restore(): void {
    this.mode = 'forwarding';
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

  private track(socket: Socket): void {
    this.sockets.add(socket);
    socket.on('error', () => socket.destroy());
    socket.on('close', () => this.sockets.delete(socket));
  }

  private accept(client: Socket): void {
    const target = this.target();
    if (this.mode === 'cut' || target === undefined) {
      client.resetAndDestroy();
      return;
    }
    this.track(client);
    if (this.mode === 'stalled') {
      client.pause();
      return;
    }
    const upstream = connect(target.port, target.host);
    this.track(upstream);
    client.pipe(upstream);
    upstream.pipe(client);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  }
}

/** The host and port of a kubeconfig's current cluster. */
export function apiServerAddress(kubeConfig: KubeConfig): { host: string; port: number } {
  const server = kubeConfig.getCurrentCluster()?.server;
  if (!server) throw new Error('the kubeconfig has no current cluster');
  const url = new URL(server);
  return { host: url.hostname, port: Number(url.port) };
}
