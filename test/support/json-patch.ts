// The apiserver's side of a mutating webhook's answer, for unit tests of admission.
import type { AdmissionResponse } from '../../src/webhook/admission.js';
import type { JsonPatchOperation } from '../../src/webhook/pod-identity.js';

/** The JSON patch an admission response carries (none: empty). */
export const patchOf = (response: AdmissionResponse): JsonPatchOperation[] =>
  response.patch === undefined ? [] : (JSON.parse(Buffer.from(response.patch, 'base64').toString('utf8')) as JsonPatchOperation[]);

/** RFC 6902 add/replace, as the apiserver applies them (objects keyed, arrays by index or "-"). */
export function applyPatch<T>(document: T, patch: JsonPatchOperation[]): T {
  const copy = structuredClone(document) as unknown;
  for (const { op, path, value } of patch) {
    const keys = path.split('/').slice(1).map((k) => k.replace(/~1/g, '/').replace(/~0/g, '~'));
    const last = keys.pop() ?? '';
    let parent = copy as Record<string, unknown> | unknown[];
    for (const key of keys) parent = (parent as Record<string, unknown>)[key] as Record<string, unknown>;
    if (parent === undefined) throw new Error(`${op} ${path}: parent missing`);
    if (Array.isArray(parent)) {
      if (last === '-') parent.push(value);
      else parent.splice(Number(last), op === 'replace' ? 1 : 0, value);
    } else {
      if (op === 'replace' && !(last in parent)) throw new Error(`replace ${path}: nothing there`);
      if (op === 'add' && last in parent) throw new Error(`add ${path}: would overwrite`);
      parent[last] = value;
    }
  }
  return copy as T;
}
