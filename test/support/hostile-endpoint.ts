// An HTTP server of a test's own on a free loopback port, playing a provider endpoint that a
// tenant controls: it answers as the test says and counts what reached it.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface HostileEndpoint {
  url: string;
  /** Requests that reached the server, with their URLs (query included). */
  readonly requests: string[];
  close(): Promise<void>;
}

export async function startHostileEndpoint(answer: (req: IncomingMessage, res: ServerResponse) => void): Promise<HostileEndpoint> {
  const requests: string[] = [];
  const server = createServer((req, res) => {
    requests.push(req.url ?? '');
    answer(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A JSON answer with HTTP 200. */
export function json(res: ServerResponse, body: unknown): void {
  res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}

/** A full page of well-formed rows at `offset`, claiming `total` rows in all. */
export function endlessPage(offset: number, total: number): unknown {
  const rows = Array.from({ length: 100 }, (_, i) => {
    const n = offset + i;
    return {
      cluster_id: 'hpc-1', create_time: '2021-08-17T09:12:40Z', update_time: '2021-08-17T09:12:40Z',
      gid_number: String(10_000 + n), uid_number: String(10_000 + n), hpcuser_id: `hpcuser-${n}`, mod: null,
      nas_mount_point: `/public/u${n}`, role: 'member', user_id: `usr-${n}`, username: `u${n}`,
    };
  });
  return { action: 'HpcUserListUsersResponse', ret_code: 0, total_count: total, user_set: rows };
}

/** The offset a ListUsers request asked for. */
export function offsetOf(req: IncomingMessage): number {
  return Number(new URL(req.url ?? '/', 'http://x').searchParams.get('offset') ?? 0);
}
