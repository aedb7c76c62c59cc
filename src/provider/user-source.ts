import type { Retry, SyncFailure } from '../domain/failure.js';
import { validateUsers, type ValidatedUsers } from '../domain/validate.js';
import { HpcApiClient, type HpcApiClientOptions } from './client.js';
import { ProviderError, RetCode, type ProviderErrorKind } from './errors.js';
import { accessKeyIdentity } from './key-identity.js';
import { sharedRateLimiters, type CallLimiters } from './rate-limiter.js';
import { QUOTA_BACKOFF_MS } from './retry.js';

/**
 * The provider boundary, like External Secrets Operator's provider interface: the
 * controller asks a UserSource for a cluster's well-formed users and gets either a listing
 * or a SyncFailure that says what to report and when retrying can help. Which of the users
 * the HpcCluster wants (idRange, roles) is not the provider's business: see domain/select.ts.
 * Nothing of the vendor's wire format crosses it.
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

/** The well-formed users of one complete listing, and the rows skipped as malformed. */
export interface UserListing extends ValidatedUsers {
  pages: number;
  requests: number;
}

/** A complete listing, or why there is none. Only unexpected errors (a bug, an abort) are thrown. */
export type ListResult = { listing: UserListing } | { failure: SyncFailure };

export interface UserSource {
  listUsers(target: ProviderTarget, credentials: ProviderCredentials, signal?: AbortSignal): Promise<ListResult>;
  /** Releases connections. */
  close(): void;
}

const RETRY_OF_KIND: Record<ProviderErrorKind, Retry> = {
  permanent: 'never',
  retryable: 'backoff',
  quota: { afterMs: QUOTA_BACKOFF_MS },
};

/** The one mapping of a provider error into the controller's failure model. */
export function failureOf(err: ProviderError): SyncFailure {
  const retry = RETRY_OF_KIND[err.kind];
  const retCode = err.details.retCode;
  if (retCode === RetCode.AuthenticationFailed || retCode === RetCode.AccessDenied) {
    return { reason: 'AuthenticationFailed', message: `${err.message}; check the access key in the credentials Secret`, retry };
  }
  if (err.details.code === 'endpoint-not-allowed') return { reason: 'EndpointNotAllowed', message: err.message, retry };
  if (err.details.code === 'sync-limit') return { reason: 'SyncLimitExceeded', message: err.message, retry };
  return { reason: err.kind === 'quota' ? 'QuotaExceeded' : 'ListUsersFailed', message: err.message, retry };
}

type ClientFactory = (options: HpcApiClientOptions) => HpcApiClient;

export type HpcUserSourceOptions = Partial<Omit<HpcApiClientOptions, 'endpoint' | 'credentials' | 'allowInsecureHttp' | 'rateLimiter'>> & {
  rateLimiters?: CallLimiters;
};

/** The Shanhe Cloud / QingCloud HPC API as a UserSource; one keep-alive client per endpoint and key. */
export class HpcUserSource implements UserSource {
  /** One client per endpoint and access key id, with the identity (secret digest included) it signs as. */
  private readonly clients = new Map<string, { identity: string; client: HpcApiClient }>();

  private readonly rateLimiters: CallLimiters;
  private readonly clientOptions: Partial<HpcApiClientOptions>;

  /** `rateLimiters`: the per-key budgets; default the process-wide one at the provider's limit. */
  constructor(
    { rateLimiters = sharedRateLimiters, ...clientOptions }: HpcUserSourceOptions = {},
    private readonly createClient: ClientFactory = (options) => new HpcApiClient(options),
  ) {
    this.rateLimiters = rateLimiters;
    this.clientOptions = clientOptions;
  }

  async listUsers(target: ProviderTarget, credentials: ProviderCredentials, signal?: AbortSignal): Promise<ListResult> {
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
      return { listing: { ...validateUsers(listing.rows), pages: listing.pages, requests: listing.requests } };
    } catch (err) {
      if (err instanceof ProviderError) return { failure: failureOf(err) };
      throw err;
    }
  }

  close(): void {
    for (const { client } of this.clients.values()) client.close();
    this.clients.clear();
  }

  private clientFor(target: ProviderTarget, credentials: ProviderCredentials): HpcApiClient {
    const key = [target.endpoint, String(target.allowInsecureHttp), credentials.accessKeyId].join('\n');
    // A rotated Secret changes the identity and gets a fresh client; the old one closes.
    const identity = accessKeyIdentity(target.endpoint, credentials.accessKeyId, credentials.secretAccessKey);
    const cached = this.clients.get(key);
    if (cached !== undefined && cached.identity === identity.id) return cached.client;
    cached?.client.close();
    const client = this.createClient({
      ...this.clientOptions,
      endpoint: target.endpoint,
      allowInsecureHttp: target.allowInsecureHttp,
      credentials,
      rateLimiter: this.rateLimiters.forKey(identity),
    });
    this.clients.set(key, { identity: identity.id, client });
    return client;
  }
}
