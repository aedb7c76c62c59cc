// The apiserver's REST API, as small as the operator's use of it: JSON requests, lists read
// page by page, and watches read event by event. Objects are plain JSON, typed by the caller
// with client-node's model interfaces (types only: none of its code is loaded).
import { request as httpsRequest } from 'node:https';
import type { IncomingMessage } from 'node:http';
import { text } from 'node:stream/consumers';
import { messageOf } from '../runtime/error-message.js';
import type { KubeAccess } from './access.js';

/** A request the apiserver answered with an error status. */
export class KubeApiError extends Error {
  override readonly name = 'KubeApiError';

  constructor(
    /** The HTTP status code. */
    readonly code: number,
    /** The Status object's reason, e.g. `NotFound`, `Conflict`, `AlreadyExists`. */
    readonly reason: string | undefined,
    /** What the apiserver said, as it said it (its Status message). */
    readonly statusMessage: string,
    /** Which request: method and path. */
    request: string,
  ) {
    super(`${request}: ${statusMessage}`);
  }
}

export const statusCode = (error: unknown): number | undefined => (error instanceof KubeApiError ? error.code : undefined);
export const isNotFound = (error: unknown): boolean => statusCode(error) === 404;

export type Query = Record<string, string | number | boolean | undefined>;

export interface RequestOptions {
  query?: Query;
  /** Sent as JSON. */
  body?: unknown;
  /** Default `application/json`; patches say which kind they are. */
  contentType?: string;
  /** Default `application/json`; e.g. PartialObjectMetadata for metadata only. */
  accept?: string;
  signal?: AbortSignal;
}

/** The Accept headers that ask the apiserver for metadata only (PartialObjectMetadata). */
export const METADATA_ONLY = 'application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1';
export const METADATA_ONLY_LIST = 'application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1';

export const MERGE_PATCH = 'application/merge-patch+json';
export const JSON_PATCH = 'application/json-patch+json';

/** Names the operator in the apiserver's audit log and as the manager of the fields it writes (managedFields). */
const USER_AGENT = 'hpc-user-operator';

/** A watch event as the apiserver sends it (one JSON document per line). */
export interface WatchEvent {
  type: string;
  object: unknown;
}

interface Status {
  kind?: string;
  code?: number;
  reason?: string;
  message?: string;
}

const NEWLINE = 0x0a;

function pathWithQuery(path: string, query: Query | undefined): string {
  if (query === undefined) return path;
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(query)) if (value !== undefined) params.set(name, String(value));
  const text = params.toString();
  return text === '' ? path : `${path}?${text}`;
}

/**
 * The body as text. Read by an iterator that lets go of the response when it is done: the
 * keep-alive agent's sockets keep their last request and response reachable, and a body held
 * by the response's own listeners (the resolve of a promise made here) stayed with it, a
 * list page of megabytes per socket. On Node 24 a restart of the scale bench's install kept
 * 46 such pages of 1.3 MB, and as many smaller ones.
 */
async function readBody(response: IncomingMessage): Promise<string> {
  try {
    return await text(response);
  } catch (error) {
    throw new Error(`the apiserver's answer broke off (${messageOf(error)})`, { cause: error });
  }
}

function apiError(code: number, body: string, method: string, path: string): KubeApiError {
  let status: Status = {};
  try {
    status = JSON.parse(body) as Status;
  } catch {
    // Not a Status: a proxy's page, say.
  }
  const message = status.message ?? (body.length > 0 ? body.slice(0, 200) : `HTTP ${code}`);
  return new KubeApiError(code, status.reason, message, `${method} ${path.split('?')[0]}`);
}

export class KubeClient {
  constructor(private readonly access: KubeAccess) {}

  /** One request; resolves with the parsed JSON answer, rejects with KubeApiError on an error status. */
  async request<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
    const target = pathWithQuery(path, options.query);
    const response = await this.open(method, target, options);
    const body = await readBody(response);
    const code = response.statusCode ?? 0;
    if (code < 200 || code > 299) throw apiError(code, body, method, target);
    return (body.length === 0 ? undefined : JSON.parse(body)) as T;
  }

  /** A write whose answer is not needed: the body is read (to free the connection) but not parsed. */
  async send(method: string, path: string, options: RequestOptions = {}): Promise<void> {
    const target = pathWithQuery(path, options.query);
    const response = await this.open(method, target, options);
    const code = response.statusCode ?? 0;
    if (code >= 200 && code <= 299) {
      response.resume();
      await new Promise<void>((resolve, reject) => response.on('end', resolve).on('error', reject));
      return;
    }
    throw apiError(code, await readBody(response), method, target);
  }

  get<T>(path: string, options?: Omit<RequestOptions, 'body'>): Promise<T> {
    return this.request<T>('GET', path, options);
  }

  /**
   * Lists a collection `pageSize` objects at a time, handing each object to `onItem` as its
   * page arrives, so no more than a page is ever held whole. Resolves with the list's
   * resourceVersion, to watch from.
   */
  async list<T>(path: string, query: Query, pageSize: number, onItem: (item: T) => void, options: Pick<RequestOptions, 'accept' | 'signal'> = {}): Promise<string> {
    let continueToken: string | undefined;
    for (;;) {
      const page = await this.get<{ items: T[] | null; metadata?: { resourceVersion?: string; continue?: string } }>(path, {
        ...options,
        query: { ...query, limit: pageSize, continue: continueToken },
      });
      // An empty PartialObjectMetadataList comes with `"items": null`.
      for (const item of page.items ?? []) onItem(item);
      continueToken = page.metadata?.continue || undefined;
      if (continueToken === undefined) {
        const resourceVersion = page.metadata?.resourceVersion;
        if (!resourceVersion) throw new Error(`the list of ${path} has no resourceVersion to watch from`);
        return resourceVersion;
      }
    }
  }

  /**
   * Watches `path`: `onOpen` once the apiserver accepts the watch, `onEvent` for each event.
   * Resolves when the server ends the watch or `signal` aborts it; rejects with KubeApiError
   * when the watch is refused (410 Gone among others), or when the connection fails.
   */
  async watch(path: string, query: Query, handlers: { onOpen: () => void; onEvent: (event: WatchEvent) => void }, options: Pick<RequestOptions, 'accept' | 'signal'> = {}): Promise<void> {
    const target = pathWithQuery(path, { ...query, watch: true });
    let response: IncomingMessage;
    try {
      response = await this.open('GET', target, options);
    } catch (error) {
      if (options.signal?.aborted) return;
      throw error;
    }
    const code = response.statusCode ?? 0;
    if (code !== 200) throw apiError(code, await readBody(response), 'GET', target);
    handlers.onOpen();
    await new Promise<void>((resolve, reject) => {
      // One event may span many chunks (a ConfigMap of 1,000 users is some 250 KB): keep the
      // chunks of the unfinished line and look for the newline in each new chunk only.
      let partial: Buffer[] = [];
      response.on('data', (chunk: Buffer) => {
        let start = 0;
        let newline = chunk.indexOf(NEWLINE);
        while (newline !== -1) {
          partial.push(chunk.subarray(start, newline));
          const line = partial.length === 1 ? (partial[0] as Buffer) : Buffer.concat(partial);
          partial = [];
          start = newline + 1;
          newline = chunk.indexOf(NEWLINE, start);
          if (line.length === 0) continue;
          try {
            handlers.onEvent(JSON.parse(line.toString('utf8')) as WatchEvent);
          } catch (error) {
            response.destroy();
            reject(error instanceof Error ? error : new Error(String(error)));
            return;
          }
        }
        if (start < chunk.length) partial.push(chunk.subarray(start));
      });
      response.on('end', () => resolve());
      response.on('close', () => resolve());
      response.on('error', (error) => (options.signal?.aborted ? resolve() : reject(error)));
    });
  }

  close(): void {
    this.access.close();
  }

  private async open(method: string, target: string, options: RequestOptions): Promise<IncomingMessage> {
    const { server, agent, headers } = await this.access.connection();
    const body = options.body === undefined ? undefined : Buffer.from(JSON.stringify(options.body));
    return new Promise<IncomingMessage>((resolve, reject) => {
      const request = httpsRequest(`${server}${target}`, {
        method,
        agent,
        headers: {
          'User-Agent': USER_AGENT,
          ...headers,
          Accept: options.accept ?? 'application/json',
          ...(body === undefined ? {} : { 'Content-Type': options.contentType ?? 'application/json', 'Content-Length': body.length }),
        },
        ...(options.signal === undefined ? {} : { signal: options.signal }),
      });
      request.on('response', resolve);
      request.on('error', reject);
      request.end(body);
    });
  }
}
