// How the apiserver client reads an answer's body, against a tiny https server: text decoded
// across chunk boundaries, and a body cut short refused with a reason rather than waited for.
import { Agent, createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { ServerResponse } from 'node:http';
import { afterEach, describe, expect, it } from '@jest/globals';
import { KubeClient } from '../../src/kube/client.js';
import { TEST_CERT as CERT, TEST_KEY as KEY } from '../support/tls-fixture.js';

let server: Server | undefined;
let client: KubeClient | undefined;

async function serve(answer: (res: ServerResponse) => void): Promise<KubeClient> {
  server = createServer({ cert: CERT, key: KEY }, (_req, res) => answer(res));
  await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve));
  const agent = new Agent({ ca: CERT, keepAlive: true });
  const url = `https://127.0.0.1:${String((server.address() as AddressInfo).port)}`;
  client = new KubeClient({ connection: () => Promise.resolve({ server: url, agent, headers: {} }), close: () => agent.destroy() });
  return client;
}

afterEach(async () => {
  client?.close();
  server?.closeAllConnections();
  await new Promise((resolve) => server?.close(resolve));
  server = undefined;
  client = undefined;
});

describe('KubeClient reading an answer', () => {
  it('decodes characters of several bytes that straddle the chunks they arrive in', async () => {
    // 400 KB arrives in TLS records of 16,384 bytes, and 16,384 is 4 modulo the 10 bytes of
    // 'aü€😀': record boundaries fall inside '€' (bytes 3 to 5 of each 10).
    const text = 'aü€😀'.repeat(40_000);
    const api = await serve((res) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ text })));
    await expect(api.get('/api/v1/namespaces/x/configmaps/y')).resolves.toEqual({ text });
  });

  it('refuses a body the apiserver cut short, saying so', async () => {
    const api = await serve((res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': '100000' });
      res.write('{"items":[', () => res.socket?.destroy());
    });
    await expect(api.get('/api/v1/configmaps')).rejects.toThrow("the apiserver's answer broke off");
  });
});
