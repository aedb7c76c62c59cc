import type { KubernetesObject } from '@kubernetes/client-node';

/** A namespaced object's name: what the work queue holds (as `namespace/name`) instead of objects. */
export interface ObjectKey {
  namespace: string;
  name: string;
}

export const keyOf = (k: ObjectKey): string => `${k.namespace}/${k.name}`;

export function parseKey(key: string): ObjectKey {
  const slash = key.indexOf('/');
  return { namespace: key.slice(0, slash), name: key.slice(slash + 1) };
}

/** The key of an object, or undefined when it lacks a namespace or a name. */
export function objectKey(object: KubernetesObject): ObjectKey | undefined {
  const { namespace, name } = object.metadata ?? {};
  return namespace === undefined || name === undefined ? undefined : { namespace, name };
}
