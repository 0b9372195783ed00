/**
 * Scores completions with a reward config and prints every component per completion.
 *
 *   node dist/src/cli/score.js --config <reward.json | a task name: countdown, arithmetic, triton, quick-arithmetic, tiny-arithmetic> --input rows.jsonl
 *
 * Each input line is `{"prompt": "...", "completion": "...", "example": {...}}`; each output line is
 * `{"total": x, "components": {"<name>": {"score", "reason", "weight", "counted"}}}`, in input order.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

import { repositoryRoot } from '../io/repository-root.js';
import { buildReward, loadRewardConfig } from '../rewards/config.js';
import { TritonRunner } from '../rewards/triton-runner.js';
import type { GradingInput } from '../rewards/types.js';
import { namedTaskReward } from '../tasks/load.js';

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { config: { type: 'string' }, input: { type: 'string' }, workers: { type: 'string' } } });
  if (!values.config || !values.input) throw new Error('usage: score --config <reward.json | a task name> --input rows.jsonl');
  const root = repositoryRoot();
  const tritonRunner = new TritonRunner({ repoRoot: root, workers: values.workers ? Number(values.workers) : undefined });
  const named = namedTaskReward(values.config);
  const reward = named ? buildReward(named, { baseDir: root, tritonRunner }) : loadRewardConfig(values.config, { tritonRunner });
  const inputs: GradingInput[] = readFileSync(values.input, 'utf8')
    .split('\n')
    .filter((line) => line.trim())
    .map((line) => JSON.parse(line) as GradingInput);
  try {
    for (const score of await reward.score(inputs)) process.stdout.write(`${JSON.stringify(score)}\n`);
  } finally {
    await reward.close();
    await tritonRunner.close(); // the runner only starts if a triton grader asked for it
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
});
