// The shipped manifests under deploy/, as the tools read them: small to import, so a script
// that only needs a manifest (npm run node:image) does not load the test harness.
import { readFileSync } from 'node:fs';
import type { KubernetesObject } from '@kubernetes/client-node';
import { parse } from 'yaml';

/** The object `deploy/<path>` holds (one document). */
export const deployFile = (path: string): KubernetesObject =>
  parse(readFileSync(new URL(`../deploy/${path}`, import.meta.url), 'utf8')) as KubernetesObject;
