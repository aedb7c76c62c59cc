import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { expect, it } from '@jest/globals';
import { freePort } from '../../tools/controlplane/controlplane.js';

const listenOn = (port: number): Promise<void> =>
  new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => server.close(() => resolve()));
  });

it('hands out distinct free loopback ports below the kernel ephemeral range', async () => {
  const rangeStart = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
  const ports: number[] = [];
  for (let i = 0; i < 50; i++) ports.push(await freePort());
  expect(new Set(ports).size).toBe(ports.length);
  for (const port of ports) {
    expect(port).toBeGreaterThanOrEqual(10_000);
    expect(port).toBeLessThan(rangeStart);
    await listenOn(port);
  }
});
