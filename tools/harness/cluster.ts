// What integration tests need from the shared control plane: its admin KubeConfig, a
// namespace of their own, and API errors' status codes.
import { randomBytes } from 'node:crypto';
import { ApiException, CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { kubeAccessFromKubeConfig } from '../../src/kube/access.js';
import { KubeClient, statusCode } from '../../src/kube/client.js';
import { loadKubeConfig } from '../controlplane/controlplane.js';

/** The admin kubeconfig path of the control plane Jest's global setup started. */
export function testKubeconfigPath(): string {
  const path = process.env.HPC_TEST_KUBECONFIG;
  if (!path) throw new Error('HPC_TEST_KUBECONFIG is not set: run integration tests through Jest (npm test)');
  return path;
}

export function testKubeConfig(): KubeConfig {
  return loadKubeConfig(testKubeconfigPath());
}

/** The operator's own API client, acting as `kubeConfig`'s identity. */
export function kubeClientOf(kubeConfig: KubeConfig): KubeClient {
  return new KubeClient(kubeAccessFromKubeConfig(kubeConfig));
}

/** Creates a namespace with a random suffix, so tests never see each other's objects. */
export async function createTestNamespace(kubeConfig: KubeConfig, prefix: string): Promise<string> {
  const name = `${prefix}-${randomBytes(4).toString('hex')}`;
  await kubeConfig.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name } } });
  return name;
}

/**
 * Deletes a test namespace. Without a controller-manager it stays Terminating, which is
 * harmless: the control plane's data is thrown away after the run.
 */
export async function deleteTestNamespace(kubeConfig: KubeConfig, name: string): Promise<void> {
  await kubeConfig.makeApiClient(CoreV1Api).deleteNamespace({ name });
}

/** The HTTP status of a failed API call, or undefined if it failed some other way. */
export function apiStatusCode(error: unknown): number | undefined {
  return error instanceof ApiException ? error.code : statusCode(error);
}

/** Runs `call`, expecting it to fail with an API error, and returns that error's status code. */
export async function expectApiError(call: () => Promise<unknown>): Promise<number> {
  try {
    await call();
  } catch (error) {
    const code = apiStatusCode(error);
    if (code === undefined) throw error;
    return code;
  }
  throw new Error('the API call succeeded, but an error was expected');
}
