import { setMaxListeners } from 'node:events';
import type { Agent, ClientRequest, IncomingMessage, RequestOptions } from 'node:http';
import https from 'node:https';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream';
import { urlToHttpOptions } from 'node:url';
import zlib from 'node:zlib';
import { formatTimestamp, systemClock, type Clock } from '../runtime/clock.js';
import { http } from '../runtime/node-http.js';
import { kindOfRetCode, ProviderError, type ProviderErrorKind } from './errors.js';
import type { EndpointAllowList } from './endpoint-policy.js';
import { accessKeyIdentity } from './key-identity.js';
import { duplicateRowProblem, laterPageOffsets, pageProblem } from './pagination.js';
import { sharedRateLimiters, type CallLimiter } from './rate-limiter.js';
import { DEFAULT_RETRY_POLICY, withRetry, type RetryPolicy } from './retry.js';
import { scrubProviderText } from './scrub.js';
import { SIGNATURE_METHOD, SIGNATURE_VERSION, signQuery } from './signature.js';
import {
  API_VERSION,
  LIST_USERS_PATH,
  MAX_PAGE_SIZE,
  NotProviderAnswerError,
  parseListUsersResponse,
  type ListUsersPage,
  type WireUser,
} from './wire.js';

/**
 * The provider's ListUsers API over HTTP: signing, timeouts, retries, rate limiting and
 * the pagination checks. Messages name the endpoint, zone and cluster but never the
 * secret key, the signature or the signed URL.
 */

export interface Credentials {
  accessKeyId: string;
  secretAccessKey: string;
}

/** What to list; `zone` is required by the API, the rest narrows the list. */
export interface ListUsersQuery {
  zone: string;
  clusterId?: string;
  userId?: string;
  searchWord?: string;
}

/** Every row of a listing, in offset order, after the pagination checks passed. */
export interface UserRows {
  rows: WireUser[];
  totalCount: number;
  pages: number;
  /** HTTP requests sent, retries included. */
  requests: number;
}

/**
 * What one listing may cost before it is given up: a provider that reports a billion rows,
 * or never finishes, must not hold a worker (and a growing row buffer) for ever.
 */
export interface SyncLimits {
  /** The whole listing: every page, retry and rate-limit wait. */
  deadlineMs: number;
  /** Rows of one listing (its total_count); pages follow, one per 100 rows. */
  maxRows: number;
  /** Response bytes of one listing, every page together. */
  maxBytes: number;
}

export const DEFAULT_SYNC_LIMITS: SyncLimits = { deadlineMs: 5 * 60_000, maxRows: 50_000, maxBytes: 64 * 1024 * 1024 };

/** The response bytes a listing may still read; shared by its pages. */
interface ByteBudget {
  remaining: number;
}

/**
 * How one HTTP attempt ended, for metrics: the provider's ret_code (0 for a page), else the
 * HTTP status (a malformed 200 included), a timeout or a network failure.
 */
export type RequestOutcome = { retCode: number } | { httpStatus: number } | { failure: 'timeout' | 'network' };

export interface HpcApiClientOptions {
  /** Scheme, host, optional port and path prefix, e.g. `https://hpc.api.shanhe.com`. */
  endpoint: string;
  credentials: Credentials;
  /** Plain `http://` is refused unless this is true. */
  allowInsecureHttp?: boolean;
  /** Where the key may be sent (checked before any request); default anywhere (the key's owner runs the CLI). */
  allowedEndpoints?: EndpointAllowList;
  limits?: Partial<SyncLimits>;
  /** PEM bundle that replaces the default trust store for this endpoint. Ignored if `agent` is given. */
  caCert?: string;
  /** Per HTTP attempt, body included. Default 10 s. */
  timeoutMs?: number;
  /** Pages fetched at once once the first page has told the total. Default 4. */
  pageConcurrency?: number;
  retry?: RetryPolicy;
  /** Default: the process-wide bucket of this key. The operator's never waits (see KeyBudgets). */
  rateLimiter?: CallLimiter;
  /** A keep-alive agent to share; default: one owned by this client (see `close`). */
  agent?: Agent;
  clock?: Clock;
  random?: () => number;
  /** Called once per HTTP attempt, retries included. */
  onRequest?: (outcome: RequestOutcome) => void;
}

export const DEFAULT_TIMEOUT_MS = 10_000;
export const DEFAULT_PAGE_CONCURRENCY = 4;
/** A page of 100 rows is ~40 KB; anything near this is not a ListUsers answer. */
const MAX_BODY_BYTES = 8 * 1024 * 1024;
const MAX_PROVIDER_MESSAGE = 200;
/**
 * What status says of any attempt that got no provider answer: a refused connection, a TLS
 * failure, an HTTP error page, a redirect, a body that is not JSON all read the same, so a
 * tenant's endpoint cannot be used to tell which hosts and ports answer what.
 */
const NO_VALID_ANSWER = 'no valid ListUsers answer from the endpoint';
// Every such failure is also retried alike (kindOfHttpStatus), so neither retries nor Stalled tell them apart.

/**
 * Sent with every attempt besides the signed URL; the provider may compress its JSON (see
 * decoded). A user-agent as node-fetch sent one: gateways may refuse a request without.
 */
const REQUEST_HEADERS = { accept: 'application/json', 'accept-encoding': 'gzip, deflate, br', 'user-agent': 'hpc-user-operator' } as const;

/** A keep-alive agent for an endpoint; `caCert` applies to https only. */
function createAgent(endpoint: string, caCert?: string): Agent {
  const options = { keepAlive: true, maxSockets: 16 };
  return new URL(endpoint).protocol === 'http:'
    ? new http.Agent(options)
    : new https.Agent(caCert === undefined ? options : { ...options, ca: caCert });
}

/** The endpoint, checked: http(s), no credentials, query or fragment; plain http only when allowed. */
export function parseEndpoint(endpoint: string, allowInsecureHttp = false): URL {
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    throw configurationError(`endpoint ${JSON.stringify(endpoint)} is not a URL`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw configurationError(`endpoint scheme ${url.protocol} is not http(s)`);
  }
  if (url.protocol === 'http:' && !allowInsecureHttp) {
    throw configurationError(`endpoint ${url.origin} is plain http; allow insecure http explicitly to use it`);
  }
  if (url.username !== '' || url.password !== '' || url.search !== '' || url.hash !== '') {
    throw configurationError(`endpoint ${url.origin} must not carry credentials, a query or a fragment`);
  }
  return url;
}

function configurationError(message: string): ProviderError {
  return new ProviderError('permanent', message, { code: 'configuration' });
}

export class HpcApiClient {
  private readonly listUsersPath: string;
  private readonly origin: string;
  /** http.get or https.get, and where it connects: the endpoint's URL is parsed once, not per page. */
  private readonly get: typeof http.get;
  private readonly target: Pick<RequestOptions, 'protocol' | 'hostname' | 'port'>;
  private readonly agent: Agent;
  private readonly ownsAgent: boolean;
  private readonly credentials: Credentials;
  private readonly timeoutMs: number;
  private readonly pageConcurrency: number;
  private readonly limits: SyncLimits;
  private readonly retry: RetryPolicy;
  private readonly rateLimiter: CallLimiter;
  private readonly clock: Clock;
  private readonly random: () => number;
  private readonly onRequest: ((outcome: RequestOutcome) => void) | undefined;

  constructor(options: HpcApiClientOptions) {
    const url = parseEndpoint(options.endpoint, options.allowInsecureHttp);
    options.allowedEndpoints?.check(url);
    this.origin = url.origin;
    this.listUsersPath = `${url.pathname.replace(/\/+$/, '')}${LIST_USERS_PATH}`;
    this.get = url.protocol === 'http:' ? http.get : https.get;
    const { protocol, hostname, port } = urlToHttpOptions(url);
    this.target = { protocol, hostname, port };
    this.ownsAgent = options.agent === undefined;
    this.agent = options.agent ?? createAgent(url.href, options.caCert);
    this.credentials = options.credentials;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.pageConcurrency = Math.max(1, options.pageConcurrency ?? DEFAULT_PAGE_CONCURRENCY);
    this.limits = { ...DEFAULT_SYNC_LIMITS, ...options.limits };
    this.retry = options.retry ?? DEFAULT_RETRY_POLICY;
    const { accessKeyId, secretAccessKey } = options.credentials;
    this.rateLimiter = options.rateLimiter ?? sharedRateLimiters.forKey(accessKeyIdentity(url.href, accessKeyId, secretAccessKey));
    this.clock = options.clock ?? systemClock;
    this.random = options.random ?? Math.random;
    this.onRequest = options.onRequest;
  }

  /** One page, retried per the retry policy. */
  async listUsersPage(
    query: ListUsersQuery,
    { offset, limit = MAX_PAGE_SIZE, budget = { remaining: this.limits.maxBytes } }: { offset: number; limit?: number; budget?: ByteBudget },
    signal?: AbortSignal,
  ): Promise<ListUsersPage & { requests: number }> {
    let requests = 0;
    const page = await withRetry(
      () => {
        requests++;
        return this.requestPage(query, offset, limit, budget, signal);
      },
      this.retry,
      { clock: this.clock, random: this.random, ...(signal === undefined ? {} : { signal }) },
    );
    return { ...page, requests };
  }

  /**
   * Every row of the listing: `limit=100` pages by increasing offset; after the first page
   * the rest are fetched `pageConcurrency` at a time. Throws a ProviderError (kind
   * `retryable`, code `inconsistent-pages`) when the pages do not add up, and (code
   * `sync-limit`) when the listing passes its deadline or a cap; never returns a partial
   * list. An aborted `signal` stops it at once: no request starts after it.
   */
  async listAllUsers(query: ListUsersQuery, signal?: AbortSignal): Promise<UserRows> {
    const { deadlineMs } = this.limits;
    const deadline = new AbortController();
    const cancelDeadline = this.clock.schedule(
      () => deadline.abort(this.limitError(query, `the listing did not finish within ${deadlineMs} ms`, 'retryable')),
      deadlineMs,
    );
    try {
      return await this.listWithin(query, signal === undefined ? deadline.signal : AbortSignal.any([signal, deadline.signal]));
    } finally {
      cancelDeadline();
    }
  }

  private async listWithin(query: ListUsersQuery, signal: AbortSignal): Promise<UserRows> {
    const budget: ByteBudget = { remaining: this.limits.maxBytes };
    const first = await this.listUsersPage(query, { offset: 0, budget }, signal);
    const total = first.totalCount;
    if (total > this.limits.maxRows) {
      throw this.limitError(query, `the provider reports ${total} users, more than this operator's limit of ${this.limits.maxRows} per listing`, 'permanent');
    }
    this.checkPage(query, 0, first, total);
    const pages: WireUser[][] = [first.rows];
    let requests = first.requests;

    // The first failure stops the other workers; it is the error the caller sees.
    const stop = new AbortController();
    const workerSignal = AbortSignal.any([signal, stop.signal]);
    // Each worker may wait on it (rate limiter, back-off) at the same time: not a leak.
    setMaxListeners(this.pageConcurrency + 10, workerSignal);
    const offsets = laterPageOffsets(total);
    const worker = async (): Promise<void> => {
      for (let next = offsets.next(); next.done !== true; next = offsets.next()) {
        const offset = next.value;
        const page = await this.listUsersPage(query, { offset, budget }, workerSignal);
        requests += page.requests;
        this.checkPage(query, offset, page, total);
        pages[offset / MAX_PAGE_SIZE] = page.rows;
      }
    };
    try {
      await Promise.all(Array.from({ length: this.pageConcurrency }, worker));
    } catch (err) {
      stop.abort();
      throw err;
    }

    const rows = pages.flat();
    const duplicate = duplicateRowProblem(rows);
    if (duplicate !== undefined) throw this.inconsistent(query, duplicate);
    if (rows.length !== total) {
      throw this.inconsistent(query, `${rows.length} rows were read but total_count is ${total}`);
    }
    return { rows, totalCount: total, pages: pages.length, requests };
  }

  /** Releases the keep-alive sockets of an agent this client created. */
  close(): void {
    if (this.ownsAgent) this.agent.destroy();
  }

  private checkPage(query: ListUsersQuery, offset: number, page: ListUsersPage, total: number): void {
    const problem = pageProblem(offset, page, total);
    if (problem !== undefined) throw this.inconsistent(query, problem);
  }

  /** Past a deadline or cap: what was read is dropped, as for any failed listing. */
  private limitError(query: ListUsersQuery, problem: string, kind: ProviderErrorKind): ProviderError {
    return new ProviderError(kind, `${this.context(query)}: ${problem}; narrow spec.filter or ask the platform team to raise the operator's limits`, {
      code: 'sync-limit',
    });
  }

  private inconsistent(query: ListUsersQuery, problem: string): ProviderError {
    // The list probably changed while it was read: a later sync is likely to succeed.
    return new ProviderError('retryable', `${this.context(query)}: the pages do not add up: ${problem}`, {
      code: 'inconsistent-pages',
    });
  }

  private context(query: ListUsersQuery, offset?: number): string {
    const parts = [`ListUsers ${this.origin}`, `zone=${query.zone}`];
    if (query.clusterId !== undefined) parts.push(`cluster=${query.clusterId}`);
    if (offset !== undefined) parts.push(`offset=${offset}`);
    return parts.join(' ');
  }

  /** One HTTP attempt, its outcome reported to `onRequest` (a caller's abort is no outcome). */
  private async requestPage(
    query: ListUsersQuery,
    offset: number,
    limit: number,
    budget: ByteBudget,
    signal?: AbortSignal,
  ): Promise<ListUsersPage> {
    try {
      const page = await this.signedRequest(query, offset, limit, budget, signal);
      this.onRequest?.({ retCode: 0 });
      return page;
    } catch (err) {
      // An abort (the caller's, or the listing's deadline) ended no attempt of its own.
      if (err instanceof ProviderError && signal?.aborted !== true) this.onRequest?.(outcomeOf(err));
      throw err;
    }
  }

  /** One signed HTTP attempt, with a fresh timestamp and its own timeout. */
  private async signedRequest(
    query: ListUsersQuery,
    offset: number,
    limit: number,
    budget: ByteBudget,
    signal?: AbortSignal,
  ): Promise<ListUsersPage> {
    await this.rateLimiter.acquire(signal);
    const params: Record<string, string> = {
      access_key_id: this.credentials.accessKeyId,
      signature_method: SIGNATURE_METHOD,
      signature_version: SIGNATURE_VERSION,
      version: API_VERSION,
      zone: query.zone,
      timestamp: formatTimestamp(new Date(this.clock.now())),
      limit: String(limit),
      offset: String(offset),
    };
    if (query.clusterId !== undefined) params.cluster_id = query.clusterId;
    if (query.userId !== undefined) params.user_id = query.userId;
    if (query.searchWord !== undefined) params.search_word = query.searchWord;
    const signedQuery = signQuery('GET', this.listUsersPath, params, this.credentials.secretAccessKey);

    const context = this.context(query, offset);
    const timeout = AbortSignal.timeout(this.timeoutMs);
    const attemptSignal = signal === undefined ? timeout : AbortSignal.any([signal, timeout]);
    let status: number | undefined;
    let text: string;
    try {
      // Node's http follows no redirect: one would carry the signed request to a host nobody allowed.
      // An abort of the signal, before the head or while the body is read, destroys the request and its socket.
      const request = this.get({ ...this.target, path: `${this.listUsersPath}?${signedQuery}`, agent: this.agent, headers: REQUEST_HEADERS, signal: attemptSignal });
      const response = await responseOf(request);
      status = response.statusCode ?? 0;
      const ok = status >= 200 && status <= 299;
      // Every body is read under the caps and the timeout, so that its socket is either reused or destroyed.
      text = await readCapped(ok ? decoded(response) : response, budget);
    } catch (err) {
      if (signal?.aborted === true) throw signal.reason;
      if (err instanceof ProviderError) {
        throw new ProviderError(err.kind, `${context}: ${err.message}`, { ...err.details, httpStatus: status });
      }
      if (timeout.aborted) {
        throw new ProviderError('retryable', `${context}: ${NO_VALID_ANSWER}`, { code: 'timeout', cause: `no answer within ${this.timeoutMs} ms` });
      }
      throw new ProviderError('retryable', `${context}: ${NO_VALID_ANSWER}`, { code: 'network', cause: networkReason(err) });
    }

    // Only a 2xx answer is parsed: an error page's body, whatever it says, is not the provider's word.
    if (status < 200 || status > 299) {
      const redirect = status >= 300 && status <= 399;
      throw new ProviderError(kindOfHttpStatus(status), `${context}: ${NO_VALID_ANSWER}`, {
        code: 'http-status',
        httpStatus: status,
        cause: redirect ? `redirect (HTTP ${status})` : `HTTP ${status}`,
      });
    }
    let parsed: ReturnType<typeof parseListUsersResponse> | undefined;
    let malformed: string | undefined;
    let providerShaped = true;
    try {
      parsed = parseListUsersResponse(text);
    } catch (err) {
      malformed = (err as Error).message;
      providerShaped = !(err instanceof NotProviderAnswerError);
    }
    if (parsed?.ok === false) {
      const message = scrubProviderText(parsed.message, this.credentials.secretAccessKey).slice(0, MAX_PROVIDER_MESSAGE);
      throw new ProviderError(
        kindOfRetCode(parsed.retCode),
        `${context}: ret_code ${parsed.retCode}${message === '' ? '' : `: ${message}`}`,
        { code: 'ret-code', retCode: parsed.retCode, httpStatus: status },
      );
    }
    if (parsed === undefined) {
      // A garbled body says nothing about the request: the next answer may well be good. One of the
      // provider's shape gets its problems named; anything else is no answer.
      throw new ProviderError('retryable', `${context}: ${providerShaped ? malformed : NO_VALID_ANSWER}`, {
        code: 'malformed-response',
        httpStatus: status,
        ...(malformed === undefined ? {} : { cause: malformed }),
      });
    }
    return parsed.page;
  }
}

function outcomeOf(err: ProviderError): RequestOutcome {
  const { code, retCode, httpStatus } = err.details;
  if (retCode !== undefined) return { retCode };
  if (code === 'timeout' || code === 'network') return { failure: code };
  return { httpStatus: httpStatus ?? 0 };
}

/**
 * A non-answer is retried whatever it was, so that it also reads the same in status (retries,
 * Stalled); only the provider's own 429 means something more.
 */
function kindOfHttpStatus(status: number): ProviderErrorKind {
  return status === 429 ? 'quota' : 'retryable';
}

/** The system error code of a failed request (ECONNREFUSED, a TLS code): only that, messages name hosts. */
function networkReason(err: unknown): string {
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && code !== '') return code;
  return err instanceof Error ? err.name : 'unknown error';
}

/** The response once its head arrived; the request's errors, then or later, never go unheard. */
function responseOf(request: ClientRequest): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    // After the head a failure (reset, abort) also ends the response, whose reader reports it.
    request.on('error', reject);
    request.once('response', resolve);
  });
}

/**
 * Lenient like curl: a body cut short decodes as far as it goes, and the JSON parse then says
 * it is not an answer.
 */
const LENIENT_ZLIB = { flush: zlib.constants.Z_SYNC_FLUSH, finishFlush: zlib.constants.Z_SYNC_FLUSH };

/**
 * The body decoded per its content-encoding (one of REQUEST_HEADERS'; deflate in its zlib
 * format, RFC 9110); any other encoding is passed as it is, and is then not JSON.
 */
function decoded(response: IncomingMessage): Readable {
  const encoding = response.headers['content-encoding']?.trim().toLowerCase();
  const decoder =
    encoding === 'gzip' || encoding === 'x-gzip'
      ? zlib.createGunzip(LENIENT_ZLIB)
      : encoding === 'deflate' || encoding === 'x-deflate'
        ? zlib.createInflate(LENIENT_ZLIB)
        : encoding === 'br'
          ? zlib.createBrotliDecompress()
          : undefined;
  if (decoder === undefined) return response;
  // An error of either side ends the other; the decoder's reader sees it.
  return pipeline(response, decoder, () => undefined);
}

/**
 * The body as text, refused past MAX_BODY_BYTES or past what the listing may still read; past
 * either, the body is destroyed and with it the connection. The caps count the bytes read from
 * `body`: a 2xx body decoded, as it is held in memory (a small compressed body cannot grow past
 * them), any other as sent.
 */
function readCapped(body: Readable, budget: ByteBudget): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const fail = (err: Error): void => {
      done = true;
      reject(err);
    };
    body.on('data', (chunk: Buffer) => {
      if (done) return;
      size += chunk.length;
      budget.remaining -= chunk.length;
      const excess =
        budget.remaining < 0
          ? new ProviderError('permanent', 'the listing read more response bytes than this operator allows per listing', { code: 'sync-limit' })
          : size > MAX_BODY_BYTES
            ? new ProviderError('retryable', `response body is larger than ${MAX_BODY_BYTES} bytes`, { code: 'malformed-response' })
            : undefined;
      if (excess === undefined) {
        chunks.push(chunk);
        return;
      }
      body.destroy();
      fail(excess);
    });
    body.once('end', () => {
      done = true;
      resolve(Buffer.concat(chunks, size).toString('utf8'));
    });
    body.once('error', fail);
    // Should a stream be destroyed without an error, it ends neither way.
    body.once('close', () => fail(Object.assign(new Error('the response ended early'), { code: 'ECONNRESET' })));
  });
}
