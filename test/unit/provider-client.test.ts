// The provider client over real HTTP against the in-process simulator (loopback, free port).
import { afterEach, describe, expect, it } from '@jest/globals';
import { validateUsers } from '../../src/domain/validate.js';
import { HpcApiClient, type HpcApiClientOptions, type ListUsersQuery, type RequestOutcome } from '../../src/provider/client.js';
import type { Clock } from '../../src/runtime/clock.js';
import { ProviderError } from '../../src/provider/errors.js';
import { accessKeyIdentity } from '../../src/provider/key-identity.js';
import { RateLimiterRegistry, TokenBucket } from '../../src/provider/rate-limiter.js';
import { DEV_ACCESS_KEY, startSimulator, type Simulator, type SimulatorOptions } from '../../tools/simulator/server.js';
import { generateUsers } from '../../tools/simulator/store.js';
import { ManualClock } from '../support/manual-clock.js';

const CLUSTER = 'hpc-qig9xu97';
const QUERY: ListUsersQuery = { zone: 'jinan1a', clusterId: CLUSTER };
const CREDENTIALS = { accessKeyId: DEV_ACCESS_KEY.id, secretAccessKey: DEV_ACCESS_KEY.secret };
/** Tiny back-offs: the tests count attempts, they do not wait. */
const FAST_RETRY = { maxAttempts: 4, baseDelayMs: 1, maxDelayMs: 2 };

const simulators: Simulator[] = [];
const clients: HpcApiClient[] = [];

afterEach(async () => {
  for (const client of clients.splice(0)) client.close();
  await Promise.all(simulators.splice(0).map((s) => s.close()));
});

async function simulator(users: number, options: SimulatorOptions = {}): Promise<Simulator> {
  const started = await startSimulator({
    clusters: [{ id: CLUSTER, users: generateUsers(users, 7) }],
    quota: { limit: 1_000_000, windowSeconds: 3600 },
    ...options,
  });
  simulators.push(started);
  return started;
}

function unlimited(): TokenBucket {
  return new TokenBucket({ capacity: 1e9, refill: 1e9, intervalMs: 1 });
}

function client(sim: Simulator, options: Partial<HpcApiClientOptions> = {}): HpcApiClient {
  const created = new HpcApiClient({
    endpoint: sim.url,
    credentials: CREDENTIALS,
    allowInsecureHttp: true,
    retry: FAST_RETRY,
    rateLimiter: unlimited(),
    ...options,
  });
  clients.push(created);
  return created;
}

async function failure(promise: Promise<unknown>): Promise<ProviderError> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof ProviderError) return err;
    throw err;
  }
  throw new Error('expected a ProviderError, got a result');
}

describe('listAllUsers', () => {
  it.each([
    [0, 1],
    [1, 1],
    [100, 1],
    [101, 2],
    [10_000, 100],
  ])('reads %i users in %i pages, one request each', async (count, pages) => {
    const sim = await simulator(count);
    const listing = await client(sim).listAllUsers(QUERY);
    expect(listing.totalCount).toBe(count);
    expect(listing.rows).toHaveLength(count);
    expect(listing.pages).toBe(pages);
    expect(listing.requests).toBe(pages);
    expect(sim.stats().requests).toBe(pages);
    expect(listing.rows.map((r) => r.hpcuser_id)).toEqual(sim.users(CLUSTER)?.map((r) => r.hpcuser_id));
    const { users, skipped } = validateUsers(listing.rows);
    expect(users).toHaveLength(count);
    expect(skipped).toEqual([]);
  });

  it('reads the users_set list key as well as user_set', async () => {
    const sim = await simulator(150, { faults: { listKey: 'users_set' } });
    expect((await client(sim).listAllUsers(QUERY)).rows).toHaveLength(150);
  });

  it('signs every parameter the way the provider checks it, odd characters included', async () => {
    const sim = await simulator(3);
    const [first] = sim.users(CLUSTER) ?? [];
    const byUser = await client(sim).listAllUsers({ ...QUERY, userId: first?.user_id ?? '' });
    expect(byUser.rows.map((r) => r.username)).toEqual([first?.username]);
    const odd = await client(sim).listAllUsers({ ...QUERY, searchWord: 'a b~*:/+é化' });
    expect(odd.totalCount).toBe(0);
  });

  it('hands rows that break a rule to validation, which skips them with a reason', async () => {
    const sim = await simulator(5, { faults: { invalidRows: ['bad-username', 'uid-zero', 'bad-role'] } });
    const { users, skipped } = validateUsers((await client(sim).listAllUsers(QUERY)).rows);
    expect(users).toHaveLength(5);
    expect(skipped.map((s) => s.reason).sort()).toEqual([
      'role "root" is not one of boss, admin, member',
      'uid 0 (root) is never synced',
      'username has characters outside [A-Za-z0-9._-]',
    ]);
  });
});

describe('pages that do not add up fail the whole listing', () => {
  it.each([
    ['total_count one too high', 150, { totalCountDelta: 1 }, /has 50 rows where 51 were expected/],
    ['total_count one too low', 150, { totalCountDelta: -1 }, /has 50 rows but total_count 149 leaves room for 49/],
    ['a total too high for one page', 10, { totalCountDelta: 5 }, /page at offset 0 has 10 rows where 15 were expected/],
    ['duplicate rows', 250, { duplicateRows: 1 }, /hpcuser_id "hpcuser-[a-z0-9]+" appears at rows 0 and 99/],
    ['a user inserted between pages', 150, { mutateBetweenPages: true }, /total_count changed from 150 to 151/],
  ])('%s', async (_name, users, faults, message) => {
    const sim = await simulator(users, { faults });
    const err = await failure(client(sim).listAllUsers(QUERY));
    expect(err.kind).toBe('retryable');
    expect(err.details.code).toBe('inconsistent-pages');
    expect(err.message).toMatch(message);
    expect(err.message).toContain(`zone=jinan1a cluster=${CLUSTER}`);
  });
});

describe('retries', () => {
  it.each([1300, 5000, 5100, 5300])('retries ret_code %i and then succeeds', async (retCode) => {
    const sim = await simulator(3, { faults: { error: { retCode, next: 2 } } });
    const listing = await client(sim).listAllUsers(QUERY);
    expect(listing.rows).toHaveLength(3);
    expect(listing.requests).toBe(3);
    expect(sim.stats().byRetCode).toEqual({ [retCode]: 2, 0: 1 });
  });

  it('gives up on a retryable ret_code after maxAttempts', async () => {
    const sim = await simulator(3, { faults: { error: { retCode: 5100, next: 10 } } });
    const err = await failure(client(sim).listAllUsers(QUERY));
    expect(err).toMatchObject({ kind: 'retryable', details: { code: 'ret-code', retCode: 5100 } });
    expect(err.message).toMatch(/ret_code 5100: server busy.*\(gave up after 4 attempts\)$/);
    expect(sim.stats().requests).toBe(4);
  });

  it.each([1100, 1200, 1400, 2100, 4242])('does not retry ret_code %i (permanent)', async (retCode) => {
    const sim = await simulator(3, { faults: { error: { retCode, next: 10 } } });
    const err = await failure(client(sim).listAllUsers(QUERY));
    expect(err).toMatchObject({ kind: 'permanent', details: { retCode } });
    expect(sim.stats().requests).toBe(1);
  });

  it('surfaces quota exhaustion (2500) at once, for the caller to back off', async () => {
    const sim = await simulator(3, { quota: { limit: 1, windowSeconds: 3600 } });
    await client(sim).listAllUsers(QUERY);
    const err = await failure(client(sim).listAllUsers(QUERY));
    expect(err).toMatchObject({ kind: 'quota', details: { retCode: 2500 } });
    expect(sim.stats().requests).toBe(2);
  });

  it('retries an HTTP 5xx from a proxy, and names the status only in details when it gives up', async () => {
    const sim = await simulator(3, { faults: { http5xx: { status: 502, next: 1 } } });
    expect((await client(sim).listAllUsers(QUERY)).requests).toBe(2);
    sim.setFaults({ http5xx: { status: 503, next: 10 } });
    const err = await failure(client(sim).listAllUsers(QUERY));
    expect(err).toMatchObject({ kind: 'retryable', details: { code: 'http-status', httpStatus: 503, cause: 'HTTP 503' } });
    expect(err.message).toMatch(/: no valid ListUsers answer from the endpoint \(gave up after 4 attempts\)$/);
  });

  it('retries an HTTP 404 (wrong endpoint path) like any other non-answer, so that status cannot tell them apart', async () => {
    const sim = await simulator(3);
    const err = await failure(client(sim, { endpoint: `${sim.url}/no-such-prefix` }).listAllUsers(QUERY));
    expect(err).toMatchObject({ kind: 'retryable', details: { code: 'http-status', httpStatus: 404, cause: 'HTTP 404' } });
    expect(err.message).toMatch(/: no valid ListUsers answer from the endpoint \(gave up after 4 attempts\)$/);
    expect(sim.stats().requests).toBe(4);
  });

  it('times out a request that gets no answer and retries it', async () => {
    const sim = await simulator(3, { faults: { hang: { next: 1 } } });
    const listing = await client(sim, { timeoutMs: 200 }).listAllUsers(QUERY);
    expect(listing.requests).toBe(2);
    expect(sim.stats().hung).toBe(1);
  });

  it('reports a timeout as such when every attempt hangs', async () => {
    const sim = await simulator(3, { faults: { hang: { next: 10 } } });
    const err = await failure(client(sim, { timeoutMs: 100, retry: { ...FAST_RETRY, maxAttempts: 2 } }).listAllUsers(QUERY));
    expect(err).toMatchObject({ kind: 'retryable', details: { code: 'timeout', cause: 'no answer within 100 ms' } });
    expect(err.message).toMatch(/: no valid ListUsers answer from the endpoint \(gave up after 2 attempts\)$/);
  });

  it('retries a truncated JSON body, and names it no valid answer when every attempt is', async () => {
    const once = await simulator(3, { faults: { truncateJson: { next: 1 } } });
    expect((await client(once).listAllUsers(QUERY)).rows).toHaveLength(3);
    expect(once.stats().requests).toBe(2);
    const always = await simulator(3, { faults: { truncateJson: { rate: 1 } } });
    const err = await failure(client(always, { retry: { ...FAST_RETRY, maxAttempts: 2 } }).listAllUsers(QUERY));
    expect(err).toMatchObject({ kind: 'retryable', details: { code: 'malformed-response', httpStatus: 200 } });
    expect(err.details.cause).toMatch(/ListUsers response is not JSON \(\d+ bytes\)$/);
    expect(err.message).toMatch(/: no valid ListUsers answer from the endpoint \(gave up after 2 attempts\)$/);
  });

  it('retries a refused connection as a network error', async () => {
    const sim = await simulator(0);
    const url = sim.url;
    await sim.close();
    const err = await failure(client(sim, { endpoint: url }).listAllUsers(QUERY));
    expect(err).toMatchObject({ kind: 'retryable', details: { code: 'network', cause: 'ECONNREFUSED' } });
    expect(err.message).toMatch(/: no valid ListUsers answer from the endpoint \(gave up after 4 attempts\)$/);
  });

  it('signs each attempt with a fresh timestamp', async () => {
    const sim = await simulator(3);
    // The first attempt's clock reading is two minutes stale: reused, it would expire (1300).
    const readings = [Date.now() - 120_000];
    const clock: Clock = {
      now: () => readings.shift() ?? Date.now(),
      schedule: (callback, delayMs) => {
        const timer = setTimeout(callback, delayMs);
        return () => clearTimeout(timer);
      },
    };
    const listing = await client(sim, { clock }).listAllUsers(QUERY);
    expect(listing.requests).toBe(2);
    expect(sim.stats().byRetCode).toEqual({ 1300: 1, 0: 1 });
  });

  it('stops at once when the caller aborts, without retrying', async () => {
    const sim = await simulator(3, { faults: { hang: { next: 10 } } });
    const aborts = new AbortController();
    const listing = client(sim).listAllUsers(QUERY, aborts.signal);
    aborts.abort(new Error('reconcile cancelled'));
    await expect(listing).rejects.toThrow('reconcile cancelled');
    expect(sim.stats().requests).toBeLessThanOrEqual(1);
  });
});

describe('onRequest', () => {
  it('reports every attempt: ret_code, HTTP status, timeout', async () => {
    const sim = await simulator(150, { faults: { error: { retCode: 5100, next: 1 }, http5xx: { status: 502, next: 1 } } });
    const outcomes: RequestOutcome[] = [];
    await client(sim, { onRequest: (outcome) => outcomes.push(outcome) }).listAllUsers(QUERY);
    expect(outcomes).toEqual([{ httpStatus: 502 }, { retCode: 5100 }, { retCode: 0 }, { retCode: 0 }]);

    outcomes.length = 0;
    sim.setFaults({ hang: { next: 1 }, truncateJson: { next: 1 } });
    await failure(client(sim, { timeoutMs: 100, retry: { ...FAST_RETRY, maxAttempts: 2 }, onRequest: (outcome) => outcomes.push(outcome) }).listAllUsers(QUERY));
    expect(outcomes).toEqual([{ failure: 'timeout' }, { httpStatus: 200 }]);
  });

  it('reports a refused connection as a network failure', async () => {
    const sim = await simulator(0);
    await sim.close();
    const outcomes: RequestOutcome[] = [];
    await failure(client(sim, { retry: { ...FAST_RETRY, maxAttempts: 1 }, onRequest: (o) => outcomes.push(o) }).listAllUsers(QUERY));
    expect(outcomes).toEqual([{ failure: 'network' }]);
  });
});

describe('secrets stay out of errors', () => {
  it('names endpoint, zone and cluster but not the secret, the signature or the signed URL', async () => {
    const sim = await simulator(3);
    const secretAccessKey = 'wrong-secret-that-must-not-leak';
    const err = await failure(
      client(sim, { credentials: { accessKeyId: DEV_ACCESS_KEY.id, secretAccessKey } }).listAllUsers(QUERY),
    );
    expect(err).toMatchObject({ kind: 'permanent', details: { retCode: 1200 } });
    expect(err.message).toContain(`ListUsers ${sim.url} zone=jinan1a cluster=${CLUSTER}`);
    for (const text of [err.message, err.stack ?? '', JSON.stringify(err)]) {
      expect(text).not.toContain(secretAccessKey);
      expect(text).not.toContain('signature=');
      expect(text).not.toContain('access_key_id=');
    }
  });
});

describe('endpoints', () => {
  it('refuses plain http unless allowed explicitly', () => {
    expect(() => new HpcApiClient({ endpoint: 'http://127.0.0.1:1', credentials: CREDENTIALS })).toThrow(
      /plain http; allow insecure http explicitly/,
    );
  });

  it.each([
    ['not a URL', 'hpc.api.shanhe.com', /is not a URL/],
    ['another scheme', 'ftp://hpc.api.shanhe.com', /scheme ftp: is not http\(s\)/],
    ['credentials in the URL', 'https://user:pw@hpc.api.shanhe.com', /must not carry credentials/],
    ['a query', 'https://hpc.api.shanhe.com/?a=1', /must not carry credentials, a query/],
  ])('refuses %s', (_name, endpoint, message) => {
    const create = () => new HpcApiClient({ endpoint, credentials: CREDENTIALS });
    expect(create).toThrow(message);
    expect(create).toThrow(ProviderError);
  });
});

describe('rate limiting', () => {
  it('makes clients of one access key share one bucket, and waits for a token', async () => {
    const sim = await simulator(3);
    const clock = new ManualClock(Date.now());
    const registry = new RateLimiterRegistry({ capacity: 2, refill: 1, intervalMs: 1000 }, clock);
    const bucket = registry.forKey(accessKeyIdentity(sim.url, CREDENTIALS.accessKeyId, CREDENTIALS.secretAccessKey));
    const first = client(sim, { rateLimiter: bucket, clock });
    const second = client(sim, { rateLimiter: registry.forKey(accessKeyIdentity(sim.url, CREDENTIALS.accessKeyId, CREDENTIALS.secretAccessKey)), clock });

    await first.listAllUsers(QUERY);
    await second.listAllUsers(QUERY);
    let third = false;
    const pending = first.listAllUsers(QUERY).then((listing) => {
      third = true;
      return listing;
    });
    await new Promise<void>((resolve) => setImmediate(resolve));
    expect(third).toBe(false);
    expect(bucket.available()).toBeLessThan(1);
    expect(sim.stats().requests).toBe(2);

    clock.advance(1000);
    expect((await pending).rows).toHaveLength(3);
    expect(sim.stats().requests).toBe(3);
  });
});
