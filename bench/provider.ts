import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { validateUsers } from '../src/domain/validate.js';
import { HpcApiClient } from '../src/provider/client.js';
import { TokenBucket } from '../src/provider/rate-limiter.js';
import { DEV_ACCESS_KEY } from '../tools/simulator/server.js';

/**
 * The provider client listing every user of a simulated cluster. The simulator runs in a
 * child process, so the memory reported here is the client's alone (plus this process's
 * baseline). The client's rate limiter is lifted: the provider's 2,000 calls an hour would
 * make this a benchmark of the limiter.
 */

const CLUSTER_ID = 'hpc-bench';
const SIMULATOR_PROCESS = fileURLToPath(new URL('./simulator-process.ts', import.meta.url));
const MEMORY_SAMPLE_MS = 5;
/** Runs per case; the median wall time is reported (two CPUs shared with the simulator are noisy). */
const REPETITIONS = 3;

// A collection before each run, so the heap growth measured is the listing's own.
setFlagsFromString('--expose-gc');
const collectGarbage = runInNewContext('gc') as () => void;

export interface ProviderBenchCase {
  users: number;
  pageConcurrency: number;
}

export interface ProviderBenchResult extends ProviderBenchCase {
  wallMs: number;
  pages: number;
  requests: number;
  requestsPerSecond: number;
  peakRssMb: number;
  peakHeapUsedMb: number;
  /** Peak heap used above the heap used just before the run (after a collection). */
  heapGrowthMb: number;
}

export const DEFAULT_SIZES = [10_000, 100_000];
/** The client's default (4) first; the others show what the bound buys. */
export const DEFAULT_CONCURRENCIES = [4, 1, 8];

async function startSimulatorProcess(users: number): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', SIMULATOR_PROCESS, CLUSTER_ID, String(users)],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const lines = createInterface({ input: child.stdout });
  const exited = once(child, 'exit').then(([code]) => {
    throw new Error(`simulator exited (status ${String(code)}) before it listened`);
  });
  const listening = once(lines, 'line').then(([line]) => (JSON.parse(line as string) as { url: string }).url);
  const url = await Promise.race([listening, exited]);
  lines.close();
  return { url, child };
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  await exited;
}

const mb = (bytes: number) => Math.round((bytes / 1024 / 1024) * 10) / 10;

interface Run {
  wallMs: number;
  pages: number;
  requests: number;
  peakRss: number;
  peakHeapUsed: number;
  heapGrowth: number;
}

async function listOnce(client: HpcApiClient, users: number): Promise<Run> {
  collectGarbage();
  const before = process.memoryUsage();
  let peakRss = before.rss;
  let peakHeap = before.heapUsed;
  const sample = () => {
    const now = process.memoryUsage();
    peakRss = Math.max(peakRss, now.rss);
    peakHeap = Math.max(peakHeap, now.heapUsed);
  };
  const sampler = setInterval(sample, MEMORY_SAMPLE_MS);
  try {
    const started = performance.now();
    const listing = await client.listAllUsers({ zone: 'jinan1a', clusterId: CLUSTER_ID });
    const { users: valid } = validateUsers(listing.rows);
    const wallMs = performance.now() - started;
    sample();
    if (valid.length !== users) throw new Error(`expected ${users} valid users, got ${valid.length}`);
    return {
      wallMs,
      pages: listing.pages,
      requests: listing.requests,
      peakRss,
      peakHeapUsed: peakHeap,
      heapGrowth: peakHeap - before.heapUsed,
    };
  } finally {
    clearInterval(sampler);
  }
}

function summarise(benchCase: ProviderBenchCase, runs: readonly Run[]): ProviderBenchResult {
  const median = [...runs].sort((a, b) => a.wallMs - b.wallMs)[Math.floor(runs.length / 2)]!;
  return {
    ...benchCase,
    wallMs: Math.round(median.wallMs),
    pages: median.pages,
    requests: median.requests,
    requestsPerSecond: Math.round(median.requests / (median.wallMs / 1000)),
    peakRssMb: mb(Math.max(...runs.map((r) => r.peakRss))),
    peakHeapUsedMb: mb(Math.max(...runs.map((r) => r.peakHeapUsed))),
    heapGrowthMb: mb(Math.max(...runs.map((r) => r.heapGrowth))),
  };
}

/** One simulator of `users` users; one warm-up listing, then each concurrency in turn. */
async function benchSize(users: number, concurrencies: readonly number[]): Promise<ProviderBenchResult[]> {
  const { url, child } = await startSimulatorProcess(users);
  const clientWith = (pageConcurrency: number) =>
    new HpcApiClient({
      endpoint: url,
      credentials: { accessKeyId: DEV_ACCESS_KEY.id, secretAccessKey: DEV_ACCESS_KEY.secret },
      allowInsecureHttp: true,
      pageConcurrency,
      rateLimiter: new TokenBucket({ capacity: 1e9, refill: 1e9, intervalMs: 1 }),
    });
  try {
    const warmUp = clientWith(concurrencies[0] ?? 4);
    await listOnce(warmUp, users).finally(() => warmUp.close());
    const results: ProviderBenchResult[] = [];
    for (const pageConcurrency of concurrencies) {
      const client = clientWith(pageConcurrency);
      try {
        const runs: Run[] = [];
        for (let i = 0; i < REPETITIONS; i++) runs.push(await listOnce(client, users));
        results.push(summarise({ users, pageConcurrency }, runs));
      } finally {
        client.close();
      }
    }
    return results;
  } finally {
    await stop(child);
  }
}

function formatResults(results: readonly ProviderBenchResult[]): string {
  const header = ['users', 'concurrency', 'wall ms', 'pages', 'requests', 'req/s', 'peak RSS MB', 'peak heap MB', 'heap growth MB'];
  const rows = results.map((r) =>
    [r.users, r.pageConcurrency, r.wallMs, r.pages, r.requests, r.requestsPerSecond, r.peakRssMb, r.peakHeapUsedMb, r.heapGrowthMb].map(String),
  );
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  return [header, ...rows].map((row) => row.map((cell, i) => cell.padStart(widths[i]!)).join('  ')).join('\n');
}

/** Lists every user of simulated clusters of each size; prints and returns the numbers. */
export async function benchProvider(
  sizes: readonly number[] = DEFAULT_SIZES,
  concurrencies: readonly number[] = DEFAULT_CONCURRENCIES,
): Promise<ProviderBenchResult[]> {
  const results: ProviderBenchResult[] = [];
  for (const users of sizes) results.push(...(await benchSize(users, concurrencies)));
  process.stdout.write(
    `provider client: listAllUsers + validateUsers against the simulator (child process, loopback HTTP);\n` +
      `median wall time of ${REPETITIONS} runs after a warm-up, peak memory of the client process\n${formatResults(results)}\n`,
  );
  return results;
}
