import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from '@jest/globals';
import { KubeConfig } from '@kubernetes/client-node';
import { inClusterAccess, kubeAccessFromKubeConfig, loadKubeAccess } from '../../src/kube/access.js';
import { microTime } from '../../src/controller/leader.js';

const dir = mkdtempSync(join(tmpdir(), 'kube-access-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function kubeconfigFile(name: string, user: Record<string, unknown>, cluster: Record<string, unknown> = {}): string {
  const path = join(dir, name);
  const config = {
    apiVersion: 'v1',
    kind: 'Config',
    'current-context': 'ctx',
    contexts: [{ name: 'ctx', context: { cluster: 'c', user: 'u' } }],
    clusters: [{ name: 'c', cluster: { server: 'https://127.0.0.1:6443/', 'certificate-authority-data': Buffer.from('CA').toString('base64'), ...cluster } }],
    users: [{ name: 'u', user }],
  };
  writeFileSync(path, JSON.stringify(config));
  return path;
}

describe('loadKubeAccess', () => {
  it('fails clearly when nothing configures a cluster', async () => {
    await expect(loadKubeAccess(undefined, { HOME: dir })).rejects.toThrow(/no Kubernetes configuration found/);
  });

  it('names a missing --kubeconfig file', async () => {
    await expect(loadKubeAccess(join(dir, 'absent'))).rejects.toThrow(/absent does not exist/);
  });

  it('reads a token and the server, with one keep-alive agent for every request', async () => {
    const access = await loadKubeAccess(kubeconfigFile('token', { token: 'abc' }));
    const first = await access.connection();
    const second = await access.connection();
    expect(first.server).toBe('https://127.0.0.1:6443');
    expect(first.headers).toEqual({ Authorization: 'Bearer abc' });
    expect(second.agent).toBe(first.agent);
    expect((first.agent as unknown as { keepAlive: boolean }).keepAlive).toBe(true);
    access.close();
  });

  it('reads files named relative to the kubeconfig, as clientcmd does', async () => {
    mkdirSync(join(dir, 'certs'), { recursive: true });
    writeFileSync(join(dir, 'certs', 'tok'), 'from-file\n');
    writeFileSync(join(dir, 'certs', 'ca.crt'), 'CA FROM FILE');
    const access = await loadKubeAccess(kubeconfigFile('relative', { tokenFile: 'certs/tok' }, { 'certificate-authority': 'certs/ca.crt', 'certificate-authority-data': undefined }));
    const connection = await access.connection();
    expect(connection.headers.Authorization).toBe('Bearer from-file');
    expect(String(connection.agent.options.ca)).toBe('CA FROM FILE');
    access.close();
  });

  it('passes a client certificate and key to TLS', async () => {
    const access = await loadKubeAccess(
      kubeconfigFile('cert', { 'client-certificate-data': Buffer.from('CERT').toString('base64'), 'client-key-data': Buffer.from('KEY').toString('base64') }),
    );
    const { agent, headers } = await access.connection();
    expect(String(agent.options.cert)).toBe('CERT');
    expect((agent.options.key as Buffer).toString()).toBe('KEY');
    expect(headers).toEqual({});
    access.close();
  });

  it('names an undefined current context', async () => {
    const path = join(dir, 'no-context');
    writeFileSync(path, JSON.stringify({ 'current-context': 'gone', contexts: [], clusters: [], users: [] }));
    await expect(loadKubeAccess(path)).rejects.toThrow(/context "gone" is not defined/);
  });

  it('leaves exec plugins to client-node, which runs them for every connection', async () => {
    const access = await loadKubeAccess(
      kubeconfigFile('exec', { exec: { apiVersion: 'client.authentication.k8s.io/v1', command: 'echo', args: ['{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"from-exec"}}'] } }),
    );
    expect((await access.connection()).headers.Authorization).toBe('Bearer from-exec');
    access.close();
  });

  it("reads the pod service account: the Service's address (IPv6 in brackets), its CA and token", async () => {
    const sa = join(dir, 'sa');
    mkdirSync(sa, { recursive: true });
    writeFileSync(join(sa, 'ca.crt'), 'SA CA');
    writeFileSync(join(sa, 'token'), 'first');
    const access = inClusterAccess({ KUBERNETES_SERVICE_HOST: 'fd00::1', KUBERNETES_SERVICE_PORT: '443' }, sa);
    const connection = await access.connection();
    expect(connection.server).toBe('https://[fd00::1]:443');
    expect(connection.headers.Authorization).toBe('Bearer first');
    access.close();
  });
});

describe('kubeAccessFromKubeConfig', () => {
  function config(caData: string): KubeConfig {
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'c', server: 'https://127.0.0.1:6443', caData }],
      users: [{ name: 'u', token: 't' }],
      contexts: [{ name: 'ctx', cluster: 'c', user: 'u' }],
      currentContext: 'ctx',
    });
    return kc;
  }

  it('keeps one agent while the TLS material stays, and a new one when it changes', async () => {
    const kc = config(Buffer.from('CA').toString('base64'));
    const access = kubeAccessFromKubeConfig(kc);
    const first = await access.connection();
    expect(first.headers.Authorization).toBe('Bearer t');
    expect((await access.connection()).agent).toBe(first.agent);
    const cluster = kc.clusters[0];
    if (cluster === undefined) throw new Error('no cluster');
    kc.clusters[0] = { ...cluster, caData: Buffer.from('another CA').toString('base64') };
    expect((await access.connection()).agent).not.toBe(first.agent);
    access.close();
  });
});

describe('microTime', () => {
  it('writes the six fractional digits metav1.MicroTime parses', () => {
    expect(microTime(Date.UTC(2026, 10, 30, 19, 0, 0, 123))).toBe('2026-11-30T19:00:00.123000Z');
  });
});
