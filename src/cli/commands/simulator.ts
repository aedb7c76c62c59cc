import { existsSync } from 'node:fs';
import type { Command, DeferredCommand } from '../command.js';

// The provider API simulator is a development tool: it lives in tools/simulator/, outside the
// build and the image. In a checkout (which has tools/ and the dev dependency tsx) this loads
// its TypeScript source through tsx, from src/ and dist/ alike; an installed operator says
// where to get it instead.
const source = new URL('../../../tools/simulator/command.ts', import.meta.url);

export const simulatorCommand: DeferredCommand = {
  name: 'simulator',
  summary: 'Run the provider API simulator (a development tool: from a checkout only)',
  async load() {
    if (!existsSync(source)) {
      throw new Error('the provider API simulator is a development tool, not part of this install: run it from a checkout of the repository (npm run simulator -- --help)');
    }
    const { tsImport } = await import('tsx/esm/api');
    const loaded = (await tsImport(source.href, import.meta.url)) as { simulatorCommand: Command };
    return loaded.simulatorCommand;
  },
};
