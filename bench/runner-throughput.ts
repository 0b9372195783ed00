/**
 * Triton runner throughput: candidates validated per second with N workers, on this machine.
 *
 *   npx tsc -p tsconfig.json && node dist/bench/runner-throughput.js --workers 1,2 [--candidates 36]
 *
 * The candidates are the problem set's own solutions (the most expensive path: every one compiles for sm_90
 * and runs all its trials under the interpreter), cycled to the requested count.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { repositoryRoot } from '../src/io/repository-root.js';
import { TritonRunner } from '../src/rewards/triton-runner.js';
import { benchArgs } from './args.js';

async function measure(workers: number, candidates: readonly { problem: string; completion: string }[]) {
  const runner = new TritonRunner({ repoRoot: repositoryRoot(), workers });
  try {
    await runner.hello(); // startup (torch and triton imports) is not part of the throughput
    const started = performance.now();
    const results = await Promise.all(candidates.map((c) => runner.evaluate(c.problem, c.completion)));
    const seconds = (performance.now() - started) / 1000;
    const correct = results.filter((r) => r.rewards.correctness.score === 1).length;
    const perCandidate = results.reduce((sum, r) => sum + r.seconds, 0) / results.length;
    return { workers, candidates: results.length, correct, seconds, perSecond: results.length / seconds, perCandidate };
  } finally {
    await runner.close();
  }
}

async function main(): Promise<void> {
  const values = benchArgs(import.meta.url, { workers: { type: 'string', default: '1,2' }, candidates: { type: 'string' } });
  const root = repositoryRoot();
  const problems = readFileSync(join(root, 'data', 'triton-train.jsonl'), 'utf8')
    .concat(readFileSync(join(root, 'data', 'triton-test.jsonl'), 'utf8'))
    .trim()
    .split('\n')
    .map((line) => String((JSON.parse(line) as { problem: string }).problem));
  const count = values.candidates ? Number(values.candidates) : problems.length;
  const candidates = Array.from({ length: count }, (_, i) => {
    const problem = problems[i % problems.length];
    const code = readFileSync(join(root, 'kernels', 'dataset', 'solutions', `${problem}.py`), 'utf8');
    return { problem, completion: `<triton_code>\n${code}\n</triton_code>` };
  });
  console.log('| workers | candidates | correct | wall s | candidates/s | mean s per candidate (in its evaluator) |');
  console.log('|---|---|---|---|---|---|');
  for (const workers of values.workers.split(',').map(Number)) {
    const r = await measure(workers, candidates);
    console.log(`| ${r.workers} | ${r.candidates} | ${r.correct} | ${r.seconds.toFixed(1)} | ${r.perSecond.toFixed(2)} | ${r.perCandidate.toFixed(2)} |`);
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
