import { parseArgs, type ParseArgsConfig } from 'node:util';

/** What a program's composition root needs to tell its user off: its name, its usage, how to leave. */
export interface CommandLineProgram {
  /** Prefix of the one line, e.g. `cascade-relay`. */
  name: string;
  usage: string;
  /** Default: to stderr. */
  print?: (text: string) => void;
  /** Default: process.exit. */
  exit?: (status: number) => never;
}

/** Exit status of a bad command line. */
export const USAGE_EXIT_STATUS = 2;

/** A bad command line: one line saying what is wrong, the usage, exit status 2. */
export function usageError(program: CommandLineProgram, what: string): never {
  (program.print ?? ((t) => process.stderr.write(`${t}\n`)))(`${program.name}: ${what}\n\n${program.usage}`);
  return (program.exit ?? ((s) => process.exit(s)))(USAGE_EXIT_STATUS);
}

/**
 * node:util's parseArgs for a composition root: an unknown flag or a missing value is
 * usageError() (one line and the usage, not a stack trace); anything else is thrown on.
 */
export function parseCommandLine<T extends ParseArgsConfig>(program: CommandLineProgram, config: T): ReturnType<typeof parseArgs<T>> {
  try {
    return parseArgs(config);
  } catch (err) {
    const what = parseArgsProblem(err);
    if (what === undefined) throw err;
    return usageError(program, what);
  }
}

/**
 * The first sentence of a parseArgs error, lower-cased ("Unknown option '--bogus'. To specify
 * a positional argument…" says it all before its first full stop); undefined for other errors.
 */
export function parseArgsProblem(err: unknown): string | undefined {
  if (!(err instanceof Error) || !('code' in err) || !String(err.code).startsWith('ERR_PARSE_ARGS_')) return undefined;
  const what = err.message.split('. ')[0]!;
  return what.charAt(0).toLowerCase() + what.slice(1);
}
