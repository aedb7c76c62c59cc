// The simulator as a child of a benchmark: `node --import tsx bench/simulator-process.ts CLUSTER N`
// serves N generated users in CLUSTER and prints its URL once it listens. Only the simulator
// module is loaded, so the child does not depend on the rest of the CLI.
import { startSimulator } from '../tools/simulator/server.js';
import { generateUsers } from '../tools/simulator/store.js';

const [clusterId = 'hpc-bench', count = '0'] = process.argv.slice(2);
const simulator = await startSimulator({
  clusters: [{ id: clusterId, users: generateUsers(Number(count), 1) }],
  quota: { limit: Number.MAX_SAFE_INTEGER, windowSeconds: 3600 },
});
process.stdout.write(`${JSON.stringify({ url: simulator.url })}\n`);
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => void simulator.close());
}
