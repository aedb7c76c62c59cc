// The webhook's HTTPS endpoint. The kube-apiserver POSTs an AdmissionReview to /mutate-pods and
// verifies this server against the caBundle of the MutatingWebhookConfiguration; a renewed
// certificate replaces the served one in place (new handshakes use it, nothing restarts).
import { createServer, type Server } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { formatAddress, parseListenAddress } from '../controller/http-server.js';
import { messageOf } from '../runtime/error-message.js';
import type { AdmissionReview } from './admission.js';

export const MUTATE_PODS_PATH = '/mutate-pods';
/** An AdmissionReview carries the pod and, on update, the old pod: each at most 1.5 MiB in etcd. */
const MAX_BODY_BYTES = 4 * 1024 * 1024;
/** How long a stopping server waits for its connections to end by themselves (the apiserver's webhook timeout is 5 s). */
const CLOSE_GRACE_MS = 5_000;
const CLOSE_POLL_MS = 20;

export interface ServingCertificate {
  cert: string;
  key: string;
}

export interface WebhookServerOptions {
  addr: string;
  certificate: ServingCertificate;
  /** Answers one decoded AdmissionReview request; throws when the body is not one. */
  answer: (body: unknown) => AdmissionReview;
}

export interface WebhookServer {
  /** The bound `host:port`. */
  readonly address: string;
  useCertificate(certificate: ServingCertificate): void;
  close(): Promise<void>;
}

function reply(response: ServerResponse, status: number, body: string, type = 'text/plain; charset=utf-8'): void {
  response.writeHead(status, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(body) });
  response.end(body);
}

async function readBody(request: IncomingMessage): Promise<string | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) return undefined;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

export async function startWebhookServer(options: WebhookServerOptions): Promise<WebhookServer> {
  const { host, port } = parseListenAddress(options.addr);
  let closing = false;
  const connections = new Set<Socket>();
  // Once closing, every answer ends its connection, so the apiserver opens its next one elsewhere.
  const send: typeof reply = (response, ...rest) => {
    if (closing) response.setHeader('Connection', 'close');
    reply(response, ...rest);
  };
  const server: Server = createServer({ ...options.certificate, minVersion: 'TLSv1.2' }, (request, response) => {
    const path = new URL(request.url ?? '/', 'https://localhost').pathname;
    if (path !== MUTATE_PODS_PATH) return send(response, 404, 'not found\n');
    if (request.method !== 'POST') return send(response, 405, 'method not allowed\n');
    void readBody(request).then(
      (body) => {
        if (body === undefined) return send(response, 413, 'request body too large\n');
        let answer: AdmissionReview;
        try {
          answer = options.answer(JSON.parse(body));
        } catch (error) {
          return send(response, 400, `${messageOf(error)}\n`);
        }
        send(response, 200, JSON.stringify(answer), 'application/json');
      },
      () => response.destroy(),
    );
  });
  server.on('connection', (socket: Socket) => {
    connections.add(socket);
    socket.once('close', () => connections.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    address: formatAddress(server.address() as AddressInfo),
    useCertificate: (certificate) => server.setSecureContext({ ...certificate, minVersion: 'TLSv1.2' }),
    // Closing a kept-alive connection under the apiserver can lose the request it is sending
    // on it that instant (an EOF, and a refused pod). So first every connection is left to end
    // with its next answer, for up to CLOSE_GRACE_MS; only then is the server closed and
    // whatever stayed idle all along cut.
    async close() {
      closing = true;
      const deadline = Date.now() + CLOSE_GRACE_MS;
      while (connections.size > 0 && Date.now() < deadline) await sleep(CLOSE_POLL_MS);
      await new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      });
    },
  };
}
