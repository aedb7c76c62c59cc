import { z } from 'zod';
import { stringify } from 'yaml';
import {
  CATEGORY,
  GROUP,
  hpcClusterSpecSchema,
  hpcClusterStatusSchema,
  KIND,
  PLURAL,
  SHORT_NAME,
  SINGULAR,
  VERSION,
} from './hpccluster.js';

type JsonSchema = Record<string, unknown>;

/**
 * A zod JSON Schema made into what a structural CRD schema allows: no `$schema`, and
 * nothing that apiextensions.k8s.io/v1 rejects. Input mode, so fields with defaults are
 * not required.
 */
function openApiSchemaOf(schema: z.ZodType): JsonSchema {
  const json = z.toJSONSchema(schema, { io: 'input', target: 'openapi-3.0' }) as JsonSchema;
  delete json.$schema;
  return json;
}

export function buildCrd(): Record<string, unknown> {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: {
      name: `${PLURAL}.${GROUP}`,
      labels: { 'app.kubernetes.io/name': 'hpc-user-operator', 'app.kubernetes.io/part-of': 'hpc-user-operator' },
    },
    spec: {
      group: GROUP,
      scope: 'Namespaced',
      names: { kind: KIND, listKind: `${KIND}List`, plural: PLURAL, singular: SINGULAR, shortNames: [SHORT_NAME], categories: [CATEGORY] },
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: [
            { name: 'Cluster ID', type: 'string', jsonPath: '.spec.clusterId' },
            { name: 'Zone', type: 'string', jsonPath: '.spec.zone' },
            { name: 'Users', type: 'integer', jsonPath: '.status.userCount' },
            { name: 'Ready', type: 'string', jsonPath: '.status.conditions[?(@.type=="Ready")].status' },
            { name: 'Reason', type: 'string', jsonPath: '.status.conditions[?(@.type=="Ready")].reason', priority: 1 },
            { name: 'Last Sync', type: 'date', jsonPath: '.status.lastSuccessfulSyncTime' },
            { name: 'Interval', type: 'string', jsonPath: '.spec.syncInterval', priority: 1 },
            { name: 'Effective Interval', type: 'string', jsonPath: '.status.effectiveSyncInterval', priority: 1 },
            { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
          ],
          schema: {
            openAPIV3Schema: {
              type: 'object',
              description:
                'HpcCluster mirrors the users of one Shanhe Cloud / QingCloud HPC cluster (uid/gid, NAS home) into its status and into ConfigMaps that pods consume.',
              required: ['spec'],
              properties: {
                apiVersion: { type: 'string', description: 'APIVersion of this object: hpc.shanhe.com/v1alpha1.' },
                kind: { type: 'string', description: 'Kind of this object: HpcCluster.' },
                metadata: { type: 'object' },
                spec: openApiSchemaOf(hpcClusterSpecSchema),
                status: openApiSchemaOf(hpcClusterStatusSchema),
              },
            },
          },
        },
      ],
    },
  };
}

/** The CRD as the YAML committed in crds/ and printed by `hpc-user-operator crd`. */
export function crdYaml(): string {
  return `# Generated from src/api/hpccluster.ts by \`npm run manifests\` (also \`hpc-user-operator crd\`); do not edit by hand.\n${stringify(buildCrd(), { lineWidth: 0 })}`;
}
