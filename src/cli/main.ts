#!/usr/bin/env node
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { isUsageError, runCommand, type Command, type DeferredCommand } from './command.js';
import { messageOf } from '../runtime/error-message.js';
import { crdCommand } from './commands/crd.js';
import { listUsersCommand } from './commands/list-users.js';
import { renderCommand } from './commands/render.js';
import { runControllerCommand } from './commands/run.js';
import { simulatorCommand } from './commands/simulator.js';

/** Every subcommand; each lives in its own module under `commands/`. */
const COMMANDS: (Command | DeferredCommand)[] = [runControllerCommand, renderCommand, crdCommand, listUsersCommand, simulatorCommand];

function usage(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length), 4);
  const lines = COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`);
  return [
    'hpc-user-operator: mirrors HPC cluster users (uid/gid, NAS home) into Kubernetes',
    '',
    'Usage: hpc-user-operator <command> [flags]',
    '',
    'Commands:',
    ...lines,
    '',
    'Run `hpc-user-operator <command> --help` for the flags of a command.',
  ].join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(`${usage()}\n`);
    return name === undefined ? 2 : 0;
  }
  const entry = COMMANDS.find((c) => c.name === name);
  if (entry === undefined) {
    process.stderr.write(`hpc-user-operator: unknown command "${name}"\n\n${usage()}\n`);
    return 2;
  }
  try {
    const command = 'load' in entry ? await entry.load() : entry;
    return await runCommand(command, rest);
  } catch (err) {
    if (isUsageError(err)) {
      process.stderr.write(`hpc-user-operator ${name}: ${err.message}\n`);
      return 2;
    }
    process.stderr.write(`hpc-user-operator ${name}: ${messageOf(err)}\n`);
    return 1;
  }
}

// Run only when executed as the program, not when imported by tests.
if (process.argv[1] !== undefined && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = await main(process.argv.slice(2));
}
