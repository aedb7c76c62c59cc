import { ProviderError } from './errors.js';

/**
 * Where the operator may send an access key: an allow-list the platform team sets
 * (`run --allowed-endpoints`), checked before any request. The endpoint is written by
 * whoever creates an HpcCluster; without this list any URL — the apiserver, the metadata
 * address, an in-cluster service, a host of the tenant's own — would get a signed request.
 */

/** The provider's own API hosts: Shanhe Cloud's and QingCloud's (the same API). */
export const PROVIDER_ENDPOINTS: readonly string[] = ['https://hpc.api.shanhe.com', 'https://hpc.api.qingcloud.com'];

const LOOPBACK_HOSTS = new Set(['localhost', '[::1]']);

function isLoopbackHost(hostname: string): boolean {
  return LOOPBACK_HOSTS.has(hostname) || /^127(\.\d{1,3}){3}$/.test(hostname);
}

export class EndpointAllowList {
  private readonly origins: ReadonlySet<string>;

  /**
   * `origins`: scheme, host and optional port, e.g. `https://hpc.api.shanhe.com`; a path is
   * ignored (an endpoint may add one). `loopback`: any port on 127.0.0.0/8, ::1 and localhost,
   * for the simulator of development and tests only.
   */
  constructor(
    origins: readonly string[],
    private readonly loopback = false,
  ) {
    this.origins = new Set(
      origins.map((origin) => {
        let url: URL;
        try {
          url = new URL(origin);
        } catch {
          throw new Error(`allowed endpoint ${JSON.stringify(origin)} is not a URL`);
        }
        if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new Error(`allowed endpoint ${origin} is not http(s)`);
        return url.origin;
      }),
    );
  }

  allows(endpoint: URL): boolean {
    return this.origins.has(endpoint.origin) || (this.loopback && isLoopbackHost(endpoint.hostname));
  }

  /** Throws a permanent ProviderError (code `endpoint-not-allowed`) unless `endpoint` is allowed. */
  check(endpoint: URL): void {
    if (this.allows(endpoint)) return;
    const allowed = [...this.origins, ...(this.loopback ? ['loopback'] : [])].join(', ') || 'none';
    throw new ProviderError(
      'permanent',
      `endpoint ${endpoint.origin} is not allowed by this operator (allowed: ${allowed}); use an allowed endpoint or ask the platform team to add it to --allowed-endpoints`,
      { code: 'endpoint-not-allowed' },
    );
  }
}
