import { afterEach, describe, expect, it } from '@jest/globals';
import { Registry } from 'prom-client';
import {
  parseListenAddress,
  startOperationalServer,
  type OperationalServer,
  type OperationalServerOptions,
} from '../../../src/controller/http-server.js';
import { OperatorMetrics } from '../../../src/controller/metrics.js';

let servers: OperationalServer[] = [];

afterEach(async () => {
  await Promise.all(servers.map((server) => server.close()));
  servers = [];
});

async function start(options: Partial<OperationalServerOptions> = {}): Promise<OperationalServer> {
  const server = await startOperationalServer({ registry: new Registry(), isReady: () => true, ...options });
  servers.push(server);
  return server;
}

async function get(address: string | undefined, path: string): Promise<{ status: number; type: string | null; body: string }> {
  if (address === undefined) throw new Error('no address');
  const response = await fetch(`http://${address}${path}`);
  return { status: response.status, type: response.headers.get('content-type'), body: await response.text() };
}

describe('parseListenAddress', () => {
  it('reads host:port, :port and [ipv6]:port', () => {
    expect(parseListenAddress('127.0.0.1:8080')).toEqual({ host: '127.0.0.1', port: 8080 });
    expect(parseListenAddress(':9090')).toEqual({ host: undefined, port: 9090 });
    expect(parseListenAddress('[::1]:0')).toEqual({ host: '::1', port: 0 });
  });

  it('rejects what is not an address', () => {
    for (const address of ['8080', 'localhost', 'host:port', '127.0.0.1:70000', '::1:80']) {
      expect(() => parseListenAddress(address)).toThrow(/invalid listen address/);
    }
  });
});

describe('startOperationalServer', () => {
  it('serves /metrics from the registry in the Prometheus text format', async () => {
    const metrics = new OperatorMetrics();
    metrics.setQueueDepth(2);
    const server = await start({ metricsAddr: '127.0.0.1:0', registry: metrics.registry });
    const response = await get(server.metricsAddress, '/metrics');
    expect(response.status).toBe(200);
    expect(response.type).toContain('text/plain; version=0.0.4');
    expect(response.body).toContain('hpc_user_operator_queue_depth 2');
    expect(server.healthAddress).toBeUndefined();
  });

  it('answers /healthz while healthy, with the problems when not, and /readyz only while ready', async () => {
    let ready = false;
    let problems: string[] = [];
    const server = await start({ healthAddr: '127.0.0.1:0', isReady: () => ready, healthProblems: () => problems });
    expect((await get(server.healthAddress, '/healthz')).status).toBe(200);
    expect((await get(server.healthAddress, '/readyz')).status).toBe(503);
    ready = true;
    expect(await get(server.healthAddress, '/readyz')).toMatchObject({ status: 200, body: 'ok\n' });
    problems = ['configmaps: no open watch for 90 s (limit 60 s)', 'lost the leader lease'];
    expect(await get(server.healthAddress, '/healthz')).toMatchObject({
      status: 503,
      body: 'unhealthy:\n- configmaps: no open watch for 90 s (limit 60 s)\n- lost the leader lease\n',
    });
    expect((await get(server.healthAddress, '/metrics')).status).toBe(404);
  });

  it('serves everything on one server when both addresses are equal', async () => {
    const server = await start({ metricsAddr: '127.0.0.1:0', healthAddr: '127.0.0.1:0' });
    expect(server.metricsAddress).toBe(server.healthAddress);
    expect((await get(server.metricsAddress, '/metrics')).status).toBe(200);
    expect((await get(server.metricsAddress, '/healthz')).status).toBe(200);
    expect((await get(server.metricsAddress, '/readyz')).status).toBe(200);
  });

  it('serves metrics and health on separate ports when the addresses differ', async () => {
    const server = await start({ metricsAddr: '127.0.0.1:0', healthAddr: '[::1]:0' }).catch(() =>
      // No IPv6 loopback on this host: two IPv4 listeners show the same thing.
      start({ metricsAddr: '127.0.0.1:0', healthAddr: 'localhost:0' }),
    );
    expect(server.metricsAddress).not.toBe(server.healthAddress);
    expect((await get(server.metricsAddress, '/metrics')).status).toBe(200);
    expect((await get(server.metricsAddress, '/healthz')).status).toBe(404);
    expect((await get(server.healthAddress, '/healthz')).status).toBe(200);
    expect((await get(server.healthAddress, '/metrics')).status).toBe(404);
  });

  it('rejects methods other than GET and HEAD', async () => {
    const server = await start({ healthAddr: '127.0.0.1:0' });
    const response = await fetch(`http://${server.healthAddress ?? ''}/healthz`, { method: 'POST' });
    expect(response.status).toBe(405);
    await response.text();
  });

  it('fails to start on a port already in use, leaving nothing open', async () => {
    const first = await start({ metricsAddr: '127.0.0.1:0' });
    await expect(
      startOperationalServer({
        metricsAddr: '127.0.0.1:0',
        healthAddr: first.metricsAddress,
        registry: new Registry(),
        isReady: () => true,
      }),
    ).rejects.toThrow(/EADDRINUSE/);
  });
});
