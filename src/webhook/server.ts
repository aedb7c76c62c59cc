// The webhook's HTTPS endpoint. The kube-apiserver POSTs an AdmissionReview to /mutate-pods and
// verifies this server against the caBundle of the MutatingWebhookConfiguration; a renewed
// certificate replaces the served one in place (new handshakes use it, nothing restarts).
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { formatAddress, parseListenAddress } from '../controller/http-server.js';
import type { AdmissionReview } from './admission.js';

export const MUTATE_PODS_PATH = '/mutate-pods';
/** An AdmissionReview carries the pod and, on update, the old pod: each at most 1.5 MiB in etcd. */
const MAX_BODY_BYTES = 4 * 1024 * 1024;

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
  const server: Server = createServer({ ...options.certificate, minVersion: 'TLSv1.2' }, (request, response) => {
    const path = new URL(request.url ?? '/', 'https://localhost').pathname;
    if (path !== MUTATE_PODS_PATH) return reply(response, 404, 'not found\n');
    if (request.method !== 'POST') return reply(response, 405, 'method not allowed\n');
    void readBody(request).then(
      (body) => {
        if (body === undefined) return reply(response, 413, 'request body too large\n');
        let answer: AdmissionReview;
        try {
          answer = options.answer(JSON.parse(body));
        } catch (error) {
          return reply(response, 400, `${error instanceof Error ? error.message : String(error)}\n`);
        }
        reply(response, 200, JSON.stringify(answer), 'application/json');
      },
      () => response.destroy(),
    );
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
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      }),
  };
}
