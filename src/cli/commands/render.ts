import { readFile } from 'node:fs/promises';
import { parseAllDocuments, stringify } from 'yaml';
import { API_VERSION, KIND, validateSpec } from '../../api/hpccluster.js';
import { credentialsFromSecret, desiredUsers, providerTarget } from '../../controller/sync.js';
import { configMapManifest } from '../../render/configmaps.js';
import { HpcUserSource } from '../../provider/user-source.js';
import { ACCESS_KEY_ID_ENV, SECRET_ACCESS_KEY_ENV } from './list-users.js';
import { optionalString, requireString, UsageError, type Command } from '../command.js';

interface ManifestLike {
  apiVersion?: unknown;
  kind?: unknown;
  metadata?: { name?: unknown; namespace?: unknown };
  spec?: unknown;
  data?: Record<string, unknown>;
  stringData?: Record<string, unknown>;
}

async function readManifests(path: string): Promise<ManifestLike[]> {
  const documents = parseAllDocuments(await readFile(path, 'utf8'));
  const list = Array.isArray(documents) ? documents : [documents];
  return list.map((doc) => {
    const error = doc.errors[0];
    if (error !== undefined) {
      // yaml's own message quotes the offending line, which may hold a secret: say where only.
      const at = error.linePos?.[0];
      throw new UsageError(`${path}: not valid YAML (${error.code}${at === undefined ? '' : ` at line ${at.line}, column ${at.col}`})`);
    }
    return (doc.toJS() ?? {}) as ManifestLike;
  });
}

/** A Secret manifest's data, decoded: `data` is base64, `stringData` plain. */
function secretData(secret: ManifestLike): Record<string, string> {
  const data: Record<string, string> = {};
  for (const [k, v] of Object.entries(secret.data ?? {})) data[k] = Buffer.from(String(v), 'base64').toString('utf8');
  for (const [k, v] of Object.entries(secret.stringData ?? {})) data[k] = String(v);
  return data;
}

export const renderCommand: Command = {
  name: 'render',
  summary: 'Sync one HpcCluster without a cluster and print its ConfigMaps as YAML',
  usage: `Usage: hpc-user-operator render -f hpccluster.yaml [--secret-file secret.yaml]

Validates the HpcCluster in the file, calls the provider's ListUsers API once (every page),
and prints the <name>-users and <name>-nss ConfigMaps exactly as the operator would write
them (without the ownerReference, which needs a live object). For GitOps repositories and
debugging. Skipped rows are reported on stderr.

Credentials come from --secret-file (the Secret the spec references, as YAML) or from the
environment: ${ACCESS_KEY_ID_ENV}, ${SECRET_ACCESS_KEY_ENV}.

Flags:
  -f, --file FILE       the HpcCluster manifest (the first HpcCluster document is used)
  --secret-file FILE    a Secret manifest holding the API keys

Exit status: 0 rendered, 1 the sync failed (one-line reason on stderr), 2 usage or spec error.`,
  options: {
    file: { type: 'string', short: 'f' },
    'secret-file': { type: 'string' },
  },
  async run(values, positionals) {
    if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`);
    const file = requireString(values, 'file');
    const object = (await readManifests(file)).find((m) => m.apiVersion === API_VERSION && m.kind === KIND);
    if (object === undefined) throw new UsageError(`${file} holds no ${KIND} of ${API_VERSION}`);
    const name = typeof object.metadata?.name === 'string' ? object.metadata.name : undefined;
    if (name === undefined) throw new UsageError(`${file}: metadata.name is missing`);
    const namespace = typeof object.metadata?.namespace === 'string' ? object.metadata.namespace : 'default';
    const validation = validateSpec(object.spec);
    if (!validation.ok) throw new UsageError(`${file}: invalid spec, fix: ${validation.message}`);
    const spec = validation.spec;

    const secretFile = optionalString(values, 'secret-file');
    let data: Record<string, string>;
    if (secretFile !== undefined) {
      const secret = (await readManifests(secretFile)).find((m) => m.kind === 'Secret');
      if (secret === undefined) throw new UsageError(`${secretFile} holds no Secret`);
      data = secretData(secret);
    } else {
      data = {
        [spec.credentialsSecretRef.accessKeyIdKey]: process.env[ACCESS_KEY_ID_ENV] ?? '',
        [spec.credentialsSecretRef.secretAccessKeyKey]: process.env[SECRET_ACCESS_KEY_ENV] ?? '',
      };
    }
    // The file is the caller's own: it needs no label to be read.
    const credentials = credentialsFromSecret(spec.credentialsSecretRef, { state: 'lent', data, resourceVersion: '' });
    if (typeof credentials === 'string') {
      throw new UsageError(secretFile === undefined ? `set ${ACCESS_KEY_ID_ENV} and ${SECRET_ACCESS_KEY_ENV}, or pass --secret-file` : credentials);
    }

    const source = new HpcUserSource();
    try {
      const answer = await source.listUsers(providerTarget(spec), credentials);
      if ('failure' in answer) throw new Error(answer.failure.message);
      const { listing } = answer;
      const { users, skipped, rendered, sizeProblem } = desiredUsers(name, spec, listing);
      for (const row of skipped) process.stderr.write(`skipped ${JSON.stringify(row.username)}: ${row.reason}\n`);
      if (sizeProblem !== undefined) throw new Error(sizeProblem);
      const documents = rendered.map((cm) => stringify(configMapManifest({ name, namespace }, cm), { lineWidth: 0 }));
      process.stdout.write(documents.map((doc) => `---\n${doc}`).join(''));
      process.stderr.write(`${users.length} users, ${skipped.length} skipped, ${listing.pages} pages\n`);
      return 0;
    } finally {
      source.close();
    }
  },
};
