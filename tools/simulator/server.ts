import { createServer, STATUS_CODES, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { systemClock, type Clock } from '../../src/runtime/clock.js';
import { RetCode } from '../../src/provider/errors.js';
import { LIST_USERS_PATH, type WireUser } from '../../src/provider/wire.js';
import { ADMIN_PREFIX, handleAdmin } from './admin.js';
import {
  applyPageFaults,
  faultPatchSchema,
  fireTrigger,
  http5xxBody,
  invalidRows,
  listUsersBody,
  NO_FAULTS,
  retCodeMessage,
  truncateBody,
  type FaultConfig,
  type FaultPatch,
} from './faults.js';
import { pageOf, selectRows } from './listing.js';
import { seededRandom, type Random } from './prng.js';
import { FixedWindowQuota, PROVIDER_QUOTA, type QuotaConfig } from './quota.js';
import { checkListUsersRequest, type ListUsersRequest } from './request.js';
import {
  DEFAULT_ZONE,
  UserStore,
  type ClusterSeed,
  type ClusterSummary,
  type SimulatedUser,
  type SimulatedUserPatch,
} from './store.js';

export interface AccessKey {
  id: string;
  secret: string;
}

/** The key pair a simulator accepts when given none: for local development only. */
export const DEV_ACCESS_KEY: Readonly<AccessKey> = Object.freeze({
  id: 'SIMULATORACCESSKEYID',
  secret: 'simulator-secret-access-key',
});

export interface SimulatorOptions {
  /** 0 (the default) picks a free port. */
  port?: number;
  /** Default 127.0.0.1: the admin endpoint must not be reachable from elsewhere by accident. */
  host?: string;
  /** Default [DEV_ACCESS_KEY]. */
  accessKeys?: AccessKey[];
  clusters?: ClusterSeed[];
  /** The zone of clusters that name none; default `jinan1a`. */
  zone?: string;
  /** Per access key; default the provider's 2,000 calls per 3,600 s. */
  quota?: QuotaConfig;
  /** The server clock (timestamp window, quota windows, create times); default the system clock. */
  clock?: Pick<Clock, 'now'>;
  /** Seed of the PRNG behind rate-based faults; default 1. */
  seed?: number;
  faults?: FaultPatch;
}

/**
 * What the simulator answered, for tests to assert how many calls a sync made. Every API
 * request is counted once in `requests` and, once answered, in exactly one of: byRetCode (a
 * JSON answer), byHttpStatus (an answer without ret_code: injected 5xx, 404, 405), truncated,
 * hung. byAccessKey counts the authenticated, well-formed requests of each key (those the
 * quota sees, refused or not). Admin requests are not counted.
 */
export interface SimulatorStats {
  requests: number;
  byRetCode: Record<string, number>;
  byHttpStatus: Record<string, number>;
  truncated: number;
  hung: number;
  byAccessKey: Record<string, number>;
}

/** One request the quota saw (authenticated and well-formed), for tests that look at when calls came. */
export interface CallRecord {
  at: number;
  accessKeyId: string;
  clusterId: string | undefined;
  offset: number;
  /** Refused with 2500. */
  quotaExceeded: boolean;
}

export interface Simulator {
  /** `http://host:port`, the endpoint to configure in a client. */
  readonly url: string;
  readonly port: number;
  /** Stops listening, drops every connection (keep-alive and hung ones too), resolves when done. */
  close(): Promise<void>;
  /** Replaces a cluster's users, creating the cluster (in `zone`, or the default zone) if needed. */
  setUsers(clusterId: string, users: readonly SimulatedUser[], zone?: string): ClusterSummary;
  addUser(clusterId: string, user: SimulatedUser): WireUser;
  updateUser(clusterId: string, username: string, patch: SimulatedUserPatch): WireUser;
  removeUser(clusterId: string, username: string): void;
  /** A cluster's rows in listing order (undefined for an unknown cluster). */
  users(clusterId: string): readonly WireUser[] | undefined;
  clusters(): ClusterSummary[];
  /** Changes the given faults, keeps the others; throws on an invalid change. */
  setFaults(patch: FaultPatch): FaultConfig;
  clearFaults(): FaultConfig;
  faults(): FaultConfig;
  stats(): SimulatorStats;
  /** Every request the quota saw since the start or the last resetStats, in arrival order. */
  calls(): readonly CallRecord[];
  resetStats(): void;
}

function emptyStats(): SimulatorStats {
  return { requests: 0, byRetCode: {}, byHttpStatus: {}, truncated: 0, hung: 0, byAccessKey: {} };
}

function increment(counts: Record<string, number>, key: string | number): void {
  counts[key] = (counts[key] ?? 0) + 1;
}

/** Users inserted by the mutateBetweenPages fault get uids from here on. */
const INSERTED_USER_FIRST_UID = 1990000;

class SimulatorServer implements Simulator {
  url = '';
  port = 0;
  private readonly server: Server;
  private readonly store: UserStore;
  private readonly quota: FixedWindowQuota;
  private readonly secrets: Map<string, string>;
  private readonly now: () => number;
  private readonly random: Random;
  private currentFaults: FaultConfig = { ...NO_FAULTS };
  private counters = emptyStats();
  private callRecords: CallRecord[] = [];
  private insertedUsers = 0;
  /** Latency timers, cleared on close so a delayed answer never outlives the simulator. */
  private readonly timers = new Set<NodeJS.Timeout>();
  private closing: Promise<void> | undefined;

  constructor(options: SimulatorOptions) {
    const clock = options.clock ?? systemClock;
    this.now = () => clock.now();
    this.random = seededRandom(options.seed ?? 1);
    this.store = new UserStore(options.zone ?? DEFAULT_ZONE, this.now);
    for (const cluster of options.clusters ?? []) this.store.setUsers(cluster.id, cluster.users, cluster.zone);
    this.quota = new FixedWindowQuota(options.quota ?? PROVIDER_QUOTA, this.now);
    this.secrets = new Map((options.accessKeys ?? [DEV_ACCESS_KEY]).map((key) => [key.id, key.secret]));
    if (options.faults !== undefined) this.setFaults(options.faults);
    this.server = createServer((req, res) => this.route(req, res));
  }

  async listen(port: number, host: string): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    this.port = (this.server.address() as AddressInfo).port;
    this.url = `http://${host.includes(':') ? `[${host}]` : host}:${this.port}`;
  }

  close(): Promise<void> {
    this.closing ??= new Promise<void>((resolve, reject) => {
      for (const timer of this.timers) clearTimeout(timer);
      this.timers.clear();
      this.server.close((err) => (err === undefined ? resolve() : reject(err)));
      this.server.closeAllConnections();
    });
    return this.closing;
  }

  setUsers(clusterId: string, users: readonly SimulatedUser[], zone?: string): ClusterSummary {
    return this.store.setUsers(clusterId, users, zone);
  }

  addUser(clusterId: string, user: SimulatedUser): WireUser {
    return this.store.addUser(clusterId, user);
  }

  updateUser(clusterId: string, username: string, patch: SimulatedUserPatch): WireUser {
    return this.store.updateUser(clusterId, username, patch);
  }

  removeUser(clusterId: string, username: string): void {
    this.store.removeUser(clusterId, username);
  }

  users(clusterId: string): readonly WireUser[] | undefined {
    return this.store.rowsOf(clusterId);
  }

  clusters(): ClusterSummary[] {
    return this.store.summary();
  }

  setFaults(patch: FaultPatch): FaultConfig {
    this.currentFaults = { ...this.currentFaults, ...faultPatchSchema.parse(patch) };
    return this.faults();
  }

  clearFaults(): FaultConfig {
    this.currentFaults = { ...NO_FAULTS };
    return this.faults();
  }

  faults(): FaultConfig {
    return structuredClone(this.currentFaults);
  }

  stats(): SimulatorStats {
    return structuredClone(this.counters);
  }

  calls(): readonly CallRecord[] {
    return [...this.callRecords];
  }

  resetStats(): void {
    this.counters = emptyStats();
    this.callRecords = [];
  }

  private route(req: IncomingMessage, res: ServerResponse): void {
    const target = req.url ?? '/';
    const queryStart = target.indexOf('?');
    const path = queryStart === -1 ? target : target.slice(0, queryStart);
    const rawQuery = queryStart === -1 ? '' : target.slice(queryStart + 1);
    if (path.startsWith(ADMIN_PREFIX)) {
      handleAdmin(this, req, res, path).catch((err: unknown) => {
        res.writeHead(500, { 'content-type': 'application/json' }).end(JSON.stringify({ error: String(err) }));
      });
      return;
    }
    this.counters.requests++;
    if (path !== LIST_USERS_PATH && path !== `${LIST_USERS_PATH}/`) return this.answerStatus(res, 404);
    if (req.method !== 'GET') return this.answerStatus(res, 405);

    if (this.fire('hang')) {
      this.counters.hung++;
      return;
    }
    const latency = this.currentFaults.latencyMs;
    if (latency === 0) return this.answerListUsers(path, rawQuery, res);
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      this.answerListUsers(path, rawQuery, res);
    }, latency);
    this.timers.add(timer);
  }

  private answerListUsers(path: string, rawQuery: string, res: ServerResponse): void {
    const http5xx = this.currentFaults.http5xx;
    if (http5xx !== null && this.fire('http5xx')) {
      const statusText = STATUS_CODES[http5xx.status] ?? 'Server Error';
      increment(this.counters.byHttpStatus, http5xx.status);
      res.writeHead(http5xx.status, statusText, { 'content-type': 'text/html' }).end(http5xxBody(http5xx.status, statusText));
      return;
    }
    const check = checkListUsersRequest('GET', path, rawQuery, (id) => this.secrets.get(id), this.now());
    if (!check.ok) return this.answerError(res, check.retCode, check.message);
    const request = check.request;
    increment(this.counters.byAccessKey, request.accessKeyId);
    const allowed = this.quota.take(request.accessKeyId);
    this.callRecords.push({ at: this.now(), accessKeyId: request.accessKeyId, clusterId: request.clusterId, offset: request.offset, quotaExceeded: !allowed });
    if (!allowed) {
      return this.answerError(res, RetCode.QuotaExceeded, retCodeMessage(RetCode.QuotaExceeded, request.clusterId ?? ''));
    }
    const error = this.currentFaults.error;
    if (error !== null && this.fire('error')) {
      return this.answerError(res, error.retCode, retCodeMessage(error.retCode, request.clusterId ?? ''));
    }

    const listing = this.listingOf(request);
    if (typeof listing === 'string') return this.answerError(res, RetCode.NotFound, listing);
    const faults = this.currentFaults;
    const page = applyPageFaults(pageOf(selectRows(listing.rows, request), request.offset, request.limit), faults);
    const body = JSON.stringify(listUsersBody(page, faults.listKey));
    if (this.fire('truncateJson')) {
      this.counters.truncated++;
      this.answerJson(res, truncateBody(body));
    } else {
      increment(this.counters.byRetCode, 0);
      this.answerJson(res, body);
    }
    if (faults.mutateBetweenPages && request.offset === 0 && listing.clusterId !== undefined) {
      const uid = INSERTED_USER_FIRST_UID + this.insertedUsers++;
      this.store.addUser(listing.clusterId, { username: `inserted-${uid}`, uid, gid: uid }, 'front');
    }
  }

  /** The rows a request lists and the cluster they belong to, or why there are none (2100). */
  private listingOf(request: ListUsersRequest): { rows: readonly WireUser[]; clusterId: string | undefined } | string {
    if (!this.store.hasZone(request.zone)) return `zone [${request.zone}] not found`;
    const clusterId = request.clusterId ?? this.store.firstClusterIn(request.zone);
    const rows = request.clusterId === undefined ? this.store.rowsInZone(request.zone) : this.store.rowsOf(request.clusterId, request.zone);
    if (rows === undefined) return `hpc cluster [${request.clusterId}] not found in zone [${request.zone}]`;
    const kinds = this.currentFaults.invalidRows;
    return { rows: kinds.length === 0 ? rows : rows.concat(invalidRows(kinds, clusterId ?? '')), clusterId };
  }

  /** Draws the named trigger, consuming one of its `next` requests when it fires. */
  private fire(name: 'error' | 'http5xx' | 'hang' | 'truncateJson'): boolean {
    const trigger = this.currentFaults[name];
    if (trigger === null) return false;
    const { fires, remaining } = fireTrigger(trigger, this.random);
    this.currentFaults = { ...this.currentFaults, [name]: remaining };
    return fires;
  }

  private answerError(res: ServerResponse, retCode: number, message: string): void {
    increment(this.counters.byRetCode, retCode);
    this.answerJson(res, JSON.stringify({ ret_code: retCode, message }));
  }

  private answerStatus(res: ServerResponse, status: number): void {
    increment(this.counters.byHttpStatus, status);
    res.writeHead(status, { 'content-type': 'text/plain' }).end(`${STATUS_CODES[status]}\n`);
  }

  private answerJson(res: ServerResponse, body: string): void {
    res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' }).end(body);
  }
}

/** Starts a simulator listening on `options.port` (default: a free one) of 127.0.0.1. */
export async function startSimulator(options: SimulatorOptions = {}): Promise<Simulator> {
  const simulator = new SimulatorServer(options);
  await simulator.listen(options.port ?? 0, options.host ?? '127.0.0.1');
  return simulator;
}
