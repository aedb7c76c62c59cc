import type { IncomingMessage, ServerResponse } from 'node:http';
import { z } from 'zod';
import { faultPatchSchema } from './faults.js';
import type { Simulator } from './server.js';
import { simulatedUserPatchSchema, simulatedUserSchema, StoreError } from './store.js';

/**
 * The test-only admin endpoint, on the simulator's own port (JSON in, JSON out):
 *   GET    /_admin/stats                              counters (SimulatorStats)
 *   POST   /_admin/reset-stats                        zero the counters
 *   GET    /_admin/faults                             the fault configuration
 *   PATCH  /_admin/faults                             change some faults (FaultPatch)
 *   DELETE /_admin/faults                             no faults
 *   GET    /_admin/clusters                           [{id, zone, userCount}]
 *   GET    /_admin/clusters/:id/users                 the cluster's rows, wire format
 *   PUT    /_admin/clusters/:id/users                 {zone?, users: [...]}: replace (creates the cluster)
 *   POST   /_admin/clusters/:id/users                 one user: add
 *   PATCH  /_admin/clusters/:id/users/:username       some fields of a user: change
 *   DELETE /_admin/clusters/:id/users/:username       remove a user
 */
export const ADMIN_PREFIX = '/_admin/';

/** Bodies can be large (a PUT of 100,000 users); this bounds memory, not realistic use. */
const MAX_BODY_BYTES = 64 * 1024 * 1024;

const setUsersBodySchema = z.strictObject({
  zone: z.string().min(1).optional(),
  users: z.array(simulatedUserSchema),
});

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

async function readJson<T>(req: IncomingMessage, schema: z.ZodType<T>): Promise<T> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new HttpError(413, 'body too large');
    chunks.push(chunk);
  }
  let body: unknown;
  try {
    body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new HttpError(400, 'body is not JSON');
  }
  return schema.parse(body);
}

function send(res: ServerResponse, status: number, body?: unknown): void {
  if (body === undefined) {
    res.writeHead(status).end();
    return;
  }
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' }).end(`${JSON.stringify(body)}\n`);
}

/** Runs one admin request; errors are answered as `{error}` with a 4xx status. */
export async function handleAdmin(simulator: Simulator, req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
  try {
    const [status, body] = await route(simulator, req, path);
    send(res, status, body);
  } catch (err) {
    if (err instanceof HttpError) return send(res, err.status, { error: err.message });
    if (err instanceof StoreError) return send(res, err.reason === 'not-found' ? 404 : 409, { error: err.message });
    if (err instanceof z.ZodError) return send(res, 400, { error: z.prettifyError(err).replace(/\n/g, '; ') });
    throw err;
  }
}

async function route(simulator: Simulator, req: IncomingMessage, path: string): Promise<[number, unknown?]> {
  const method = req.method ?? 'GET';
  const segments = path.slice(ADMIN_PREFIX.length).split('/').filter((s) => s !== '').map(decodeURIComponent);
  const [resource, clusterId, usersSegment, username, ...rest] = segments;

  if (clusterId === undefined) {
    switch (`${method} ${resource ?? ''}`) {
      case 'GET stats':
        return [200, simulator.stats()];
      case 'POST reset-stats':
        simulator.resetStats();
        return [204];
      case 'GET faults':
        return [200, simulator.faults()];
      case 'PATCH faults':
        return [200, simulator.setFaults(await readJson(req, faultPatchSchema))];
      case 'DELETE faults':
        return [200, simulator.clearFaults()];
      case 'GET clusters':
        return [200, simulator.clusters()];
    }
  } else if (resource === 'clusters' && usersSegment === 'users' && rest.length === 0) {
    if (username === undefined) {
      switch (method) {
        case 'GET': {
          const rows = simulator.users(clusterId);
          if (rows === undefined) throw new StoreError('not-found', `no cluster ${clusterId}`);
          return [200, rows];
        }
        case 'PUT': {
          const body = await readJson(req, setUsersBodySchema);
          return [200, simulator.setUsers(clusterId, body.users, body.zone)];
        }
        case 'POST':
          return [201, simulator.addUser(clusterId, await readJson(req, simulatedUserSchema))];
      }
    } else {
      switch (method) {
        case 'PATCH':
          return [200, simulator.updateUser(clusterId, username, await readJson(req, simulatedUserPatchSchema))];
        case 'DELETE':
          simulator.removeUser(clusterId, username);
          return [204];
      }
    }
  }
  throw new HttpError(404, `no admin route ${method} ${path}`);
}
