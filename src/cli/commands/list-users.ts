import { readFile } from 'node:fs/promises';
import { selectUsers } from '../../domain/select.js';
import { validateUsers } from '../../domain/validate.js';
import { DEFAULT_ID_RANGE, type HpcUser } from '../../domain/user.js';
import { HpcApiClient, type ListUsersQuery } from '../../provider/client.js';
import { ProviderError } from '../../provider/errors.js';
import { optionalString, requireString, UsageError, type Command, type FlagValues } from '../command.js';

export const ACCESS_KEY_ID_ENV = 'HPC_ACCESS_KEY_ID';
export const SECRET_ACCESS_KEY_ENV = 'HPC_SECRET_ACCESS_KEY';

function requireEnv(name: string): string {
  const value = process.env[name];
  if (value === undefined || value === '') throw new UsageError(`environment variable ${name} is not set`);
  return value;
}

function outputFlag(values: FlagValues): 'json' | 'table' {
  const output = optionalString(values, 'output') ?? 'table';
  if (output !== 'json' && output !== 'table') throw new UsageError(`--output must be json or table, got "${output}"`);
  return output;
}

function queryFlags(values: FlagValues): ListUsersQuery {
  const query: ListUsersQuery = { zone: requireString(values, 'zone') };
  const clusterId = optionalString(values, 'cluster-id');
  const userId = optionalString(values, 'user-id');
  const searchWord = optionalString(values, 'search-word');
  if (clusterId !== undefined) query.clusterId = clusterId;
  if (userId !== undefined) query.userId = userId;
  if (searchWord !== undefined) query.searchWord = searchWord;
  return query;
}

/** Aligned columns for people; validated values hold no spaces or control characters. */
export function formatUserTable(users: readonly HpcUser[]): string {
  const rows = [
    ['USERNAME', 'UID', 'GID', 'ROLE', 'NAS'],
    ...users.map((u) => [u.username, String(u.uid), String(u.gid), u.role, u.nasMountPoint]),
  ];
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  return rows
    .map((row) => row.map((cell, column) => (column === row.length - 1 ? cell : cell.padEnd(widths[column]!))).join('  '))
    .join('\n');
}

export const listUsersCommand: Command = {
  name: 'list-users',
  summary: 'List the validated users of an HPC cluster through the provider API',
  usage: `Usage: hpc-user-operator list-users --endpoint URL --zone Z [--cluster-id ID] [--user-id ID]
         [--search-word W] [--allow-insecure-http] [--ca-cert FILE] [--output json|table]

Reads every page of ListUsers (limit=100, increasing offset), checks that the pages add up,
validates each row as the operator does, and prints the users sorted by username: a table
(default) or a JSON array with the fields of the HpcCluster status. Skipped rows and a
summary go to stderr. The access key comes from the environment:
  ${ACCESS_KEY_ID_ENV}, ${SECRET_ACCESS_KEY_ENV}

Flags:
  --endpoint URL          API endpoint, e.g. https://hpc.api.shanhe.com
  --zone Z                zone of the cluster, e.g. jinan1a
  --cluster-id ID         only this cluster (without it the API lists the zone's users)
  --user-id ID            only this user
  --search-word W         fuzzy match on the user name
  --allow-insecure-http   accept a plain http:// endpoint (e.g. the local simulator)
  --ca-cert FILE          PEM bundle trusted instead of the system CAs
  --output json|table     output format (default table)

Exit status: 0 listed, 1 the API call failed (one-line reason on stderr), 2 usage error.`,
  options: {
    endpoint: { type: 'string' },
    zone: { type: 'string' },
    'cluster-id': { type: 'string' },
    'user-id': { type: 'string' },
    'search-word': { type: 'string' },
    'allow-insecure-http': { type: 'boolean' },
    'ca-cert': { type: 'string' },
    output: { type: 'string' },
  },
  async run(values, positionals) {
    if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`);
    const endpoint = requireString(values, 'endpoint');
    const query = queryFlags(values);
    const output = outputFlag(values);
    const credentials = { accessKeyId: requireEnv(ACCESS_KEY_ID_ENV), secretAccessKey: requireEnv(SECRET_ACCESS_KEY_ENV) };
    const caCertFile = optionalString(values, 'ca-cert');
    const caCert = caCertFile === undefined ? undefined : await readFile(caCertFile, 'utf8');

    let client: HpcApiClient;
    try {
      client = new HpcApiClient({
        endpoint,
        credentials,
        allowInsecureHttp: values['allow-insecure-http'] === true,
        ...(caCert === undefined ? {} : { caCert }),
      });
    } catch (err) {
      if (err instanceof ProviderError && err.details.code === 'configuration') throw new UsageError(err.message);
      throw err;
    }
    try {
      const listing = await client.listAllUsers(query);
      const { users, skipped } = selectUsers(validateUsers(listing.rows), { idRange: DEFAULT_ID_RANGE });
      process.stdout.write(`${output === 'json' ? JSON.stringify(users, null, 2) : formatUserTable(users)}\n`);
      for (const row of skipped) process.stderr.write(`skipped ${JSON.stringify(row.username)}: ${row.reason}\n`);
      process.stderr.write(
        `${users.length} users, ${skipped.length} skipped (${listing.pages} pages, ${listing.requests} requests)\n`,
      );
      return 0;
    } catch (err) {
      // The key's owner runs this: what status keeps to itself (a TLS code, an HTTP status) helps here.
      if (err instanceof ProviderError && err.details.cause !== undefined) throw new Error(`${err.message} (${err.details.cause})`, { cause: err });
      throw err;
    } finally {
      client.close();
    }
  },
};
