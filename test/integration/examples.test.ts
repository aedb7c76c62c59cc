// Every manifest in deploy/examples/ is admitted by the API server (with the CRD installed),
// in a namespace of the test's own, as `kubectl apply -n <namespace> -f deploy/examples/`.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import type { KubeConfig } from '@kubernetes/client-node';
import { parse } from 'yaml';
import { createTestNamespace, deleteTestNamespace, testKubeConfig } from '../../tools/harness/cluster.js';
import { installCrd } from '../../tools/harness/operator.js';
import { serverSideDryRun } from '../support/tools.js';

const examplesDir = fileURLToPath(new URL('../../deploy/examples', import.meta.url));
const examples = readdirSync(examplesDir).filter((file) => file.endsWith('.yaml')).sort();

let admin: KubeConfig;
let namespace: string;

beforeAll(async () => {
  admin = testKubeConfig();
  await installCrd(admin);
  namespace = await createTestNamespace(admin, 'examples');
});

afterAll(async () => {
  await deleteTestNamespace(admin, namespace);
});

test.each(examples)('%s is admitted by the API server (server-side dry run)', async (file) => {
  const text = readFileSync(join(examplesDir, file), 'utf8');
  const { kind, metadata } = parse(text) as { kind: string; metadata: { name: string } };
  const { stdout, stderr } = await serverSideDryRun(text, namespace);
  expect(stdout).toContain(`${metadata.name} serverside-applied (server dry run)`);
  expect(stdout.toLowerCase()).toContain(kind.toLowerCase());
  expect(stderr).toBe('');
});
