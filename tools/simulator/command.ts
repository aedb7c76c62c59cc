import { integerFlag, UsageError, optionalString, type Command, type FlagValues } from '../../src/cli/command.js';
import { DEV_ACCESS_KEY, startSimulator, type AccessKey } from './server.js';
import { DEFAULT_ZONE, generateUsers, loadUsersFile, type ClusterSeed } from './store.js';
import type { QuotaConfig } from './quota.js';

const DEFAULT_CLUSTER_ID = 'hpc-qig9xu97';

function accessKeysFlag(values: FlagValues): AccessKey[] {
  const given = values['access-key'];
  if (!Array.isArray(given) || given.length === 0) return [DEV_ACCESS_KEY];
  return given.map((text) => {
    const colon = String(text).indexOf(':');
    if (colon <= 0 || colon === String(text).length - 1) throw new UsageError('--access-key must be ID:SECRET');
    return { id: String(text).slice(0, colon), secret: String(text).slice(colon + 1) };
  });
}

function quotaFlag(values: FlagValues): QuotaConfig | undefined {
  const text = optionalString(values, 'quota');
  if (text === undefined) return undefined;
  const match = /^(\d+)\/(\d+)$/.exec(text);
  if (match === null || Number(match[2]) === 0) throw new UsageError(`--quota must be CALLS/SECONDS, e.g. 2000/3600, got "${text}"`);
  return { limit: Number(match[1]), windowSeconds: Number(match[2]) };
}

async function clustersFlag(values: FlagValues, seed: number): Promise<ClusterSeed[]> {
  const file = optionalString(values, 'users');
  const generate = optionalString(values, 'generate');
  if (file !== undefined && generate !== undefined) throw new UsageError('give --users or --generate, not both');
  if (file !== undefined) return loadUsersFile(file);
  const id = optionalString(values, 'cluster-id') ?? DEFAULT_CLUSTER_ID;
  return [{ id, users: generateUsers(integerFlag(values, 'generate', 0, 0), seed) }];
}

export const simulatorCommand: Command = {
  name: 'simulator',
  summary: 'Run the provider ListUsers API simulator (for tests, npm run dev and benchmarks)',
  usage: `Usage: hpc-user-operator simulator [--port P] [--host H] [--users FILE | --generate N]
         [--cluster-id ID] [--zone Z] [--access-key ID:SECRET ...] [--quota N/SECONDS] [--seed S]

Serves GET /api/user like the provider documents it: signature (HmacSHA256, version 1),
60 s timestamp window, limit (default 10, at most 100), offset, cluster_id, user_id,
search_word, and a per-key call quota. Prints one JSON line on stdout once it listens:
  {"url":"http://127.0.0.1:PORT","accessKeyIds":[...],"clusters":[{"id":...,"zone":...,"userCount":N}]}
SIGINT or SIGTERM stops it (exit 0).

Flags:
  --port P               port to listen on; 0 (default) picks a free one
  --host H               address to bind (default 127.0.0.1; the admin endpoint has no auth)
  --users FILE           users from a JSON or YAML file:
                           clusters:
                           - id: hpc-qig9xu97
                             zone: jinan1a            # optional, default --zone
                             users:
                             - {username: alice, uid: 1001, gid: 1001, role: member,
                                nasMountPoint: /public/shanhe/alice}
                         only username, uid, gid are required; also userId, hpcUserId, mod,
                         createTime, updateTime
  --generate N           N generated users (deterministic for a --seed) in --cluster-id
  --cluster-id ID        cluster of generated users (default ${DEFAULT_CLUSTER_ID}); empty without --generate
  --zone Z               zone of clusters that name none (default ${DEFAULT_ZONE})
  --access-key ID:SECRET accepted key pair, repeatable; default the dev pair
                         ${DEV_ACCESS_KEY.id}:${DEV_ACCESS_KEY.secret}
  --quota N/SECONDS      calls allowed per access key per window (default 2000/3600), then 2500
  --seed S               seed of generated users and rate-based faults (default 1)

Answers: 1100 bad or missing parameter, 1200 unknown key or bad signature, 1300 timestamp
off by more than 60 s, 2100 unknown zone or cluster (or a cluster of another zone),
2500 quota spent. Without cluster_id it lists every cluster of the zone.

Admin endpoint (same port, JSON; for tests and local development):
  GET    /_admin/stats                         requests served, by ret_code, HTTP status, key
  POST   /_admin/reset-stats
  GET|PATCH|DELETE /_admin/faults              read, change, clear injected faults
  GET    /_admin/clusters
  GET|PUT|POST /_admin/clusters/ID/users       list, replace ({zone?, users}), add one user
  PATCH|DELETE /_admin/clusters/ID/users/NAME  change or remove one user
Faults (PATCH /_admin/faults), e.g. {"error":{"retCode":5100,"next":2}}:
  error {retCode, next|rate}, http5xx {status, next|rate}, hang {next|rate},
  truncateJson {next|rate}, latencyMs, totalCountDelta, duplicateRows, mutateBetweenPages,
  listKey ("user_set"|"users_set"), invalidRows (["bad-username", "uid-zero",
  "uid-not-a-number", "relative-nas", "nas-parent-segment", "bad-role"])`,
  options: {
    port: { type: 'string' },
    host: { type: 'string' },
    users: { type: 'string' },
    generate: { type: 'string' },
    'cluster-id': { type: 'string' },
    zone: { type: 'string' },
    'access-key': { type: 'string', multiple: true },
    quota: { type: 'string' },
    seed: { type: 'string' },
  },
  async run(values) {
    const seed = integerFlag(values, 'seed', 1, 0);
    const accessKeys = accessKeysFlag(values);
    const simulator = await startSimulator({
      port: integerFlag(values, 'port', 0, 0),
      host: optionalString(values, 'host'),
      accessKeys,
      clusters: await clustersFlag(values, seed),
      zone: optionalString(values, 'zone'),
      quota: quotaFlag(values),
      seed,
    });
    const ready = { url: simulator.url, accessKeyIds: accessKeys.map((key) => key.id), clusters: simulator.clusters() };
    process.stdout.write(`${JSON.stringify(ready)}\n`);
    await new Promise<void>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
    });
    await simulator.close();
    return 0;
  },
};
