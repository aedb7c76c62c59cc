import type { V1ObjectMeta } from '@kubernetes/client-node';
import { z } from 'zod';
import { DEFAULT_ID_RANGE, MAX_SYNCED_ID, ROLES } from '../domain/user.js';
import { PROVIDER_RATE_LIMIT_ANNOTATION } from '../budget/declared-rate.js';
import { DURATION_PATTERN, parseDuration } from './duration.js';

/**
 * HpcCluster v1alpha1: the one source of truth. The TypeScript types, the runtime validation
 * and the CRD's OpenAPI schema (see crd.ts) all come from these zod schemas. Rules that span
 * fields are written twice on purpose, side by side: as a CEL rule the apiserver enforces and
 * as a zod refinement the operator enforces on objects that predate the CRD.
 */

export const GROUP = 'hpc.shanhe.com';
export const VERSION = 'v1alpha1';
export const API_VERSION = `${GROUP}/${VERSION}`;
export const KIND = 'HpcCluster';
export const PLURAL = 'hpcclusters';
export const SINGULAR = 'hpccluster';
export const SHORT_NAME = 'hpcc';
export const CATEGORY = 'hpc';

export const DEFAULT_ENDPOINT = 'https://hpc.api.shanhe.com';
export const DEFAULT_SYNC_INTERVAL = '10m';
export const MIN_SYNC_INTERVAL_MS = 30_000;
/** A day: longer intervals help nobody, and every timer stays far inside what Node can hold. */
export const MAX_SYNC_INTERVAL_MS = 24 * 3_600_000;
/**
 * A Secret lends itself to the operator with this label (value "true"). Any other Secret is
 * never read, whatever an HpcCluster names, so creating an HpcCluster reads no Secret that
 * was not meant for it.
 */
export const CREDENTIALS_LABEL = 'hpc.shanhe.com/credentials';
export const CREDENTIALS_LABEL_VALUE = 'true';

/** Whether a Secret with these labels is lent to the operator (see CREDENTIALS_LABEL). */
export function isLentToOperator(labels: Readonly<Record<string, string>> | undefined): boolean {
  return labels?.[CREDENTIALS_LABEL] === CREDENTIALS_LABEL_VALUE;
}

const celRules = (...rules: { rule: string; message: string }[]) => ({ 'x-kubernetes-validations': rules });

const secretRefSchema = z
  .object({
    name: z
      .string()
      .min(1)
      .max(253)
      .regex(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/)
      .describe('Name of a Secret in the same namespace as the HpcCluster.'),
    accessKeyIdKey: z
      .string()
      .min(1)
      .max(253)
      .default('access_key_id')
      .describe('Key in the Secret that holds the API access key id.'),
    secretAccessKeyKey: z
      .string()
      .min(1)
      .max(253)
      .default('secret_access_key')
      .describe('Key in the Secret that holds the API secret access key.'),
  })
  .describe(
    `The provider API credentials. Only a Secret in the HpcCluster's own namespace that carries the label ${CREDENTIALS_LABEL}: "${CREDENTIALS_LABEL_VALUE}" is read, so a namespace cannot borrow another team's keys and no other Secret is read. When the provider gave the access key another rate than the operator's default, annotate the Secret with it, e.g. ${PROVIDER_RATE_LIMIT_ANNOTATION}: "5000/1h".`,
  );

const filterSchema = z
  .object({
    userId: z.string().min(1).max(64).optional().describe('Only this provider user id (sent to the API as user_id).'),
    searchWord: z
      .string()
      .min(1)
      .max(64)
      .optional()
      .describe('Fuzzy match on the user name, done by the API (sent as search_word).'),
    roles: z
      .array(z.enum(ROLES))
      .min(1)
      .max(ROLES.length)
      .optional()
      .describe('Keep only users with one of these roles (applied by the operator after the API call).'),
  })
  .describe('Narrows which users are synced. userId and searchWord go to the API; roles are applied locally.');

const idRangeSchema = z
  .object({
    min: z
      .number()
      .int()
      .min(1)
      .max(MAX_SYNCED_ID)
      .default(DEFAULT_ID_RANGE.min)
      .describe('Smallest uid/gid accepted. Never below 1: uid/gid 0 (root) is always refused.'),
    max: z.number().int().min(1).max(MAX_SYNCED_ID).default(DEFAULT_ID_RANGE.max).describe('Largest uid/gid accepted.'),
  })
  .refine((r) => r.min <= r.max, { message: 'idRange.min must not be greater than idRange.max' })
  .meta(celRules({ rule: 'self.min <= self.max', message: 'idRange.min must not be greater than idRange.max' }))
  .describe('Users whose uid or gid falls outside this inclusive range are skipped and reported in status.');

const HOME_MESSAGE = 'podIdentity.home must name exactly one of persistentVolumeClaim and nfs';

const podIdentitySchema = z
  .object({
    home: z
      .object({
        persistentVolumeClaim: z
          .object({
            claimName: z
              .string()
              .min(1)
              .max(253)
              .regex(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/)
              .describe('A PersistentVolumeClaim in the HpcCluster\'s namespace whose root holds the nasMountPoints.'),
          })
          .optional()
          .describe('Mount this claim with subPath = the user\'s nasMountPoint (allowed by Pod Security restricted).'),
        nfs: z
          .object({
            server: z.string().min(1).max(253).regex(/^[A-Za-z0-9.:[\]-]+$/).describe('NFS server host name or address.'),
            path: z.string().min(1).max(1024).regex(/^\/[^:\s]*$/).describe('The exported path that holds the nasMountPoints.'),
          })
          .optional()
          .describe('Mount this NFS export with subPath = the user\'s nasMountPoint.'),
      })
      .refine((h) => (h.persistentVolumeClaim === undefined) !== (h.nfs === undefined), { message: HOME_MESSAGE })
      .meta(celRules({ rule: 'has(self.persistentVolumeClaim) != has(self.nfs)', message: HOME_MESSAGE }))
      .optional()
      .describe('The volume that holds the users\' NAS homes; pods that run as a user get theirs mounted at its nasMountPoint.'),
  })
  .describe('What pods that claim a user of this HpcCluster (label hpc.shanhe.com/cluster, annotation hpc.shanhe.com/user) get at admission.');

const INSECURE_ENDPOINT_MESSAGE = 'endpoint must use https:// unless allowInsecureHttp is true';
const SYNC_INTERVAL_MESSAGE = 'syncInterval must be between 30s and 24h';

export const hpcClusterSpecSchema = z
  .object({
    clusterId: z
      .string()
      .min(1)
      .max(64)
      .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/)
      .describe('The provider\'s HPC cluster id, e.g. hpc-qig9xu97 or ehpc-8jqdq0mz.'),
    zone: z
      .string()
      .min(1)
      .max(64)
      .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/)
      .describe('The provider zone (region id) of the cluster, e.g. jinan1a.'),
    endpoint: z
      .string()
      .max(2048)
      .regex(/^https?:\/\/[^\s/?#]+(\/[^\s?#]*)?$/)
      .default(DEFAULT_ENDPOINT)
      .describe(
        'Base URL of the provider\'s HPC API. Shanhe Cloud: https://hpc.api.shanhe.com; a QingCloud endpoint works the same way. Plain http:// only with allowInsecureHttp.',
      ),
    allowInsecureHttp: z
      .boolean()
      .default(false)
      .describe('Allow a plain http:// endpoint (credentials and user data travel unencrypted). For test simulators only.'),
    credentialsSecretRef: secretRefSchema,
    syncInterval: z
      .string()
      .max(32)
      .regex(new RegExp(DURATION_PATTERN))
      .default(DEFAULT_SYNC_INTERVAL)
      .refine(
        (d) => {
          const ms = parseDuration(d) ?? 0;
          return ms >= MIN_SYNC_INTERVAL_MS && ms <= MAX_SYNC_INTERVAL_MS;
        },
        { message: SYNC_INTERVAL_MESSAGE },
      )
      .meta(celRules({ rule: "duration(self) >= duration('30s') && duration(self) <= duration('24h')", message: SYNC_INTERVAL_MESSAGE }))
      .describe('How often to sync when nothing else triggers it, as a duration (30s, 10m, 1h). Between 30s and 24h; random jitter is added.'),
    suspend: z
      .boolean()
      .default(false)
      .describe('When true the operator makes no API calls and no writes; Ready reports Suspended. ConfigMaps keep their content.'),
    filter: filterSchema.optional(),
    idRange: idRangeSchema.default({ ...DEFAULT_ID_RANGE }),
    maxUserRemovalPercent: z
      .number()
      .int()
      .min(0)
      .max(100)
      .default(50)
      .describe(
        'A sync that would remove more than this percentage of the currently synced users is held (Ready=False, RemovalHeld) instead of applied. Set to 100 to accept a large removal.',
      ),
    podIdentity: podIdentitySchema.optional(),
  })
  .refine((s) => s.allowInsecureHttp || s.endpoint.startsWith('https://'), { message: INSECURE_ENDPOINT_MESSAGE })
  .meta(celRules({ rule: "self.allowInsecureHttp || self.endpoint.startsWith('https://')", message: INSECURE_ENDPOINT_MESSAGE }))
  .describe('Which HPC cluster to mirror, how to reach its API, and how to sync.');

export const conditionSchema = z.object({
  type: z.string().min(1).max(316).describe('Type of condition: Ready, Reconciling or Stalled.'),
  status: z.enum(['True', 'False', 'Unknown']).describe('Status of the condition.'),
  reason: z.string().min(1).max(1024).describe('Machine-readable reason in CamelCase.'),
  message: z.string().max(32768).describe('Human-readable explanation, including what to fix.'),
  observedGeneration: z.number().int().min(0).optional().describe('The .metadata.generation the condition was set for.'),
  lastTransitionTime: z.string().describe('When the condition last changed status (RFC 3339).').meta({ format: 'date-time' }),
});

export const statusUserSchema = z.object({
  username: z.string().describe('Login name on the HPC cluster.'),
  uid: z.number().int().min(0).max(MAX_SYNCED_ID).describe('Numeric user id.'),
  gid: z.number().int().min(0).max(MAX_SYNCED_ID).describe('Numeric primary group id.'),
  role: z.enum(ROLES).describe('Role on the HPC cluster: boss, admin or member.'),
  nasMountPoint: z.string().describe('The user\'s NAS home directory.'),
  userId: z.string().describe('Provider user id.'),
  hpcUserId: z.string().describe('Provider HPC user id.'),
});

export const MAX_STATUS_USERS = 500;
export const MAX_STATUS_SKIPPED = 50;

export const hpcClusterStatusSchema = z
  .object({
    observedGeneration: z.number().int().min(0).optional().describe('The .metadata.generation last reconciled.'),
    conditions: z
      .array(conditionSchema)
      .optional()
      .meta({ 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['type'] })
      .describe('Ready, Reconciling and Stalled, per kstatus conventions.'),
    userCount: z.number().int().min(0).optional().describe('Number of users synced.'),
    users: z
      .array(statusUserSchema)
      .max(MAX_STATUS_USERS)
      .optional()
      .describe(`Synced users, sorted by username; at most ${MAX_STATUS_USERS} (see usersTruncated and the -users ConfigMap).`),
    usersTruncated: z.boolean().optional().describe('True when users lists only the first entries.'),
    skippedUsers: z
      .array(
        z.object({
          username: z.string().describe('The username as the API sent it (may be empty or invalid).'),
          reason: z.string().describe('The validation rule the row broke.'),
        }),
      )
      .max(MAX_STATUS_SKIPPED)
      .optional()
      .describe(`Rows the API returned that failed validation, with the reason; at most ${MAX_STATUS_SKIPPED}.`),
    skippedUserCount: z.number().int().min(0).optional().describe('Number of rows skipped in the last sync.'),
    lastSyncTime: z.string().optional().describe('Last sync attempt (RFC 3339).').meta({ format: 'date-time' }),
    lastSuccessfulSyncTime: z.string().optional().describe('Last successful sync (RFC 3339).').meta({ format: 'date-time' }),
    effectiveSyncInterval: z
      .string()
      .regex(new RegExp(DURATION_PATTERN))
      .optional()
      .describe(
        "The interval the operator syncs at when it differs from spec.syncInterval: the access key's call budget cannot serve every resource on it at its own interval, so intervals are stretched fairly.",
      ),
    usersDigest: z
      .string()
      .regex(/^[0-9a-f]{64}$/)
      .optional()
      .describe('sha256 (hex) of the users.json the operator last wrote to the -users ConfigMap; admission trusts only a ConfigMap that matches it.'),
    configMaps: z.array(z.string().describe('A ConfigMap name.')).optional().describe('Names of the ConfigMaps this resource writes.'),
    configMapVersions: z
      .object({
        users: z.string().max(64).optional().describe('The resourceVersion of the -users ConfigMap.'),
        nss: z.string().max(64).optional().describe('The resourceVersion of the -nss ConfigMap.'),
      })
      .optional()
      .describe(
        'The ConfigMaps as the operator last wrote them: at these versions their annotations describe their data, so a restarted operator need not read it.',
      ),
    stalledOn: z
      .object({
        generation: z.number().int().min(0).describe('The metadata.generation the failure was met at.'),
        secretResourceVersion: z.string().max(64).describe('The resourceVersion of the credentials Secret it was met with.'),
        syncRequest: z.string().max(1024).optional().describe('The hpc.shanhe.com/sync-requested value at the time.'),
      })
      .optional()
      .describe(
        'While Stalled: what the failure was met with. The provider is not called again, even after a restart, until the generation, the Secret or the sync request changes.',
      ),
    consecutiveFailures: z
      .number()
      .int()
      .min(0)
      .optional()
      .describe('Syncs that failed in a row with an error that may pass (an outage); retries back off exponentially on it, across restarts.'),
    nextRetryTime: z
      .string()
      .optional()
      .describe('When the failed sync is retried (RFC 3339); a restarted operator waits for it too.')
      .meta({ format: 'date-time' }),
  })
  .describe('What the operator observed and wrote on the last reconcile.');

/** The spec as written (defaults optional), and as read after defaults are applied. */
export type HpcClusterSpecInput = z.input<typeof hpcClusterSpecSchema>;
export type HpcClusterSpec = z.output<typeof hpcClusterSpecSchema>;
export type HpcClusterStatus = z.infer<typeof hpcClusterStatusSchema>;
export type Condition = z.infer<typeof conditionSchema>;
export type StatusUser = z.infer<typeof statusUserSchema>;

export interface HpcClusterObject {
  apiVersion: typeof API_VERSION;
  kind: typeof KIND;
  metadata: V1ObjectMeta;
  spec?: unknown;
  status?: HpcClusterStatus;
}

export type SpecValidation = { ok: true; spec: HpcClusterSpec } | { ok: false; message: string };

/** Validates a spec read from the apiserver; the message names each field to fix. */
export function validateSpec(spec: unknown): SpecValidation {
  const parsed = hpcClusterSpecSchema.safeParse(spec ?? {});
  if (parsed.success) return { ok: true, spec: parsed.data };
  const problems = parsed.error.issues.map((issue) => {
    const path = issue.path.length > 0 ? `spec.${issue.path.join('.')}` : 'spec';
    return `${path}: ${issue.message}`;
  });
  return { ok: false, message: problems.join('; ') };
}
