// Runs an experiment's arms (experiments/NAME/arms/*.json) one after another, resuming interrupted
// ones and skipping finished ones, then rebuilds its table and curves from the runs' metrics.jsonl:
//   npm run experiment -- NAME [--arm ARM …]     run (or resume) the arms, then collect
//   npm run experiment -- NAME --collect         only rebuild results.md, curves.svg and the README's table
//   npm run experiment -- --list                 the experiments and their arms' states
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { collect } from '../experiments/collect.js';
import { readArmRecord, readExperiment, selectArms } from '../experiments/experiment.js';
import { runArms } from '../experiments/run-arms.js';
import { repositoryRoot } from '../io/repository-root.js';
import { EXIT_USAGE, refuseOnError } from './options.js';

const USAGE = 'usage: npm run experiment -- NAME [--arm ARM …] [--collect] | --list   (--experiments-dir DIR: default experiments/)';

let parsed;
try {
  parsed = parseArgs({
    allowPositionals: true,
    options: { arm: { type: 'string', multiple: true }, collect: { type: 'boolean' }, list: { type: 'boolean' }, 'experiments-dir': { type: 'string' }, help: { type: 'boolean' } },
  });
} catch (error) {
  console.error(`${(error as Error).message}\n${USAGE}`);
  process.exit(EXIT_USAGE);
}
const { values, positionals } = parsed;
if (values.help) {
  console.log(USAGE);
  process.exit(0);
}
const root = repositoryRoot();
const experimentsDir = values['experiments-dir'] ?? join(root, 'experiments');

if (values.list) {
  for (const name of existsSync(experimentsDir) ? readdirSync(experimentsDir).sort() : []) {
    if (!existsSync(join(experimentsDir, name, 'arms'))) continue;
    const experiment = readExperiment(experimentsDir, name);
    console.log(`${name}: ${experiment.arms.map((arm) => `${arm.name} (${readArmRecord(arm)?.finished ? 'finished' : 'to run'})`).join(', ')}`);
  }
  process.exit(0);
}
if (positionals.length !== 1) {
  console.error(`one experiment name, got ${positionals.length ? positionals.join(' ') : 'none'}\n${USAGE}`);
  process.exit(EXIT_USAGE);
}
const { experiment, chosen } = await refuseOnError(() => {
  const read = readExperiment(experimentsDir, positionals[0]);
  return { experiment: read, chosen: selectArms(read, values.arm) };
});

if (!values.collect) {
  const failed = await runArms(chosen, { root, queueLock: join(experimentsDir, '.queue.lock'), say: (message) => console.error(`[${new Date().toISOString().slice(11, 19)}] ${message}`) });
  if (failed.length) process.exitCode = 1;
}
const { markdown, files } = collect(experiment);
console.log(markdown);
console.error(`wrote ${files.join(', ')}`);
