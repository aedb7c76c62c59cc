import { createHash } from 'node:crypto';

/**
 * An access key as the operator tells keys apart: endpoint + access key id + the secret's
 * digest. The access key id alone is not secret (it travels in every URL), so anything keyed
 * on it alone — a rate-limit budget, say — could be spent by whoever knows it.
 */
export interface AccessKeyIdentity {
  /** sha256 hex over the three parts: a map key, never shown. */
  id: string;
  /** The first 12 hex digits, for logs and labels. */
  short: string;
}

const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');

export function accessKeyIdentity(endpoint: string, accessKeyId: string, secretAccessKey: string): AccessKeyIdentity {
  const id = sha256([endpoint, accessKeyId, sha256(secretAccessKey)].join('\n'));
  return { id, short: id.slice(0, 12) };
}
