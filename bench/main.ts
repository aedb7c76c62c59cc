// `npm run bench`: every benchmark of the project, one after the other.
// `npm run bench -- --only provider|controller|budget|webhook|scale|timeline` runs one of them.
import { parseArgs } from 'node:util';
import { benchBudget } from './budget.js';
import { benchController } from './controller.js';
import { benchProvider } from './provider.js';
import { benchScale } from './scale.js';
import { benchTimeline } from './timeline.js';
import { benchWebhook } from './webhook.js';

const benchmarks = { provider: benchProvider, controller: benchController, budget: benchBudget, webhook: benchWebhook, scale: benchScale, timeline: benchTimeline };
const { only } = parseArgs({ options: { only: { type: 'string' } } }).values;
if (only !== undefined && !(only in benchmarks)) throw new Error(`--only must be one of ${Object.keys(benchmarks).join(', ')}, got "${only}"`);
for (const [name, bench] of Object.entries(benchmarks)) {
  if (only === undefined || only === name) await bench();
}
