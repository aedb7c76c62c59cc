import type { V1Pod } from '@kubernetes/client-node';
import { CLUSTER_LABEL } from '../render/configmaps.js';
import type { Resolution } from './identity.js';
import {
  applyIdentity,
  IDENTITY_ANNOTATION,
  identityConflicts,
  parseIdentityStamp,
  podIdentityOptions,
  USER_ANNOTATION,
  type JsonPatchOperation,
} from './pod-identity.js';

/**
 * One AdmissionReview (admission.k8s.io/v1) in, its answer out: pure, with the cache lookup
 * passed in. Pods are admitted on CREATE; `kubectl debug` adds ephemeral containers through
 * an UPDATE of the pods/ephemeralcontainers subresource, checked against the pod's stamp.
 */

export interface AdmissionRequest {
  uid: string;
  kind?: { group?: string; version?: string; kind?: string };
  resource?: { group?: string; version?: string; resource?: string };
  subResource?: string;
  namespace?: string;
  operation?: string;
  object?: unknown;
  oldObject?: unknown;
}

export interface AdmissionResponse {
  uid: string;
  allowed: boolean;
  patchType?: 'JSONPatch';
  /** base64 of the JSON patch. */
  patch?: string;
  status?: { code: number; reason?: string; message: string };
}

export interface AdmissionReview {
  apiVersion: 'admission.k8s.io/v1';
  kind: 'AdmissionReview';
  request?: AdmissionRequest;
  response?: AdmissionResponse;
}

/** Looks a claim up in the caches: the HpcCluster `cluster` in `namespace`, its user `username`. */
export type ClaimResolver = (namespace: string, cluster: string, username: string) => Resolution;

export const NOT_READY_MESSAGE = 'hpc-user-operator is starting (its caches are not synced yet) and cannot vouch for any identity: retry';

const refuse = (uid: string, message: string, code = 403): AdmissionResponse => ({
  uid,
  allowed: false,
  status: { code, reason: code === 403 ? 'Forbidden' : 'ServiceUnavailable', message },
});

function allow(uid: string, patch: JsonPatchOperation[] = []): AdmissionResponse {
  if (patch.length === 0) return { uid, allowed: true };
  return { uid, allowed: true, patchType: 'JSONPatch', patch: Buffer.from(JSON.stringify(patch)).toString('base64') };
}

const claimOf = (pod: V1Pod | undefined) => ({
  cluster: pod?.metadata?.labels?.[CLUSTER_LABEL],
  username: pod?.metadata?.annotations?.[USER_ANNOTATION],
});

/** The answer to one request. `ready` false: the caches cannot be trusted yet, so nothing is vouched for. */
export function admit(request: AdmissionRequest, resolve: ClaimResolver, ready: boolean): AdmissionResponse {
  const { uid } = request;
  if (request.kind?.kind !== 'Pod' || (request.kind.group ?? '') !== '') return allow(uid);
  const pod = request.object as V1Pod | undefined;
  const { cluster, username } = claimOf(pod);
  // No claim: the webhook has nothing to give this pod (and no stamp to check).
  if (cluster === undefined || username === undefined) return allow(uid);
  if (!ready) return refuse(uid, NOT_READY_MESSAGE, 503);

  if (request.operation === 'UPDATE' && request.subResource === 'ephemeralcontainers') return admitEphemeral(request, pod);
  if (request.operation !== 'CREATE') return allow(uid);

  const namespace = request.namespace ?? pod?.metadata?.namespace ?? '';
  const resolution = resolve(namespace, cluster, username);
  if (!resolution.ok) return refuse(uid, resolution.message, resolution.retry === true ? 503 : 403);
  const decision = applyIdentity(pod ?? {}, resolution.identity, podIdentityOptions(pod ?? {}));
  return decision.allowed ? allow(uid, decision.patch) : refuse(uid, decision.message);
}

/** A debug container joins a pod already admitted: it keeps the claim and takes no other uid or gid. */
function admitEphemeral(request: AdmissionRequest, pod: V1Pod | undefined): AdmissionResponse {
  const { uid } = request;
  const old = request.oldObject as V1Pod | undefined;
  const before = claimOf(old);
  const after = claimOf(pod);
  if (before.cluster !== after.cluster || before.username !== after.username) {
    return refuse(uid, `the claim of a pod cannot change once admitted (was ${before.cluster ?? '-'}/${before.username ?? '-'}): create a new pod instead`);
  }
  const stamp = parseIdentityStamp(pod?.metadata?.annotations?.[IDENTITY_ANNOTATION]);
  if (stamp === undefined || stamp.cluster !== after.cluster || stamp.username !== after.username) {
    return refuse(uid, `this pod claims user ${after.username ?? ''} but carries no matching ${IDENTITY_ANNOTATION} stamp (created before the webhook ran): recreate the pod`);
  }
  const conflicts = identityConflicts(pod ?? {}, stamp, false);
  return conflicts.length === 0 ? allow(uid) : refuse(uid, conflicts.join('; '));
}

/** The AdmissionReview to send back for a decoded request body. */
export function review(body: unknown, resolve: ClaimResolver, ready: boolean): AdmissionReview {
  const request = (body as AdmissionReview | undefined)?.request;
  if (request === undefined || typeof request.uid !== 'string') throw new Error('not an admission.k8s.io/v1 AdmissionReview request');
  return { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: admit(request, resolve, ready) };
}
