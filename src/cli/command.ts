import { parseArgs, type ParseArgsConfig } from 'node:util';

type Options = NonNullable<ParseArgsConfig['options']>;

/** Parsed flag values: strings, booleans, or arrays of them for `multiple` flags. */
export type FlagValues = Record<string, string | boolean | string[] | boolean[] | undefined>;

/** One subcommand of `hpc-user-operator`. */
export interface Command {
  name: string;
  summary: string;
  /** Usage text printed by `--help`, after the summary. */
  usage: string;
  options: Options;
  /** Returns the process exit status. */
  run(values: FlagValues, positionals: string[]): Promise<number>;
}

/**
 * A command whose module is loaded only when it runs; the command list needs only its name and
 * summary. For a development tool that is not part of every install.
 */
export interface DeferredCommand {
  name: string;
  summary: string;
  load(): Promise<Command>;
}

/**
 * A user mistake on the command line: printed as one line, exit status 2. Recognised by its
 * name, since a deferred command's module brings its own copy of this class.
 */
export class UsageError extends Error {
  override name = 'UsageError';
}

export const isUsageError = (err: unknown): err is UsageError => err instanceof Error && err.name === 'UsageError';

export async function runCommand(command: Command, argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      options: { ...command.options, help: { type: 'boolean', short: 'h' } },
      allowPositionals: true,
      strict: true,
    });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (parsed.values.help === true) {
    process.stdout.write(`${command.summary}\n\n${command.usage.trim()}\n`);
    return 0;
  }
  return command.run(parsed.values, parsed.positionals);
}

/** Reads a required string flag or throws a UsageError naming it. */
export function requireString(values: FlagValues, name: string): string {
  const value = values[name];
  if (typeof value !== 'string' || value === '') throw new UsageError(`--${name} is required`);
  return value;
}

export function optionalString(values: FlagValues, name: string): string | undefined {
  const value = values[name];
  return typeof value === 'string' ? value : undefined;
}

/** An integer flag of at least `min`, or `fallback` when absent; anything else is a UsageError. */
export function integerFlag(values: FlagValues, name: string, fallback: number, min: number): number {
  const text = optionalString(values, name);
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!/^\d+$/.test(text) || value < min) {
    const kind = min === 0 ? 'a non-negative integer' : min === 1 ? 'a positive integer' : `an integer of at least ${min}`;
    throw new UsageError(`--${name} must be ${kind}, got "${text}"`);
  }
  return value;
}
