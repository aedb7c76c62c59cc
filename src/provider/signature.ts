import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Request signing of the provider's HPC API, signature_version 1 with HmacSHA256 — the one
 * place that knows the algorithm; the client signs with it and the simulator verifies with it.
 */

export const SIGNATURE_METHOD = 'HmacSHA256';
export const SIGNATURE_VERSION = '1';
const EMPTY_BODY_MD5 = createHash('md5').update('').digest('hex');

/** RFC 3986 encoding: unreserved characters stay, everything else is UTF-8 `%XY` (upper-case). */
export function percentEncode(value: string): string {
  // encodeURIComponent leaves !'()* alone; RFC 3986 reserves them.
  return encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** Parameters sorted by name in byte order, encoded, joined as `name=value&...`. */
export function canonicalQuery(params: Readonly<Record<string, string>>): string {
  return Object.keys(params)
    .filter((name) => name !== 'signature')
    .sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)))
    .map((name) => `${percentEncode(name)}=${percentEncode(params[name] ?? '')}`)
    .join('&');
}

/**
 * The provider signs the path WITH a trailing slash while the request goes to the path
 * without one; this returns the form that is signed.
 */
export function signedPath(path: string): string {
  return path.endsWith('/') ? path : `${path}/`;
}

export function stringToSign(method: string, path: string, query: string, body = ''): string {
  const bodyMd5 = body === '' ? EMPTY_BODY_MD5 : createHash('md5').update(body).digest('hex');
  return `${method.toUpperCase()}\n${signedPath(path)}\n${query}\n${bodyMd5}`;
}

/** Base64 of HMAC-SHA256 over the string to sign. */
export function computeSignature(secretAccessKey: string, toSign: string): string {
  return createHmac('sha256', secretAccessKey).update(toSign).digest('base64');
}

/** The provider's sample URL-encodes the Base64 signature twice (`+` → `%252B`). */
export function encodeSignatureParam(signature: string): string {
  return percentEncode(percentEncode(signature));
}

/**
 * The full query string to send: the canonical query, then `&signature=` last.
 * `params` must already hold every common parameter (access_key_id, timestamp, ...).
 */
export function signQuery(
  method: string,
  path: string,
  params: Readonly<Record<string, string>>,
  secretAccessKey: string,
): string {
  const query = canonicalQuery(params);
  const signature = computeSignature(secretAccessKey, stringToSign(method, path, query));
  return `${query}&signature=${encodeSignatureParam(signature)}`;
}

/** Why a signed query was refused; the simulator maps each to a ret_code. */
export type SignatureCheck =
  | { ok: true; params: Record<string, string> }
  | { ok: false; reason: 'malformed' | 'missing-signature' | 'unknown-key' | 'bad-signature'; detail: string };

/**
 * Verifies a raw query string (as received, not decoded) the way the provider's sample
 * produces it: every parameter but `signature` canonicalised and signed, and the `signature`
 * value equal to the double-encoded Base64 digest, byte for byte.
 */
export function verifySignedQuery(
  method: string,
  path: string,
  rawQuery: string,
  secretFor: (accessKeyId: string) => string | undefined,
): SignatureCheck {
  const params: Record<string, string> = {};
  let sentSignature: string | undefined;
  for (const pair of rawQuery.split('&')) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    const rawName = eq === -1 ? pair : pair.slice(0, eq);
    const rawValue = eq === -1 ? '' : pair.slice(eq + 1);
    if (rawName === 'signature') {
      sentSignature = rawValue;
      continue;
    }
    try {
      params[decodeURIComponent(rawName)] = decodeURIComponent(rawValue);
    } catch {
      return { ok: false, reason: 'malformed', detail: `parameter ${JSON.stringify(rawName)} is not valid percent-encoding` };
    }
  }
  if (sentSignature === undefined || sentSignature === '') {
    return { ok: false, reason: 'missing-signature', detail: 'signature is missing' };
  }
  const accessKeyId = params.access_key_id;
  if (accessKeyId === undefined || accessKeyId === '') {
    return { ok: false, reason: 'malformed', detail: 'access_key_id is missing' };
  }
  const secret = secretFor(accessKeyId);
  if (secret === undefined) return { ok: false, reason: 'unknown-key', detail: 'unknown access key' };
  const expected = Buffer.from(
    encodeSignatureParam(computeSignature(secret, stringToSign(method, path, canonicalQuery(params)))),
  );
  const sent = Buffer.from(sentSignature);
  if (sent.length !== expected.length || !timingSafeEqual(sent, expected)) {
    return { ok: false, reason: 'bad-signature', detail: 'signature does not match' };
  }
  return { ok: true, params };
}
