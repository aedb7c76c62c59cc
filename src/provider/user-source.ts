import { createHash } from 'node:crypto';
import { validateUsers } from '../domain/validate.js';
import type { HpcUser, IdRange, SkippedUser } from '../domain/user.js';
import { HpcApiClient, type HpcApiClientOptions } from './client.js';
import { ProviderError, RetCode } from './errors.js';
import { RateLimiterRegistry, sharedRateLimiters } from './rate-limiter.js';
import { QUOTA_BACKOFF_MS } from './retry.js';

/**
 * The provider boundary, like External Secrets Operator's provider interface: the
 * controller asks a UserSource for a cluster's validated users and gets either a listing
 * or a SyncFailure that says what to report and whether retrying can help. Nothing of the
 * vendor's wire format crosses it.
 */

/** What a provider needs to list one cluster's users. */
export interface ProviderTarget {
  endpoint: string;
  allowInsecureHttp: boolean;
  zone: string;
  clusterId: string;
  userId?: string;
  searchWord?: string;
}

export interface ProviderCredentials {
  accessKeyId: string;
  secretAccessKey: string;
}

/** The validated users of one complete listing. */
export interface UserListing {
  users: HpcUser[];
  skipped: SkippedUser[];
  pages: number;
  requests: number;
}

export interface UserSource {
  listUsers(target: ProviderTarget, credentials: ProviderCredentials, idRange: IdRange, signal?: AbortSignal): Promise<UserListing>;
  /** Releases connections. */
  close(): void;
}

/**
 * A listing that failed, as the controller reports it:
 * - permanent: retrying cannot help until the spec or the Secret changes
 * - quota: the access key's call budget is spent; come back after a long back-off
 * - retryable: come back after the usual back-off
 */
export class SyncFailure extends Error {
  override readonly name = 'SyncFailure';
  constructor(
    readonly reason: 'AuthenticationFailed' | 'ListUsersFailed' | 'QuotaExceeded',
    readonly retry: 'permanent' | 'quota' | 'retryable',
    message: string,
    /** For metrics and logs: the provider's ret_code, or what went wrong instead. */
    readonly code: string,
    /** For `quota`: how long to wait before calling with this key again. */
    readonly retryAfterMs?: number,
  ) {
    super(message);
  }
}

/** A ProviderError in the controller's terms; anything else is not a provider failure. */
export function toSyncFailure(err: unknown): SyncFailure | undefined {
  if (!(err instanceof ProviderError)) return undefined;
  const code = err.details.retCode !== undefined ? String(err.details.retCode) : (err.details.code ?? 'unknown');
  const retCode = err.details.retCode;
  if (retCode === RetCode.AuthenticationFailed || retCode === RetCode.AccessDenied) {
    return new SyncFailure('AuthenticationFailed', 'permanent', `${err.message}; check the access key in the credentials Secret`, code);
  }
  if (err.kind === 'quota') return new SyncFailure('QuotaExceeded', 'quota', err.message, code, QUOTA_BACKOFF_MS);
  // A garbled page says nothing about the request: the next sync may well read a good one.
  const permanent = err.kind === 'permanent' && err.details.code !== 'malformed-response';
  return new SyncFailure('ListUsersFailed', permanent ? 'permanent' : 'retryable', err.message, code);
}

type ClientFactory = (options: HpcApiClientOptions) => HpcApiClient;

export type HpcUserSourceOptions = Partial<Omit<HpcApiClientOptions, 'endpoint' | 'credentials' | 'allowInsecureHttp' | 'rateLimiter'>> & {
  rateLimiters?: RateLimiterRegistry;
};

/** The Shanhe Cloud / QingCloud HPC API as a UserSource; one keep-alive client per endpoint and key. */
export class HpcUserSource implements UserSource {
  /** One client per endpoint and access key, with the digest of the secret it signs with. */
  private readonly clients = new Map<string, { secretDigest: string; client: HpcApiClient }>();

  private readonly rateLimiters: RateLimiterRegistry;
  private readonly clientOptions: Partial<HpcApiClientOptions>;

  /** `rateLimiters`: the per-key budgets; default the process-wide one at the provider's limit. */
  constructor(
    { rateLimiters = sharedRateLimiters, ...clientOptions }: HpcUserSourceOptions = {},
    private readonly createClient: ClientFactory = (options) => new HpcApiClient(options),
  ) {
    this.rateLimiters = rateLimiters;
    this.clientOptions = clientOptions;
  }

  async listUsers(target: ProviderTarget, credentials: ProviderCredentials, idRange: IdRange, signal?: AbortSignal): Promise<UserListing> {
    try {
      const client = this.clientFor(target, credentials);
      const listing = await client.listAllUsers(
        {
          zone: target.zone,
          clusterId: target.clusterId,
          ...(target.userId === undefined ? {} : { userId: target.userId }),
          ...(target.searchWord === undefined ? {} : { searchWord: target.searchWord }),
        },
        signal,
      );
      const { users, skipped } = validateUsers(listing.rows, idRange);
      return { users, skipped, pages: listing.pages, requests: listing.requests };
    } catch (err) {
      throw toSyncFailure(err) ?? err;
    }
  }

  close(): void {
    for (const { client } of this.clients.values()) client.close();
    this.clients.clear();
  }

  private clientFor(target: ProviderTarget, credentials: ProviderCredentials): HpcApiClient {
    const key = [target.endpoint, String(target.allowInsecureHttp), credentials.accessKeyId].join('\n');
    // The secret's digest tells a rotated Secret, which gets a fresh client; the old one closes.
    const secretDigest = createHash('sha256').update(credentials.secretAccessKey).digest('hex');
    const cached = this.clients.get(key);
    if (cached !== undefined && cached.secretDigest === secretDigest) return cached.client;
    cached?.client.close();
    const client = this.createClient({
      ...this.clientOptions,
      endpoint: target.endpoint,
      allowInsecureHttp: target.allowInsecureHttp,
      credentials,
      rateLimiter: this.rateLimiters.forAccessKey(credentials.accessKeyId),
    });
    this.clients.set(key, { secretDigest, client });
    return client;
  }
}
