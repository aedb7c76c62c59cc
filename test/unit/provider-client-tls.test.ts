// The client over https with a private CA, and its keep-alive connections, against a tiny
// https server that pages a fixed user list (the simulator speaks plain http only).
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from '@jest/globals';
import { HpcApiClient } from '../../src/provider/client.js';
import { ProviderError } from '../../src/provider/errors.js';
import { TokenBucket } from '../../src/provider/rate-limiter.js';
import { TEST_CERT as CERT, TEST_KEY as KEY } from '../support/tls-fixture.js';

const ROWS = Array.from({ length: 250 }, (_, i) => ({
  username: `user${i}`,
  uid_number: String(5000 + i),
  gid_number: String(5000 + i),
  hpcuser_id: `hpcuser-${i}`,
  user_id: `usr-${i}`,
  role: 'member',
  nas_mount_point: `/public/user${i}`,
  mod: null,
}));

let server: Server | undefined;
let connections = 0;

async function startServer(): Promise<string> {
  connections = 0;
  server = createServer({ cert: CERT, key: KEY }, (req, res) => {
    const offset = Number(new URL(req.url ?? '/', 'https://x').searchParams.get('offset'));
    const page = { ret_code: 0, total_count: ROWS.length, user_set: ROWS.slice(offset, offset + 100) };
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(page));
  });
  server.on('secureConnection', () => connections++);
  await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve));
  return `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

afterEach(async () => {
  server?.closeAllConnections();
  await new Promise((resolve) => server?.close(resolve));
  server = undefined;
});

function client(endpoint: string, caCert?: string): HpcApiClient {
  return new HpcApiClient({
    endpoint,
    credentials: { accessKeyId: 'KEY', secretAccessKey: 'SECRET' },
    ...(caCert === undefined ? {} : { caCert }),
    pageConcurrency: 1,
    retry: { maxAttempts: 1, baseDelayMs: 1, maxDelayMs: 1 },
    rateLimiter: new TokenBucket({ capacity: 1e9, refill: 1e9, intervalMs: 1 }),
  });
}

describe('https', () => {
  it('trusts a private CA given as caCert, and reuses one connection for every page', async () => {
    const https = client(await startServer(), CERT);
    try {
      const listing = await https.listAllUsers({ zone: 'jinan1a' });
      expect(listing).toMatchObject({ totalCount: 250, pages: 3, requests: 3 });
      expect(connections).toBe(1);
    } finally {
      https.close();
    }
  });

  it('refuses a certificate it cannot verify, as a network error that names no URL', async () => {
    const https = client(await startServer());
    try {
      const err = await https.listAllUsers({ zone: 'jinan1a' }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ProviderError);
      expect(err).toMatchObject({ kind: 'retryable', details: { code: 'network' } });
      expect((err as ProviderError).details.cause).toMatch(/^[A-Z_]*CERT[A-Z_]*$/);
      expect((err as Error).message).toMatch(/: no valid ListUsers answer from the endpoint$/);
      expect((err as Error).message).not.toContain('signature=');
    } finally {
      https.close();
    }
  });
});
