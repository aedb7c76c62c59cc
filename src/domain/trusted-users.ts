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
  /** sha256 hex of the users.json it holds, when known (its text need not be at hand). */
  usersDigest?: string;
}

/** Whether an object's controller reference names the object of `uid`: a ConfigMap the HpcCluster writes. */
export function controlledBy(ownerReferences: UsersConfigMapView['ownerReferences'], uid: string | undefined): boolean {
  return uid !== undefined && ownerReferences?.some((ref) => ref.controller === true && ref.uid === uid) === true;
}

/** Whether the ConfigMap is the owner's own and holds the users.json status vouches for. */
export function usersTrusted(owner: UsersOwner, cm: UsersConfigMapView | undefined): boolean {
  if (cm?.usersDigest === undefined || owner.usersDigest === undefined) return false;
  return controlledBy(cm.ownerReferences, owner.uid) && cm.usersDigest === owner.usersDigest;
}

/** The users.json text when the ConfigMap is the owner's own and unaltered, else undefined. */
export function trustedUsersJson(owner: UsersOwner, cm: (Pick<UsersConfigMapView, 'ownerReferences'> & { usersJson?: string }) | undefined): string | undefined {
  const text = cm?.usersJson;
  if (text === undefined || owner.usersDigest === undefined) return undefined;
  return usersTrusted(owner, { ...(cm?.ownerReferences === undefined ? {} : { ownerReferences: cm.ownerReferences }), usersDigest: usersDigestOf(text) }) ? text : undefined;
}
