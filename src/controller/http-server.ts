// The operational endpoints: /metrics for Prometheus, /healthz and /readyz for the kubelet.
// One server when both addresses are the same, two otherwise.
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import { http } from '../runtime/node-http.js';

export interface OperationalServerOptions {
  /** `host:port` for /metrics (`:port` or `[::]:port` for every interface); omitted: not served. */
  metricsAddr?: string;
  /** `host:port` for /healthz and /readyz; omitted: not served. */
  healthAddr?: string;
  registry: Registry;
  /** /readyz answers 200 only while this is true (caches synced, say). */
  isReady: () => boolean;
  /**
   * Why the operator is unhealthy, one line each: /healthz answers 200 while there is none,
   * and 503 with the lines otherwise. Answering at all shows the event loop is not stuck;
   * this adds what only the operator knows (stale caches, a lost lease). Default: none.
   */
  healthProblems?: () => string[];
}

export interface OperationalServer {
  /** The bound `host:port` of /metrics (the real port when 0 was asked for). */
  readonly metricsAddress: string | undefined;
  readonly healthAddress: string | undefined;
  close(): Promise<void>;
}

type Handler = (request: IncomingMessage, response: ServerResponse) => void | Promise<void>;

/** Splits `host:port`, `:port` or `[v6]:port`. An empty host means every interface. */
export function parseListenAddress(address: string): { host: string | undefined; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d+)$/.exec(address);
  const port = Number(match?.[3]);
  if (!match || !Number.isInteger(port) || port > 65_535) {
    throw new Error(`invalid listen address "${address}": expected host:port, :port or [ipv6]:port`);
  }
  const host = match[1] ?? match[2];
  return { host: host === '' ? undefined : host, port };
}

export function formatAddress(address: AddressInfo): string {
  return address.family === 'IPv6' ? `[${address.address}]:${String(address.port)}` : `${address.address}:${String(address.port)}`;
}

function text(response: ServerResponse, status: number, body: string): void {
  response.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8' });
  response.end(body);
}

async function listen(addr: string, routes: Map<string, Handler>): Promise<Server> {
  const { host, port } = parseListenAddress(addr);
  const server = http.createServer((request, response) => {
    const path = new URL(request.url ?? '/', 'http://localhost').pathname;
    const handler = routes.get(path);
    if (!handler) return text(response, 404, 'not found\n');
    if (request.method !== 'GET' && request.method !== 'HEAD') return text(response, 405, 'method not allowed\n');
    Promise.resolve(handler(request, response)).catch((error: unknown) => {
      if (!response.headersSent) text(response, 500, `${String(error)}\n`);
      else response.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return server;
}

function close(server: Server): Promise<void> {
  return new Promise((resolve, reject) => {
    server.close((error) => (error ? reject(error) : resolve()));
    // Keep-alive connections (Prometheus keeps one) would hold close() open.
    server.closeAllConnections();
  });
}

export async function startOperationalServer(options: OperationalServerOptions): Promise<OperationalServer> {
  const { metricsAddr, healthAddr, registry, isReady, healthProblems = () => [] } = options;
  const metricsRoutes = new Map<string, Handler>([
    [
      '/metrics',
      async (_request, response) => {
        const body = await registry.metrics();
        response.writeHead(200, { 'Content-Type': registry.contentType });
        response.end(body);
      },
    ],
  ]);
  const healthRoutes = new Map<string, Handler>([
    [
      '/healthz',
      (_request, response) => {
        const problems = healthProblems();
        if (problems.length === 0) text(response, 200, 'ok\n');
        else text(response, 503, `unhealthy:\n${problems.map((problem) => `- ${problem}\n`).join('')}`);
      },
    ],
    ['/readyz', (_request, response) => (isReady() ? text(response, 200, 'ok\n') : text(response, 503, 'not ready\n'))],
  ]);

  const servers: Server[] = [];
  const serve = async (addr: string, routes: Map<string, Handler>) => {
    const server = await listen(addr, routes);
    servers.push(server);
    return formatAddress(server.address() as AddressInfo);
  };
  const closeAll = async () => {
    await Promise.all(servers.map(close));
  };

  try {
    let metricsAddress: string | undefined;
    let healthAddress: string | undefined;
    if (metricsAddr !== undefined && metricsAddr === healthAddr) {
      metricsAddress = healthAddress = await serve(metricsAddr, new Map([...metricsRoutes, ...healthRoutes]));
    } else {
      if (metricsAddr !== undefined) metricsAddress = await serve(metricsAddr, metricsRoutes);
      if (healthAddr !== undefined) healthAddress = await serve(healthAddr, healthRoutes);
    }
    return { metricsAddress, healthAddress, close: closeAll };
  } catch (error) {
    await closeAll();
    throw error;
  }
}
