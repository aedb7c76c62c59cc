import type { HpcClusterSpec } from '../api/hpccluster.js';
import type { ProviderCredentials, UserListing, UserSource } from '../provider/user-source.js';

/** The steps of a sync that `run` and `render` share, apart from any Kubernetes I/O. */

/** Credentials from a Secret's decoded data, or a message saying what is missing. */
export function credentialsFromSecret(
  ref: HpcClusterSpec['credentialsSecretRef'],
  data: Readonly<Record<string, string>> | undefined,
): ProviderCredentials | string {
  if (data === undefined) {
    return `Secret ${ref.name} not found in this namespace; create it with keys ${ref.accessKeyIdKey} and ${ref.secretAccessKeyKey}`;
  }
  const accessKeyId = data[ref.accessKeyIdKey]?.trim() ?? '';
  const secretAccessKey = data[ref.secretAccessKeyKey]?.trim() ?? '';
  const missing = [accessKeyId === '' ? ref.accessKeyIdKey : undefined, secretAccessKey === '' ? ref.secretAccessKeyKey : undefined].filter(
    (k): k is string => k !== undefined,
  );
  if (missing.length > 0) return `Secret ${ref.name} has no non-empty key ${missing.join(' or ')}`;
  return { accessKeyId, secretAccessKey };
}

/** Every valid user the spec selects: the API's filters, the id range, then the role filter. */
export async function listClusterUsers(
  source: UserSource,
  spec: HpcClusterSpec,
  credentials: ProviderCredentials,
  signal?: AbortSignal,
): Promise<UserListing> {
  const target = {
    endpoint: spec.endpoint,
    allowInsecureHttp: spec.allowInsecureHttp,
    zone: spec.zone,
    clusterId: spec.clusterId,
    ...(spec.filter?.userId === undefined ? {} : { userId: spec.filter.userId }),
    ...(spec.filter?.searchWord === undefined ? {} : { searchWord: spec.filter.searchWord }),
  };
  const listing = await source.listUsers(target, credentials, spec.idRange, signal);
  const roles = spec.filter?.roles;
  return roles === undefined ? listing : { ...listing, users: listing.users.filter((u) => roles.includes(u.role)) };
}
