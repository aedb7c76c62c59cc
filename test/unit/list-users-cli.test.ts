// `hpc-user-operator list-users`, run in-process against the simulator.
import { afterAll, afterEach, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { main } from '../../src/cli/main.js';
import { DEV_ACCESS_KEY, startSimulator, type Simulator } from '../../tools/simulator/server.js';

const CLUSTER = 'hpc-qig9xu97';
let sim: Simulator;

beforeAll(async () => {
  sim = await startSimulator({
    clusters: [
      {
        id: CLUSTER,
        users: [
          { username: 'bob', uid: 41523, gid: 41500, role: 'admin', nasMountPoint: '/public/shanhe/bob', userId: 'usr-bob', hpcUserId: 'hpcuser-bob' },
          { username: 'alice', uid: 41522, gid: 41500, role: 'member', nasMountPoint: '/public/shanhe/alice', userId: 'usr-alice', hpcUserId: 'hpcuser-alice' },
        ],
      },
    ],
  });
});

afterAll(() => sim.close());

afterEach(() => {
  sim.clearFaults();
  delete process.env.HPC_ACCESS_KEY_ID;
  delete process.env.HPC_SECRET_ACCESS_KEY;
});

async function run(argv: string[], env: { id?: string; secret?: string } = { id: DEV_ACCESS_KEY.id, secret: DEV_ACCESS_KEY.secret }) {
  if (env.id !== undefined) process.env.HPC_ACCESS_KEY_ID = env.id;
  if (env.secret !== undefined) process.env.HPC_SECRET_ACCESS_KEY = env.secret;
  const out = jest.spyOn(process.stdout, 'write').mockImplementation(() => true);
  const err = jest.spyOn(process.stderr, 'write').mockImplementation(() => true);
  try {
    const status = await main(['list-users', ...argv]);
    const text = (spy: typeof out) => spy.mock.calls.map((call) => String(call[0])).join('');
    return { status, stdout: text(out), stderr: text(err) };
  } finally {
    out.mockRestore();
    err.mockRestore();
  }
}

const target = () => ['--endpoint', sim.url, '--zone', 'jinan1a', '--cluster-id', CLUSTER, '--allow-insecure-http'];

describe('list-users', () => {
  it('prints the validated users as JSON with the status fields, sorted by username', async () => {
    const { status, stdout, stderr } = await run([...target(), '--output', 'json']);
    expect(status).toBe(0);
    expect(JSON.parse(stdout)).toEqual([
      { username: 'alice', uid: 41522, gid: 41500, role: 'member', nasMountPoint: '/public/shanhe/alice', userId: 'usr-alice', hpcUserId: 'hpcuser-alice' },
      { username: 'bob', uid: 41523, gid: 41500, role: 'admin', nasMountPoint: '/public/shanhe/bob', userId: 'usr-bob', hpcUserId: 'hpcuser-bob' },
    ]);
    expect(stderr).toBe('2 users, 0 skipped (1 pages, 1 requests)\n');
  });

  it('prints an aligned table by default', async () => {
    const { status, stdout } = await run(target());
    expect(status).toBe(0);
    expect(stdout).toBe(
      [
        'USERNAME  UID    GID    ROLE    NAS',
        'alice     41522  41500  member  /public/shanhe/alice',
        'bob       41523  41500  admin   /public/shanhe/bob',
        '',
      ].join('\n'),
    );
  });

  it('reports skipped rows on stderr, one line each', async () => {
    sim.setFaults({ invalidRows: ['bad-username', 'nas-parent-segment'] });
    const { status, stdout, stderr } = await run([...target(), '--output', 'json']);
    expect(status).toBe(0);
    expect((JSON.parse(stdout) as unknown[]).length).toBe(2);
    expect(stderr).toContain('skipped "bad:name": username has characters outside [A-Za-z0-9._-]\n');
    expect(stderr).toContain('skipped "invalid-nas-parent-segment": nasMountPoint has a ".." segment\n');
    expect(stderr).toContain('2 users, 2 skipped');
  });

  it('passes user_id and search_word to the API', async () => {
    const byUser = await run([...target(), '--output', 'json', '--user-id', 'usr-bob']);
    expect((JSON.parse(byUser.stdout) as { username: string }[]).map((u) => u.username)).toEqual(['bob']);
    const bySearch = await run([...target(), '--output', 'json', '--search-word', 'ali']);
    expect((JSON.parse(bySearch.stdout) as { username: string }[]).map((u) => u.username)).toEqual(['alice']);
  });

  it('exits 1 with a one-line reason that does not quote the secret', async () => {
    const secret = 'not-the-right-secret';
    const { status, stdout, stderr } = await run(target(), { id: DEV_ACCESS_KEY.id, secret });
    expect(status).toBe(1);
    expect(stdout).toBe('');
    expect(stderr).toMatch(/^hpc-user-operator list-users: ListUsers http:\/\/127\.0\.0\.1:\d+ zone=jinan1a cluster=hpc-qig9xu97 offset=0: ret_code 1200[^\n]*\n$/);
    expect(stderr).not.toContain(secret);
  });

  it.each([
    ['no access key in the environment', [], {}, 'environment variable HPC_ACCESS_KEY_ID is not set'],
    ['no secret in the environment', [], { id: 'X' }, 'environment variable HPC_SECRET_ACCESS_KEY is not set'],
    ['an unknown output format', ['--output', 'yaml'], undefined, '--output must be json or table, got "yaml"'],
    ['an unexpected argument', ['extra'], undefined, 'unexpected argument "extra"'],
  ])('exits 2 on %s', async (_name, extra, env, message) => {
    const { status, stderr } = await run([...target(), ...extra], env);
    expect(status).toBe(2);
    expect(stderr).toContain(message);
    expect(stderr.trim().split('\n')).toHaveLength(1);
  });

  it('exits 2 on a plain http endpoint without --allow-insecure-http', async () => {
    const { status, stderr } = await run(['--endpoint', sim.url, '--zone', 'jinan1a']);
    expect(status).toBe(2);
    expect(stderr).toMatch(/^hpc-user-operator list-users: endpoint http:\/\/127\.0\.0\.1:\d+ is plain http; allow insecure http explicitly to use it\n$/);
  });

  it('exits 2 without --zone', async () => {
    const { status, stderr } = await run(['--endpoint', sim.url, '--allow-insecure-http']);
    expect(status).toBe(2);
    expect(stderr).toBe('hpc-user-operator list-users: --zone is required\n');
  });
});
