import { createHash } from 'node:crypto';

/**
 * Which `users.json` may be believed. Tenants who can write ConfigMaps in a namespace can edit
 * `<name>-users` or create a look-alike, but they cannot write an HpcCluster's status. So the
 * operator records the sha256 of the exact users.json it wrote in `status.usersDigest`, and a
 * ConfigMap's users.json counts only when the HpcCluster controls that ConfigMap and the text
 * hashes to that digest. Admission and the reconcile both decide through this one function.
 */

/** sha256 hex of a users.json text, as `status.usersDigest` records it. */
export function usersDigestOf(usersJson: string): string {
  return createHash('sha256').update(usersJson).digest('hex');
}

export interface UsersOwner {
  uid?: string;
  usersDigest?: string;
}

export interface UsersConfigMapView {
  ownerReferences?: readonly { uid: string; controller?: boolean }[];
  usersJson?: string;
}

/** The users.json text when the ConfigMap is the owner's own and unaltered, else undefined. */
export function trustedUsersJson(owner: UsersOwner, cm: UsersConfigMapView | undefined): string | undefined {
  const text = cm?.usersJson;
  if (text === undefined || owner.uid === undefined || owner.usersDigest === undefined) return undefined;
  const controlled = cm?.ownerReferences?.some((ref) => ref.controller === true && ref.uid === owner.uid) === true;
  return controlled && usersDigestOf(text) === owner.usersDigest ? text : undefined;
}
