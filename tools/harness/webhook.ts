// The shipped webhook configuration and admission policies, installed on a test control plane
// as they are in deploy/, with what only a real install knows filled in: the webhook is
// reached by URL (no Service routes to a process on loopback) and the operator's
// ServiceAccount lives in a test namespace.
import { readFileSync } from 'node:fs';
import type { KubeConfig } from '@kubernetes/client-node';
import { parse, stringify } from 'yaml';
import { MUTATE_PODS_PATH } from '../../src/webhook/server.js';
import { kubectlApply } from './operator.js';

const INSTALL_NAMESPACE = 'hpc-user-operator-system';
const deployText = (path: string): string => readFileSync(new URL(`../../deploy/${path}`, import.meta.url), 'utf8');

interface WebhookConfiguration {
  webhooks: { clientConfig: Record<string, unknown>; namespaceSelector: { matchExpressions: { values: string[] }[] } }[];
}

/**
 * deploy/webhook/mutating-webhook-configuration.yaml, calling `https://<address>/mutate-pods`
 * and leaving out `operatorNamespace` instead of the install's namespace. No caBundle: the
 * operator fills it in.
 */
export async function installWebhookConfiguration(admin: KubeConfig, address: string, operatorNamespace: string): Promise<void> {
  const configuration = parse(deployText('webhook/mutating-webhook-configuration.yaml')) as WebhookConfiguration;
  for (const webhook of configuration.webhooks) {
    webhook.clientConfig = { url: `https://${address}${MUTATE_PODS_PATH}` };
    for (const expression of webhook.namespaceSelector.matchExpressions) {
      expression.values = expression.values.map((ns) => (ns === INSTALL_NAMESPACE ? operatorNamespace : ns));
    }
  }
  await kubectlApply(admin, stringify(configuration));
}

/** deploy/webhook/admission-policies.yaml with the operator's ServiceAccount in `operatorNamespace`. */
export async function installAdmissionPolicies(admin: KubeConfig, operatorNamespace: string): Promise<void> {
  const text = deployText('webhook/admission-policies.yaml').replaceAll(
    `system:serviceaccount:${INSTALL_NAMESPACE}:hpc-user-operator`,
    `system:serviceaccount:${operatorNamespace}:hpc-user-operator`,
  );
  await kubectlApply(admin, text);
}
