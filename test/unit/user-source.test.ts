// The provider boundary the controller sees: validated listings, failures in its terms, and
// one keep-alive client per endpoint and key, replaced when the secret rotates.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { HpcApiClient, type HpcApiClientOptions } from '../../src/provider/client.js';
import { ProviderError } from '../../src/provider/errors.js';
import { startSimulator, type Simulator } from '../../tools/simulator/server.js';
import { failureOf, HpcUserSource, type ListResult } from '../../src/provider/user-source.js';

const KEY = { accessKeyId: 'AKID', secretAccessKey: 'first-secret' };
let sim: Simulator;

beforeAll(async () => {
  sim = await startSimulator({
    accessKeys: [{ id: KEY.accessKeyId, secret: KEY.secretAccessKey }],
    clusters: [{ id: 'hpc-1', users: [{ username: 'ann', uid: 5001, gid: 5001, role: 'member' }] }],
    faults: { invalidRows: ['uid-zero'] },
  });
});
afterAll(() => sim.close());

const target = () => ({ endpoint: sim.url, allowInsecureHttp: true, zone: 'jinan1a', clusterId: 'hpc-1' });

/** An HpcUserSource whose clients are counted as they are made and closed. */
function countingSource() {
  const made: HpcApiClientOptions[] = [];
  let closed = 0;
  const source = new HpcUserSource({}, (options) => {
    made.push(options);
    const client = new HpcApiClient(options);
    const close = client.close.bind(client);
    client.close = () => {
      closed++;
      close();
    };
    return client;
  });
  return { source, made, closed: () => closed };
}

describe('HpcUserSource', () => {
  it('returns the validated users and the skipped rows of a complete listing', async () => {
    const { source } = countingSource();
    try {
      const { listing } = (await source.listUsers(target(), KEY)) as Extract<ListResult, { listing: unknown }>;
      expect(listing.users.map((u) => u.username)).toEqual(['ann']);
      expect(listing.skipped).toHaveLength(1);
      expect(listing).toMatchObject({ pages: 1, requests: 1 });
    } finally {
      source.close();
    }
  });

  it('keeps one client per endpoint and key, and replaces it when the secret changes', async () => {
    const { source, made, closed } = countingSource();
    try {
      await source.listUsers(target(), KEY);
      await source.listUsers(target(), KEY);
      expect(made).toHaveLength(1);
      expect(await source.listUsers(target(), { ...KEY, secretAccessKey: 'rotated' })).toMatchObject({
        failure: { reason: 'AuthenticationFailed', retry: 'never' },
      });
      expect(made).toHaveLength(2);
      expect(closed()).toBe(1);
    } finally {
      source.close();
    }
    expect(closed()).toBe(2);
  });
});

describe('failureOf', () => {
  it.each([
    [new ProviderError('permanent', 'x', { code: 'ret-code', retCode: 1200 }), 'AuthenticationFailed', 'never'],
    [new ProviderError('permanent', 'x', { code: 'ret-code', retCode: 1400 }), 'AuthenticationFailed', 'never'],
    [new ProviderError('permanent', 'x', { code: 'ret-code', retCode: 2100 }), 'ListUsersFailed', 'never'],
    [new ProviderError('permanent', 'x', { code: 'http-status', httpStatus: 404 }), 'ListUsersFailed', 'never'],
    [new ProviderError('retryable', 'x', { code: 'malformed-response' }), 'ListUsersFailed', 'backoff'],
    [new ProviderError('retryable', 'x', { code: 'timeout' }), 'ListUsersFailed', 'backoff'],
  ])('maps %o to %s, retry %s', (error, reason, retry) => {
    expect(failureOf(error)).toEqual({ reason, message: reason === 'AuthenticationFailed' ? 'x; check the access key in the credentials Secret' : 'x', retry });
  });

  it('waits 15 minutes on a spent quota', () => {
    expect(failureOf(new ProviderError('quota', 'x', { retCode: 2500 }))).toEqual({ reason: 'QuotaExceeded', message: 'x', retry: { afterMs: 15 * 60_000 } });
  });
});

describe('HpcUserSource failures', () => {
  it('returns a provider failure and throws what is not one', async () => {
    const source = new HpcUserSource();
    try {
      expect(await source.listUsers({ ...target(), allowInsecureHttp: false }, KEY)).toMatchObject({
        failure: { reason: 'ListUsersFailed', retry: 'never' },
      });
      const aborted = AbortSignal.abort(new Error('stopped'));
      await expect(source.listUsers(target(), KEY, aborted)).rejects.toThrow('stopped');
    } finally {
      source.close();
    }
  });
});
