// The provider client against endpoints a tenant controls (servers of the test's own on free
// loopback ports): the allow-list, redirects, what status may say, the caps of a listing, what
// a request sends and how compressed answers are read, and bodies cut short or endless.
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { brotliCompressSync, deflateSync, gzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from '@jest/globals';
import { HpcApiClient, type HpcApiClientOptions } from '../../src/provider/client.js';
import { EndpointAllowList } from '../../src/provider/endpoint-policy.js';
import { ProviderError } from '../../src/provider/errors.js';
import { TokenBucket } from '../../src/provider/rate-limiter.js';
import { computeSignature, percentEncode } from '../../src/provider/signature.js';
import { waitFor } from '../../tools/harness/wait-for.js';
import { startSimulator, type Simulator } from '../../tools/simulator/server.js';
import { endlessPage, json, offsetOf, startHostileEndpoint, type HostileEndpoint } from '../support/hostile-endpoint.js';

const QUERY = { zone: 'jinan1a', clusterId: 'hpc-1' };
const CREDENTIALS = { accessKeyId: 'TENANTKEYID', secretAccessKey: 'tenant-secret/with+odd=chars' };
const started: { close(): Promise<void> }[] = [];
const clients: HpcApiClient[] = [];

afterEach(async () => {
  for (const client of clients.splice(0)) client.close();
  await Promise.all(started.splice(0).map((s) => s.close()));
});

async function hostile(answer: Parameters<typeof startHostileEndpoint>[0]): Promise<HostileEndpoint> {
  const endpoint = await startHostileEndpoint(answer);
  started.push(endpoint);
  return endpoint;
}

function client(endpoint: string, options: Partial<HpcApiClientOptions> = {}): HpcApiClient {
  const created = new HpcApiClient({
    endpoint,
    credentials: CREDENTIALS,
    allowInsecureHttp: true,
    retry: { maxAttempts: 1, baseDelayMs: 1, maxDelayMs: 1 },
    rateLimiter: new TokenBucket({ capacity: 1e9, refill: 1e9, intervalMs: 1 }),
    ...options,
  });
  clients.push(created);
  return created;
}

async function failure(promise: Promise<unknown>): Promise<ProviderError> {
  const err = await promise.then(
    () => new Error('expected a failure, got a listing'),
    (e: unknown) => e,
  );
  if (err instanceof ProviderError) return err;
  throw err;
}

describe('the endpoint allow-list', () => {
  it('refuses an endpoint that is not on it before any request', async () => {
    const endpoint = await hostile((_req, res) => json(res, endlessPage(0, 1)));
    const create = () => client(endpoint.url, { allowedEndpoints: new EndpointAllowList(['https://hpc.api.shanhe.com']) });
    expect(create).toThrow(ProviderError);
    expect(create).toThrow(/endpoint http:\/\/127\.0\.0\.1:\d+ is not allowed by this operator \(allowed: https:\/\/hpc\.api\.shanhe\.com\)/);
    expect(endpoint.requests).toHaveLength(0);
  });

  it('allows listed origins, and loopback only when asked', () => {
    const list = new EndpointAllowList(['https://hpc.api.shanhe.com', 'https://hpc.api.qingcloud.com:443']);
    expect(list.allows(new URL('https://hpc.api.shanhe.com/prefix'))).toBe(true);
    expect(list.allows(new URL('https://hpc.api.qingcloud.com'))).toBe(true);
    for (const other of ['http://hpc.api.shanhe.com', 'https://hpc.api.shanhe.com:8443', 'https://hpc.api.shanhe.com.evil.example', 'http://127.0.0.1:6443', 'http://169.254.169.254']) {
      expect(list.allows(new URL(other))).toBe(false);
    }
    const dev = new EndpointAllowList([], true);
    for (const loopback of ['http://127.0.0.1:40000', 'http://localhost:1', 'http://[::1]:8080', 'http://127.1.2.3']) {
      expect(dev.allows(new URL(loopback))).toBe(true);
    }
    expect(dev.allows(new URL('http://10.0.0.1'))).toBe(false);
  });
});

describe('answers that are not the provider\'s', () => {
  let sim: Simulator;
  afterEach(async () => sim?.close());

  it('follows no redirect: the signed request never reaches the target', async () => {
    sim = await startSimulator({ accessKeys: [{ id: CREDENTIALS.accessKeyId, secret: CREDENTIALS.secretAccessKey }], clusters: [{ id: 'hpc-1', users: [] }] });
    const redirect = await hostile((req, res) => res.writeHead(302, { location: `${sim.url}${req.url ?? ''}` }).end());
    const err = await failure(client(redirect.url).listAllUsers(QUERY));
    expect(err).toMatchObject({ kind: 'retryable', details: { code: 'http-status', httpStatus: 302, cause: 'redirect (HTTP 302)' } });
    expect(redirect.requests).toHaveLength(1);
    expect(sim.stats().requests).toBe(0);
  });

  it('says the same of a refused connection, an error page, a redirect and a foreign JSON body', async () => {
    const closed = await startHostileEndpoint(() => undefined);
    await closed.close();
    const endpoints = [
      closed.url,
      (await hostile((_req, res) => res.writeHead(404, { 'content-type': 'text/html' }).end('<h1>kube-apiserver internal</h1>'))).url,
      (await hostile((_req, res) => res.writeHead(301, { location: 'http://169.254.169.254/' }).end())).url,
      (await hostile((_req, res) => json(res, { kind: 'Status', message: 'forbidden: User "system:anonymous"' }))).url,
      (await hostile((_req, res) => res.writeHead(400, { 'content-type': 'application/json' }).end('{"ret_code":1100,"message":"internal detail"}'))).url,
    ];
    const messages = await Promise.all(endpoints.map(async (url) => (await failure(client(url).listAllUsers(QUERY))).message.replace(url, 'ENDPOINT')));
    expect(new Set(messages)).toEqual(new Set(['ListUsers ENDPOINT zone=jinan1a cluster=hpc-1 offset=0: no valid ListUsers answer from the endpoint']));
  });

  it('scrubs a provider message of the signature and of the secret in any encoding', async () => {
    const secretBase64 = Buffer.from(CREDENTIALS.secretAccessKey).toString('base64');
    const echo = await hostile((req, res) => {
      const signature = new URL(req.url ?? '/', 'http://x').searchParams.get('signature') ?? '';
      json(res, {
        ret_code: 1200,
        message: `bad signature ${signature} (${decodeURIComponent(signature)}) for ${percentEncode(CREDENTIALS.secretAccessKey)} ${percentEncode(percentEncode(CREDENTIALS.secretAccessKey))} ${secretBase64}; sign with ${computeSignature(CREDENTIALS.secretAccessKey, 'x')}`,
      });
    });
    const err = await failure(client(echo.url).listAllUsers(QUERY));
    expect(err.details.retCode).toBe(1200);
    expect(err.message).toContain('ret_code 1200: bad signature [redacted]');
    const signature = new URL(echo.requests[0] ?? '/', 'http://x').searchParams.get('signature') ?? '';
    for (const leaked of [signature, decodeURIComponent(signature), decodeURIComponent(decodeURIComponent(signature)), percentEncode(CREDENTIALS.secretAccessKey), secretBase64, 'tenant-secret']) {
      expect(err.message).not.toContain(leaked);
    }
  });
});

describe('the caps of one listing', () => {
  it('gives up at the first page when the provider reports more rows than allowed', async () => {
    const endless = await hostile((req, res) => json(res, endlessPage(offsetOf(req), 1_000_000_000)));
    const err = await failure(client(endless.url).listAllUsers(QUERY));
    expect(err).toMatchObject({ kind: 'permanent', details: { code: 'sync-limit' } });
    expect(err.message).toContain('the provider reports 1000000000 users, more than this operator\'s limit of 50000 per listing');
    expect(endless.requests).toHaveLength(1);
  });

  it('stops reading once the listing has read more bytes than allowed', async () => {
    const big = await hostile((req, res) => json(res, endlessPage(offsetOf(req), 1_000)));
    const err = await failure(client(big.url, { limits: { maxBytes: 100_000 } }).listAllUsers(QUERY));
    expect(err).toMatchObject({ details: { code: 'sync-limit' } });
    expect(err.message).toContain('more response bytes than this operator allows');
    expect(big.requests.length).toBeLessThan(10);
  });

  it('gives up a listing that passes its deadline, even while a request hangs', async () => {
    const hang = await hostile(() => undefined);
    const err = await failure(client(hang.url, { timeoutMs: 600_000, limits: { deadlineMs: 200 } }).listAllUsers(QUERY));
    expect(err).toMatchObject({ kind: 'retryable', details: { code: 'sync-limit' } });
    expect(err.message).toContain('the listing did not finish within 200 ms');
  });

  it('stops at once when its signal aborts: the abort is what it throws, and no request starts after it', async () => {
    const controller = new AbortController();
    const slow = await hostile((req, res) => {
      if (offsetOf(req) === 0) json(res, endlessPage(0, 10_000));
      else controller.abort(new Error('resource deleted'));
    });
    const err = await client(slow.url, { timeoutMs: 600_000 }).listAllUsers(QUERY, controller.signal).catch((e: unknown) => e);
    expect(err).toEqual(new Error('resource deleted'));
    const seen = slow.requests.length;
    // Every worker had at most its one request in flight when the abort came.
    expect(seen).toBeLessThanOrEqual(1 + 4);
    await new Promise<void>((resolve) => setImmediate(resolve));
    expect(slow.requests).toHaveLength(seen);
  });
});

/** Everything an error shows, for looking for secrets in it. */
function textsOf(err: ProviderError): string[] {
  return [err.message, err.stack ?? '', JSON.stringify(err), err.details.cause ?? ''];
}

/** A page of 100 rows claiming `total` rows, as JSON. */
const pageJson = (req: IncomingMessage, total: number) => Buffer.from(JSON.stringify(endlessPage(offsetOf(req), total)));

/** Counts the connections a server saw close. */
function closedConnections() {
  let closed = 0;
  return {
    track: (req: IncomingMessage) => req.socket.once('close', () => closed++),
    count: () => closed,
  };
}

describe('the request', () => {
  it.each([
    ['gzip', gzipSync],
    ['x-gzip', gzipSync],
    ['deflate', deflateSync],
    ['br', brotliCompressSync],
    [undefined, (body: Buffer) => body],
  ])('asks for JSON on the signed path and reads an answer in content-encoding %s', async (encoding, encode) => {
    const seen: IncomingHttpHeaders[] = [];
    const server = await hostile((req, res) => {
      seen.push(req.headers);
      res.writeHead(200, { 'content-type': 'application/json', ...(encoding === undefined ? {} : { 'content-encoding': encoding }) });
      res.end(encode(pageJson(req, 300)));
    });
    const listing = await client(`${server.url}/prefix/`).listAllUsers(QUERY);
    expect(listing).toMatchObject({ totalCount: 300, pages: 3, requests: 3 });
    expect(listing.rows.map((row) => row.username)).toEqual(Array.from({ length: 300 }, (_, i) => `u${i}`));
    for (const headers of seen) {
      expect(headers).toMatchObject({ accept: 'application/json', 'accept-encoding': 'gzip, deflate, br', 'user-agent': 'hpc-user-operator' });
    }
    for (const url of server.requests) expect(url).toMatch(/^\/prefix\/api\/user\?access_key_id=TENANTKEYID&.*&signature=[^&]+$/);
  });

  it('counts the byte caps on the decoded body: a small compressed page cannot grow past them', async () => {
    let compressed = 0;
    let decoded = 0;
    const server = await hostile((req, res) => {
      const body = pageJson(req, 100);
      const gzipped = gzipSync(body);
      [compressed, decoded] = [gzipped.length, body.length];
      res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip' }).end(gzipped);
    });
    const err = await failure(client(server.url, { limits: { maxBytes: 10_000 } }).listAllUsers(QUERY));
    expect(compressed).toBeLessThan(10_000);
    expect(decoded).toBeGreaterThan(10_000);
    expect(err).toMatchObject({ kind: 'permanent', details: { code: 'sync-limit', httpStatus: 200 } });
  });

  it('reads a compressed body cut short as no valid answer, and retries it', async () => {
    const server = await hostile((req, res) => {
      const gzipped = gzipSync(pageJson(req, 100));
      res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip' }).end(gzipped.subarray(0, gzipped.length / 2));
    });
    const err = await failure(client(server.url, { retry: { maxAttempts: 2, baseDelayMs: 1, maxDelayMs: 1 } }).listAllUsers(QUERY));
    expect(err).toMatchObject({ kind: 'retryable', details: { code: 'malformed-response', httpStatus: 200 } });
    expect(err.details.cause).toMatch(/ListUsers response is not JSON \(\d+ bytes\)$/);
    expect(server.requests).toHaveLength(2);
  });
});

describe('bodies the client stops reading', () => {
  it.each([
    ['past the listing\'s bytes', { maxBytes: 1_000_000 }, { kind: 'permanent', details: { code: 'sync-limit' } }],
    ['past the largest body', {}, { kind: 'retryable', details: { code: 'malformed-response', httpStatus: 200 } }],
  ])('gives up an endless body %s and closes its connection', async (_name, limits, expected) => {
    const connections = closedConnections();
    const server = await hostile((req, res) => {
      connections.track(req);
      res.on('error', () => undefined);
      res.writeHead(200, { 'content-type': 'application/json' });
      const chunk = Buffer.alloc(64 * 1024, 0x20);
      const write = () => {
        while (!res.destroyed && res.write(chunk));
      };
      res.on('drain', write);
      write();
    });
    const err = await failure(client(server.url, { limits }).listAllUsers(QUERY));
    expect(err).toMatchObject(expected);
    await waitFor(() => connections.count() === 1, { timeoutMs: 3_000, description: 'the client to close the connection' });
  });

  it('times out a body that stops halfway, and closes its connection', async () => {
    const connections = closedConnections();
    const server = await hostile((req, res) => {
      connections.track(req);
      const body = pageJson(req, 100);
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
      res.write(body.subarray(0, body.length / 2));
    });
    const err = await failure(client(server.url, { timeoutMs: 200 }).listAllUsers(QUERY));
    expect(err).toMatchObject({ kind: 'retryable', details: { code: 'timeout', cause: 'no answer within 200 ms' } });
    await waitFor(() => connections.count() === 1, { timeoutMs: 3_000, description: 'the client to close the connection' });
  });
});

describe('network failures name no secret', () => {
  it('a refused connection: its code only', async () => {
    const closed = await startHostileEndpoint(() => undefined);
    await closed.close();
    const err = await failure(client(closed.url).listAllUsers(QUERY));
    expect(err).toMatchObject({ kind: 'retryable', details: { code: 'network', cause: 'ECONNREFUSED' } });
    for (const text of textsOf(err)) {
      for (const secret of ['signature=', 'access_key_id=', '/api/user?', CREDENTIALS.secretAccessKey]) expect(text).not.toContain(secret);
    }
  });

  it('a connection reset halfway through the body: its code only, not the signature the request carried', async () => {
    const server = await hostile((req, res) => {
      const body = pageJson(req, 100);
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
      res.write(body.subarray(0, body.length / 2), () => req.socket.destroy());
    });
    const err = await failure(client(server.url).listAllUsers(QUERY));
    expect(err).toMatchObject({ kind: 'retryable', details: { code: 'network', cause: 'ECONNRESET' } });
    const signature = new URL(server.requests[0] ?? '/', 'http://x').searchParams.get('signature') ?? '';
    expect(signature).not.toBe('');
    for (const text of textsOf(err)) {
      for (const secret of [signature, decodeURIComponent(signature), 'signature=', '/api/user?', CREDENTIALS.secretAccessKey]) expect(text).not.toContain(secret);
    }
  });
});
