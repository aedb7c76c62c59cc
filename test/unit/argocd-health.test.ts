// The Argo CD health check (deploy/argocd/health.lua) run by gopher-lua the way Argo CD runs it,
// on objects whose status comes from the operator's own nextStatus, so the fixtures cannot drift
// from what the operator writes.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from '@jest/globals';
import { parse } from 'yaml';
import { API_VERSION, KIND, type HpcClusterStatus } from '../../src/api/hpccluster.js';
import { nextStatus, type SyncOutcome } from '../../src/controller/status.js';
import type { FailureReason, Retry } from '../../src/domain/failure.js';
import type { HpcUser } from '../../src/domain/user.js';
import { buildHealthRunner } from '../../tools/argocd/build.js';
import { syncIdOf } from '../../src/render/configmaps.js';
import { cmPatchPath, HEALTH_KEY, healthScriptPath, readHealthScript } from '../../tools/argocd/cm-patch.js';

interface Health {
  status?: string;
  message?: string;
  error?: string;
}

const t0 = new Date('2026-01-01T00:00:00Z');
const later = (seconds: number) => new Date(t0.getTime() + seconds * 1000);
const configMaps = ['chem-lab-users', 'chem-lab-nss'];
const users = (n: number): HpcUser[] =>
  Array.from({ length: n }, (_, i) => ({ username: `u${i}`, uid: 2000 + i, gid: 2000 + i, role: 'member' as const, nasMountPoint: `/h/${i}`, userId: `usr-${i}`, hpcUserId: `h-${i}` }));
const synced = (n: number): SyncOutcome => ({ reason: 'Synced', users: users(n), skipped: [], usersDigest: syncIdOf(users(n)) });
/** Each failure with the retry the operator gives it. */
const RETRY: Record<FailureReason, Retry> = {
  InvalidSpec: 'never',
  CredentialsNotFound: 'never',
  AuthenticationFailed: 'never',
  EndpointNotAllowed: 'never',
  ListUsersFailed: 'backoff',
  SyncLimitExceeded: 'never',
  QuotaExceeded: { afterMs: 900_000 },
  ConfigMapTooLarge: { afterMs: 600_000 },
  ConfigMapConflict: { afterMs: 600_000 },
  ConfigMapWriteFailed: 'backoff',
  RemovalHeld: { afterMs: 600_000 },
};
const failed = (reason: FailureReason, message: string): SyncOutcome => ({ reason, message, retry: RETRY[reason] });

const hpcCluster = (generation: number, status?: HpcClusterStatus) =>
  // A JSON round trip, as the object reaches Argo CD: fields left undefined disappear.
  JSON.parse(
    JSON.stringify({
      apiVersion: API_VERSION,
      kind: KIND,
      metadata: { name: 'chem-lab', namespace: 'research', generation },
      spec: { clusterId: 'hpc-qig9xu97', zone: 'jinan1a', credentialsSecretRef: { name: 'shanhe-api-key' } },
      status,
    }),
  ) as unknown;

// Generation 1 synced 42 users; the cases below continue from it.
const syncedAt1 = nextStatus(undefined, 1, synced(42), t0, configMaps);
const after = (generation: number, outcome: SyncOutcome) => hpcCluster(generation, nextStatus(syncedAt1, generation, outcome, later(60), configMaps));

const cases: { name: string; object: unknown; status: string; message: string | RegExp }[] = [
  { name: 'a new object the operator has not reconciled', object: hpcCluster(1), status: 'Progressing', message: 'waiting for the operator to reconcile this HpcCluster' },
  {
    name: 'a spec change the operator has not observed yet',
    object: hpcCluster(2, syncedAt1),
    status: 'Progressing',
    message: 'waiting for the operator to observe generation 2 (status is at generation 1)',
  },
  { name: 'Ready, Synced', object: hpcCluster(1, syncedAt1), status: 'Healthy', message: '42 users synced' },
  { name: 'Ready, Suspended', object: after(2, { reason: 'Suspended' }), status: 'Suspended', message: /^Suspended: no API calls/ },
  {
    name: 'Reconciling: a new generation retried after ListUsersFailed',
    object: after(2, failed('ListUsersFailed', 'HTTP 503')),
    status: 'Progressing',
    message: 'ListUsersFailed: generation 2 not yet synced: HTTP 503',
  },
  {
    name: 'Reconciling: the first sync of a new object waits for the quota',
    object: hpcCluster(1, nextStatus(undefined, 1, failed('QuotaExceeded', 'ret_code 2500'), t0, configMaps)),
    status: 'Progressing',
    message: 'QuotaExceeded: generation 1 not yet synced: ret_code 2500',
  },
  {
    name: 'Stalled, AuthenticationFailed',
    object: after(1, failed('AuthenticationFailed', 'ret_code 1200; check the access key in the credentials Secret')),
    status: 'Degraded',
    message: 'AuthenticationFailed: ret_code 1200; check the access key in the credentials Secret',
  },
  { name: 'Stalled, InvalidSpec on a new generation', object: after(2, failed('InvalidSpec', 'spec.zone is required')), status: 'Degraded', message: 'InvalidSpec: spec.zone is required' },
  { name: 'Ready False, ListUsersFailed after a good sync', object: after(1, failed('ListUsersFailed', 'HTTP 503')), status: 'Degraded', message: 'ListUsersFailed: HTTP 503' },
  { name: 'Ready False, QuotaExceeded after a good sync', object: after(1, failed('QuotaExceeded', 'ret_code 2500')), status: 'Degraded', message: 'QuotaExceeded: ret_code 2500' },
  {
    name: 'Ready False, RemovalHeld',
    object: after(1, failed('RemovalHeld', 'the sync would remove 30 of 42 users')),
    status: 'Degraded',
    message: 'RemovalHeld: the sync would remove 30 of 42 users',
  },
  {
    name: 'RemovalHeld on a new generation, though Reconciling',
    object: after(2, failed('RemovalHeld', 'the sync would remove 30 of 42 users')),
    status: 'Degraded',
    message: 'RemovalHeld: the sync would remove 30 of 42 users',
  },
  {
    name: 'ConfigMapTooLarge on the first sync, though Reconciling',
    object: hpcCluster(1, nextStatus(undefined, 1, failed('ConfigMapTooLarge', 'narrow spec.filter'), t0, configMaps)),
    status: 'Degraded',
    message: 'ConfigMapTooLarge: narrow spec.filter',
  },
  {
    name: 'ConfigMapConflict on the first sync, though Reconciling',
    object: hpcCluster(1, nextStatus(undefined, 1, failed('ConfigMapConflict', 'ConfigMap lab-users already exists'), t0, configMaps)),
    status: 'Degraded',
    message: 'ConfigMapConflict: ConfigMap lab-users already exists',
  },
];

/** Runs the health script on each object in one runner process; results in the same order. */
function evaluate(runner: string, objects: unknown[]): Promise<Health[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(runner, [healthScriptPath], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolve(JSON.parse(stdout) as Health[]);
      else reject(new Error(`health runner exited with ${String(code)}: ${stderr}`));
    });
    child.stdin.end(JSON.stringify(objects));
  });
}

describe('Argo CD health check for HpcCluster', () => {
  let results: Health[] = [];

  beforeAll(async () => {
    // Cached after the first build; a cold build (module download, compile) takes about 30 s.
    const runner = await buildHealthRunner();
    results = await evaluate(
      runner,
      cases.map((c) => c.object),
    );
  }, 300_000);

  it.each(cases.map((c, index) => ({ ...c, index })))('$name: $status', ({ index, status, message }) => {
    const result = results[index];
    expect(result?.error).toBeUndefined();
    expect(result?.status).toBe(status);
    expect(result?.message).toMatch(message);
  });
});

describe('argocd-cm patch', () => {
  it('carries health.lua byte for byte under the key Argo CD reads for HpcCluster', () => {
    const patch = parse(readFileSync(cmPatchPath, 'utf8')) as { kind: string; metadata: { name: string }; data: Record<string, string> };
    expect(patch.kind).toBe('ConfigMap');
    expect(patch.metadata.name).toBe('argocd-cm');
    expect(HEALTH_KEY).toBe('resource.customizations.health.hpc.shanhe.com_HpcCluster');
    expect(patch.data[HEALTH_KEY]).toBe(readHealthScript());
  });
});
