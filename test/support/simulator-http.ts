// Signed requests to a simulator, made with the project's signer and nothing else, so the
// simulator's tests do not depend on the provider client.
import type { Clock } from '../../src/runtime/clock.js';
import { SIGNATURE_METHOD, SIGNATURE_VERSION, signQuery } from '../../src/provider/signature.js';
import { DEV_ACCESS_KEY, type AccessKey, type Simulator } from '../../tools/simulator/server.js';
import { API_VERSION, LIST_USERS_PATH } from '../../src/provider/wire.js';
import { formatTimestamp } from '../../src/runtime/clock.js';

export interface SignedRequest {
  /** Call parameters; `undefined` removes a common parameter. */
  params?: Record<string, string | undefined>;
  key?: AccessKey;
  /** Source of the timestamp parameter; default the system clock. */
  clock?: Pick<Clock, 'now'>;
  path?: string;
  /** Applied to the signed query before it is sent, to tamper with it. */
  alter?: (query: string) => string;
}

/** The signed query string the provider's sample would send. */
export function signedQuery({ params = {}, key = DEV_ACCESS_KEY, clock, path = LIST_USERS_PATH }: SignedRequest = {}): string {
  const all: Record<string, string | undefined> = {
    access_key_id: key.id,
    zone: 'jinan1a',
    timestamp: formatTimestamp(new Date(clock?.now() ?? Date.now())),
    version: API_VERSION,
    signature_method: SIGNATURE_METHOD,
    signature_version: SIGNATURE_VERSION,
    ...params,
  };
  const defined = Object.fromEntries(Object.entries(all).filter((entry): entry is [string, string] => entry[1] !== undefined));
  return signQuery('GET', path, defined, key.secret);
}

export interface Answer {
  status: number;
  text: string;
  /** The parsed body; undefined when it is not JSON. */
  json: Record<string, unknown> | undefined;
}

export async function signedGet(simulator: Pick<Simulator, 'url'>, request: SignedRequest = {}, signal?: AbortSignal): Promise<Answer> {
  const query = (request.alter ?? ((q) => q))(signedQuery(request));
  const response = await fetch(`${simulator.url}${request.path ?? LIST_USERS_PATH}?${query}`, { signal });
  const text = await response.text();
  let json: Record<string, unknown> | undefined;
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    json = undefined;
  }
  return { status: response.status, text, json };
}

/** A JSON request to the admin endpoint. */
export async function admin(simulator: Pick<Simulator, 'url'>, method: string, path: string, body?: unknown): Promise<{ status: number; json: unknown }> {
  const response = await fetch(`${simulator.url}/_admin/${path}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, json: text === '' ? undefined : JSON.parse(text) };
}
