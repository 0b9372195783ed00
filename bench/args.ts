import { readFileSync } from 'node:fs';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { EXIT_USAGE } from '../src/cli/options.js';

type Options = NonNullable<ParseArgsConfig['options']>;

/**
 * A bench's flags (node's parseArgs, strict), with --help printing the bench's opening comment (its
 * usage), and an unknown or malformed flag printing what is wrong and that usage (exit EXIT_USAGE).
 */
export function benchArgs<O extends Options>(script: string, options: O) {
  // The usage is the bench's opening comment: `//` lines or a `/** … */` block.
  const usage = () => {
    const text = readFileSync(new URL(script), 'utf8');
    const block = /^\/\*\*([\s\S]*?)\*\//.exec(text);
    if (block) return block[1].split('\n').map((line) => line.replace(/^\s*\* ?/, '')).join('\n').trim();
    const lines = text.split('\n');
    const end = lines.findIndex((line) => !line.startsWith('//'));
    return lines.slice(0, end < 0 ? lines.length : end).map((line) => line.slice(3)).join('\n');
  };
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
