// `hpc-user-operator render` and `crd`, run in-process; render syncs against the simulator.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { parseAllDocuments } from 'yaml';
import { main } from '../../src/cli/main.js';
import { renderConfigMaps } from '../../src/render/configmaps.js';
import { DEV_ACCESS_KEY, startSimulator, type Simulator } from '../../tools/simulator/server.js';

const dir = mkdtempSync(join(tmpdir(), 'render-cli-'));
let sim: Simulator;

beforeAll(async () => {
  sim = await startSimulator({
    clusters: [{ id: 'hpc-qig9xu97', users: [
      { username: 'alice', uid: 41522, gid: 41522, role: 'member', nasMountPoint: '/public/shanhe/alice', userId: 'usr-alice', hpcUserId: 'hpcuser-alice' },
      { username: 'boss1', uid: 41530, gid: 41530, role: 'boss', nasMountPoint: '/public/shanhe/boss1', userId: 'usr-boss1', hpcUserId: 'hpcuser-boss1' },
    ] }],
    faults: { invalidRows: ['uid-zero'] },
  });
});

afterAll(async () => {
  await sim.close();
  rmSync(dir, { recursive: true, force: true });
});

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

const cluster = (spec: string) =>
  file('hpcc.yaml', `apiVersion: hpc.shanhe.com/v1alpha1\nkind: HpcCluster\nmetadata: {name: chem-lab, namespace: research}\nspec:\n${spec}`);
const secret = (secretKey: string) =>
  file('secret.yaml', `apiVersion: v1\nkind: Secret\nmetadata: {name: key}\nstringData: {access_key_id: ${DEV_ACCESS_KEY.id}, secret_access_key: ${secretKey}}\n`);
const validSpec = () => `  clusterId: hpc-qig9xu97\n  zone: jinan1a\n  endpoint: ${sim.url}\n  allowInsecureHttp: true\n  credentialsSecretRef: {name: key}\n  filter: {roles: [member]}\n`;

async function run(argv: string[]) {
  const out = jest.spyOn(process.stdout, 'write').mockImplementation(() => true);
  const err = jest.spyOn(process.stderr, 'write').mockImplementation(() => true);
  try {
    const status = await main(argv);
    const text = (spy: typeof out) => spy.mock.calls.map((call) => String(call[0])).join('');
    return { status, stdout: text(out), stderr: text(err) };
  } finally {
    out.mockRestore();
    err.mockRestore();
  }
}

describe('render', () => {
  it('prints both ConfigMaps exactly as the operator renders them, without an ownerReference', async () => {
    const { status, stdout, stderr } = await run(['render', '-f', cluster(validSpec()), '--secret-file', secret(DEV_ACCESS_KEY.secret)]);
    expect(status).toBe(0);
    const documents = parseAllDocuments(stdout).map((d) => d.toJS() as { metadata: Record<string, unknown>; data: Record<string, string> });
    const expected = renderConfigMaps('chem-lab', [
      { username: 'alice', uid: 41522, gid: 41522, role: 'member', nasMountPoint: '/public/shanhe/alice', userId: 'usr-alice', hpcUserId: 'hpcuser-alice' },
    ]);
    expect(documents.map((d) => d.metadata.name)).toEqual(['chem-lab-users', 'chem-lab-nss']);
    expect(documents.map((d) => d.data)).toEqual(expected.map((cm) => cm.data));
    expect(documents.every((d) => d.metadata.namespace === 'research' && d.metadata.ownerReferences === undefined)).toBe(true);
    expect(stderr).toContain('uid 0 (root) is never synced');
    expect(stderr).toContain('1 users, 1 skipped, 1 pages');
  });

  it('refuses an invalid spec with exit 2, naming the field', async () => {
    const { status, stderr } = await run(['render', '-f', cluster(`${validSpec()}  syncInterval: 5s\n`), '--secret-file', secret(DEV_ACCESS_KEY.secret)]);
    expect(status).toBe(2);
    expect(stderr).toContain('spec.syncInterval: syncInterval must be between 30s and 24h');
  });

  it('fails with exit 1 and one line when the API refuses the key, without printing the secret', async () => {
    const { status, stdout, stderr } = await run(['render', '-f', cluster(validSpec()), '--secret-file', secret('wrong-secret-value')]);
    expect(status).toBe(1);
    expect(stdout).toBe('');
    expect(stderr).toMatch(/ret_code 1200/);
    expect(stderr).not.toContain('wrong-secret-value');
    expect(stderr.trim().split('\n')).toHaveLength(1);
  });

  it('names only where a Secret file is not YAML, never the line that holds the secret', async () => {
    const broken = file('broken-secret.yaml', `apiVersion: v1\nkind: Secret\nstringData:\n  secret_access_key: "leaked-secret-value\n  access_key_id: [unclosed\n`);
    const { status, stderr } = await run(['render', '-f', cluster(validSpec()), '--secret-file', broken]);
    expect(status).toBe(2);
    expect(stderr).toMatch(/broken-secret\.yaml: not valid YAML \([A-Z_]+ at line \d+, column \d+\)/);
    expect(stderr).not.toContain('leaked-secret-value');
  });

  it('asks for credentials when neither a Secret file nor the environment has them', async () => {
    const { status, stderr } = await run(['render', '-f', cluster(validSpec())]);
    expect(status).toBe(2);
    expect(stderr).toContain('set HPC_ACCESS_KEY_ID and HPC_SECRET_ACCESS_KEY, or pass --secret-file');
  });
});

describe('crd', () => {
  it('prints the committed CRD', async () => {
    const { status, stdout } = await run(['crd']);
    expect(status).toBe(0);
    expect(stdout).toBe(readFileSync(new URL('../../crds/hpcclusters.hpc.shanhe.com.yaml', import.meta.url), 'utf8'));
  });
});
