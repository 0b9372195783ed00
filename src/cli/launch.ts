// Runs a command-line program that opens the GPU without Dawn's adapter-limit notices on stderr
// (see quiet-launch.ts): node dist/src/cli/launch.js dist/src/cli/check-model.js ARGS…
import { resolve } from 'node:path';
import { EXIT_USAGE } from './options.js';
import { launchQuietly } from './quiet-launch.js';

const [entry, ...args] = process.argv.slice(2);
if (!entry) {
  console.error('usage: node dist/src/cli/launch.js PROGRAM.js [ARGS…]');
  process.exit(EXIT_USAGE);
}
launchQuietly(resolve(entry), args);
