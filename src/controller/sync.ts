import { CREDENTIALS_LABEL, CREDENTIALS_LABEL_VALUE, type HpcClusterSpec } from '../api/hpccluster.js';
import { selectUsers } from '../domain/select.js';
import type { HpcUser, SkippedUser } from '../domain/user.js';
import type { ValidatedUsers } from '../domain/validate.js';
import { configMapSizeProblem, renderConfigMaps, summaryOf, syncIdOf, type RenderedConfigMap, type RenderSummary } from '../render/configmaps.js';
import type { ProviderCredentials, ProviderTarget } from '../provider/user-source.js';

/** The pure steps of a sync that the reconcile plan and `render` share. */

/**
 * A credentials Secret as a sync may see it: missing, present but not lent to the operator
 * (its data never read), or lent, with its decoded data, its resourceVersion (what a
 * remembered failure records of it: status may hold that, never anything of the data) and
 * the rate it declares for its access key (the PROVIDER_RATE_LIMIT_ANNOTATION of its metadata), if any.
 */
export type SecretRead =
  | { state: 'missing' }
  | { state: 'not-lent' }
  | { state: 'lent'; data: Readonly<Record<string, string>>; resourceVersion: string; providerRateLimit?: string };

const LABEL_TEXT = `${CREDENTIALS_LABEL}: "${CREDENTIALS_LABEL_VALUE}"`;

/** Credentials from a Secret read, or a message saying what is missing. */
export function credentialsFromSecret(ref: HpcClusterSpec['credentialsSecretRef'], secret: SecretRead): ProviderCredentials | string {
  if (secret.state === 'missing') {
    return `Secret ${ref.name} not found in this namespace; create it with keys ${ref.accessKeyIdKey} and ${ref.secretAccessKeyKey} and the label ${LABEL_TEXT}`;
  }
  if (secret.state === 'not-lent') {
    return `Secret ${ref.name} is not lent to the operator, which reads only Secrets labelled ${LABEL_TEXT}; if it holds this cluster's API keys, add the label: kubectl label secret ${ref.name} ${CREDENTIALS_LABEL}=${CREDENTIALS_LABEL_VALUE}`;
  }
  const data = secret.data;
  const accessKeyId = data[ref.accessKeyIdKey]?.trim() ?? '';
  const secretAccessKey = data[ref.secretAccessKeyKey]?.trim() ?? '';
  const missing = [accessKeyId === '' ? ref.accessKeyIdKey : undefined, secretAccessKey === '' ? ref.secretAccessKeyKey : undefined].filter(
    (k): k is string => k !== undefined,
  );
  if (missing.length > 0) return `Secret ${ref.name} has no non-empty key ${missing.join(' or ')}`;
  return { accessKeyId, secretAccessKey };
}

/** The provider query of a spec: its cluster and the filters the API applies itself. */
export function providerTarget(spec: HpcClusterSpec): ProviderTarget {
  return {
    endpoint: spec.endpoint,
    allowInsecureHttp: spec.allowInsecureHttp,
    zone: spec.zone,
    clusterId: spec.clusterId,
    ...(spec.filter?.userId === undefined ? {} : { userId: spec.filter.userId }),
    ...(spec.filter?.searchWord === undefined ? {} : { searchWord: spec.filter.searchWord }),
  };
}

/** What a complete listing comes to for one HpcCluster. */
export interface DesiredUsers {
  users: HpcUser[];
  skipped: SkippedUser[];
  /** The sync id of the users: the sha256 of their users.json (status.usersDigest). */
  syncId: string;
  /** Both ConfigMaps as rendered, users first, without their data. */
  configMaps: RenderSummary[];
  /** Their data; undefined when an earlier render of the same list was reused. */
  rendered: RenderedConfigMap[] | undefined;
  /** Why the ConfigMaps cannot be written, when they cannot. */
  sizeProblem: string | undefined;
}

/**
 * The users the spec selects from a listing, rendered into the HpcCluster `name`'s ConfigMaps.
 * When they render with the sync id of `earlier` (a render of the same list by this process),
 * that render is reused without its data: the same list renders the same data, and rendering
 * it is most of an unchanged sync's CPU. Whoever needs the data then renders it (planSync).
 */
export function desiredUsers(name: string, spec: HpcClusterSpec, listing: ValidatedUsers): DesiredUsers & { rendered: RenderedConfigMap[] };
export function desiredUsers(name: string, spec: HpcClusterSpec, listing: ValidatedUsers, earlier: readonly RenderSummary[] | undefined): DesiredUsers;
export function desiredUsers(name: string, spec: HpcClusterSpec, listing: ValidatedUsers, earlier?: readonly RenderSummary[]): DesiredUsers {
  const { users, skipped } = selectUsers(listing, { idRange: spec.idRange, roles: spec.filter?.roles });
  if (earlier !== undefined) {
    const syncId = syncIdOf(users);
    if (earlier[0]?.syncId === syncId) return { users, skipped, syncId, configMaps: [...earlier], rendered: undefined, sizeProblem: configMapSizeProblem(earlier) };
  }
  const rendered = renderConfigMaps(name, users);
  const syncId = rendered[0]?.syncId ?? syncIdOf(users);
  return { users, skipped, syncId, configMaps: rendered.map(summaryOf), rendered, sizeProblem: configMapSizeProblem(rendered) };
}
