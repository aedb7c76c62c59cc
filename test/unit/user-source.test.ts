// The provider boundary the controller sees: validated listings, failures in its terms, and
// one keep-alive client per endpoint and key, replaced when the secret rotates.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { DEFAULT_ID_RANGE } from '../../src/domain/user.js';
import { HpcApiClient, type HpcApiClientOptions } from '../../src/provider/client.js';
import { ProviderError } from '../../src/provider/errors.js';
import { startSimulator, type Simulator } from '../../tools/simulator/server.js';
import { HpcUserSource, SyncFailure, toSyncFailure } from '../../src/provider/user-source.js';

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
      const listing = await source.listUsers(target(), KEY, DEFAULT_ID_RANGE);
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
      await source.listUsers(target(), KEY, DEFAULT_ID_RANGE);
      await source.listUsers(target(), KEY, DEFAULT_ID_RANGE);
      expect(made).toHaveLength(1);
      await expect(source.listUsers(target(), { ...KEY, secretAccessKey: 'rotated' }, DEFAULT_ID_RANGE)).rejects.toMatchObject({
        reason: 'AuthenticationFailed',
        retry: 'permanent',
      });
      expect(made).toHaveLength(2);
      expect(closed()).toBe(1);
    } finally {
      source.close();
    }
    expect(closed()).toBe(2);
  });
});

describe('toSyncFailure', () => {
  it.each([
    [new ProviderError('permanent', 'x', { code: 'ret-code', retCode: 1200 }), 'AuthenticationFailed', 'permanent'],
    [new ProviderError('permanent', 'x', { code: 'ret-code', retCode: 1400 }), 'AuthenticationFailed', 'permanent'],
    [new ProviderError('quota', 'x', { code: 'ret-code', retCode: 2500 }), 'QuotaExceeded', 'quota'],
    [new ProviderError('permanent', 'x', { code: 'ret-code', retCode: 2100 }), 'ListUsersFailed', 'permanent'],
    [new ProviderError('permanent', 'x', { code: 'malformed-response' }), 'ListUsersFailed', 'retryable'],
    [new ProviderError('retryable', 'x', { code: 'timeout' }), 'ListUsersFailed', 'retryable'],
  ])('maps %o to %s, %s', (error, reason, retry) => {
    expect(toSyncFailure(error)).toMatchObject({ reason, retry });
  });

  it('leaves anything but a ProviderError alone, and waits 15 minutes on a quota', () => {
    expect(toSyncFailure(new Error('bug'))).toBeUndefined();
    const quota = toSyncFailure(new ProviderError('quota', 'x', { retCode: 2500 }));
    expect(quota).toBeInstanceOf(SyncFailure);
    expect(quota?.retryAfterMs).toBe(15 * 60_000);
  });
});
