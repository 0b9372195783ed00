import { parseArgs, type ParseArgsConfig } from 'node:util';
import { EXIT_USAGE, openingComment } from '../src/cli/options.js';

type Options = NonNullable<ParseArgsConfig['options']>;

/**
 * A bench's flags (node's parseArgs, strict), with --help printing the bench's opening comment (its
 * usage), and an unknown or malformed flag printing what is wrong and that usage (exit EXIT_USAGE).
 */
export function benchArgs<O extends Options>(script: string, options: O) {
  const usage = () => openingComment(script);
  if (process.argv.slice(2).includes('--help')) {
    console.log(usage());
    process.exit(0);
  }
  try {
    return parseArgs({ options, strict: true }).values;
  } catch (error) {
    console.error(`${(error as Error).message}\n\n${usage()}`);
    process.exit(EXIT_USAGE);
  }
}
