import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { RequestOptions } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from '@jest/globals';
import { KubeConfig } from '@kubernetes/client-node';
import { loadKubeConfig, reuseConnections } from '../../src/runtime/kubeconfig.js';

const dir = mkdtempSync(join(tmpdir(), 'kubeconfig-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function config(token: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'c', server: 'https://127.0.0.1:6443', caData: Buffer.from('not a real CA').toString('base64') }],
    users: [{ name: 'u', token }],
    contexts: [{ name: 'ctx', cluster: 'c', user: 'u' }],
    currentContext: 'ctx',
  });
  return kc;
}

async function agentOf(kc: KubeConfig): Promise<unknown> {
  const options: RequestOptions = {};
  await kc.applyToHTTPSOptions(options);
  return options.agent;
}

describe('reuseConnections', () => {
  it('hands every request the same keep-alive agent', async () => {
    const kc = reuseConnections(config('t'));
    const first = await agentOf(kc);
    expect(await agentOf(kc)).toBe(first);
    expect((first as { keepAlive?: boolean }).keepAlive).toBe(true);
  });

  it('builds a new agent when the TLS material changes', async () => {
    const kc = reuseConnections(config('t'));
    const first = await agentOf(kc);
    const cluster = kc.clusters[0];
    if (cluster === undefined) throw new Error('no cluster');
    kc.clusters[0] = { ...cluster, caData: Buffer.from('another CA').toString('base64') };
    expect(await agentOf(kc)).not.toBe(first);
  });

  it('is what client-node does not do by itself', async () => {
    const kc = config('t');
    expect(await agentOf(kc)).not.toBe(await agentOf(kc));
  });
});

describe('loadKubeConfig', () => {
  it('fails clearly when nothing configures a cluster', () => {
    expect(() => loadKubeConfig(undefined, { HOME: dir })).toThrow(/no Kubernetes configuration found/);
  });

  it('names a missing --kubeconfig file', () => {
    expect(() => loadKubeConfig(join(dir, 'absent'))).toThrow(/absent does not exist/);
  });

  it('reads an explicit file', () => {
    const path = join(dir, 'kubeconfig');
    writeFileSync(path, config('t').exportConfig());
    expect(loadKubeConfig(path).getCurrentCluster()?.server).toBe('https://127.0.0.1:6443');
  });
});
