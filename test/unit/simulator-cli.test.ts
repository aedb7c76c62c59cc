// `hpc-user-operator simulator` as a child process, the way benchmarks and `npm run dev` run it.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { describe, expect, it } from '@jest/globals';
import { runCommand } from '../../src/cli/command.js';
import { simulatorCommand } from '../../tools/simulator/command.js';
import { signedGet } from '../support/simulator-http.js';

interface ReadyLine {
  url: string;
  accessKeyIds: string[];
  clusters: { id: string; zone: string; userCount: number }[];
}

describe('hpc-user-operator simulator', () => {
  it('prints its URL as the first stdout line, serves, and exits 0 on SIGTERM', async () => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', 'src/cli/main.ts', 'simulator', '--port', '0', '--generate', '1000', '--access-key', 'KEY:SECRET', '--quota', '5/60', '--zone', 'jinan2a'],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
    try {
      const firstLine = await Promise.race([
        once(createInterface({ input: child.stdout }), 'line') as Promise<[string]>,
        exited.then(([code]) => Promise.reject(new Error(`simulator exited with ${code} before listening`))),
      ]);
      const ready = JSON.parse(firstLine[0]) as ReadyLine;
      expect(ready.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect(ready).toMatchObject({ accessKeyIds: ['KEY'], clusters: [{ id: 'hpc-qig9xu97', zone: 'jinan2a', userCount: 1000 }] });
      expect(JSON.stringify(ready)).not.toContain('SECRET');

      const request = { key: { id: 'KEY', secret: 'SECRET' }, params: { zone: 'jinan2a', cluster_id: 'hpc-qig9xu97' } };
      const answer = await signedGet(ready, request);
      expect(answer.json).toMatchObject({ ret_code: 0, total_count: 1000 });
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toEqual([0, null]);
  }, 30_000);

  it('exits 2 with one line on a usage error from the loaded command', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'simulator', '--quota', '2000'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    expect(await once(child, 'close')).toEqual([2, null]);
    expect(stderr).toBe('hpc-user-operator simulator: --quota must be CALLS/SECONDS, e.g. 2000/3600, got "2000"\n');
  }, 30_000);

  it.each([
    [['--access-key', 'no-colon'], '--access-key must be ID:SECRET'],
    [['--users', 'users.yaml', '--generate', '10'], 'give --users or --generate, not both'],
    [['--quota', '2000'], '--quota must be CALLS/SECONDS'],
    [['--generate', 'many'], '--generate must be a non-negative integer'],
  ])('refuses %j as a usage error (exit status 2)', async (argv, message) => {
    // The command itself: the CLI loads it through tsx, which cannot hook Jest's module loader.
    await expect(runCommand(simulatorCommand, argv)).rejects.toMatchObject({ name: 'UsageError', message: expect.stringContaining(message) });
  });
});
