import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { afterAll, describe, expect, it, vi } from 'vitest';

import { buildReward } from '../src/rewards/config.js';
import { repositoryRoot } from '../src/io/repository-root.js';
import { REWARD_CONFIGS } from '../src/tasks/builtin.js';
import { TritonRunner } from '../src/rewards/triton-runner.js';
import type { GradingInput } from '../src/rewards/types.js';

// Spawns the real Python runner (.venv/bin/python -m kernels.runner): graded under the Triton interpreter.
const root = repositoryRoot();
const runner = new TritonRunner({ repoRoot: root, workers: 2, timeLimitSeconds: 30 });
afterAll(() => runner.close());

const solution = (name: string) => readFileSync(join(root, 'kernels', 'dataset', 'solutions', `${name}.py`), 'utf8');
const tagged = (code: string) => `Here is the kernel.\n<triton_code>\n${code}\n</triton_code>`;
const rowsOf = (file: string) =>
  readFileSync(join(root, 'data', file), 'utf8').trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);

describe('Triton runner', () => {
  it('starts with its sandbox isolation in force and lists the problems the data files hold', async () => {
    const hello = await runner.hello();
    expect(hello).toMatchObject({ type: 'ready', version: 1, workers: 2, isolation: 'namespaces' });
    const train = await runner.problems('train');
    expect(train.map((p) => p.name)).toEqual(rowsOf('triton-train.jsonl').map((row) => row.problem));
    expect((await runner.problems('test')).length).toBeGreaterThanOrEqual(20);
    expect(train[0].prompt.user).toContain('<triton_code>');
  });

  it('scores a reference solution 1 on formatting, compilation and correctness, and reports each reward', async () => {
    const result = await runner.evaluate('softmax', tagged(solution('softmax')));
    expect(result.rewards.formatting.score).toBe(1);
    expect(result.rewards.compilation.score).toBe(1);
    expect(result.rewards.correctness).toEqual({ score: 1, reason: '4/4 trials match the reference' });
    // Timed by default only where the runner has a GPU; without one it is 0, "needs a GPU".
    expect(result.rewards.runtime.score > 0).toBe((await runner.hello()).runtime_device === 'cuda');
    expect(result.hacks).toEqual([]);
  });

  it('through the built-in reward config: one evaluation feeds the four components, hacks score 0', async () => {
    const reward = buildReward(REWARD_CONFIGS.triton, { baseDir: root, tritonRunner: runner });
    const hack = `import torch\nimport triton\nimport triton.language as tl\n\n\ndef relu(x):\n    return torch.relu(x)\n`;
    const inputs: GradingInput[] = [
      { prompt: 'p', completion: tagged(solution('relu')), example: { problem: 'relu' } },
      { prompt: 'p', completion: tagged(hack), example: { problem: 'relu' } },
      { prompt: 'p', completion: 'no code at all', example: { problem: 'relu' } },
    ];
    const evaluate = vi.spyOn(runner, 'evaluate');
    const [good, hacked, empty] = await reward.score(inputs);
    expect(evaluate).toHaveBeenCalledTimes(3); // one per completion, not one per component
    evaluate.mockRestore();
    expect(good.total).toBe(3);
    expect(Object.keys(good.components)).toEqual(['formatting', 'compilation', 'correctness', 'runtime']);
    expect(hacked.components.correctness.score).toBe(0);
    expect(hacked.components.correctness.reason).toMatch(/^rejected before running: not_allowed: line 7: Call `torch\.relu\(x\)`/);
    expect(hacked.components.formatting.score).toBeGreaterThan(0);
    expect(empty.total).toBe(0);
  });

  it('times runtime on the device the reward config names (cpu: the interpreter against torch), once per completion', async () => {
    const reward = buildReward(
      {
        components: [
          { name: 'correctness', grader: { type: 'triton', reward: 'correctness' } },
          { name: 'runtime', grader: { type: 'triton', reward: 'runtime', runtimeDevice: 'cpu' } },
        ],
      },
      { baseDir: root, tritonRunner: runner },
    );
    const evaluate = vi.spyOn(runner, 'evaluate');
    const [score] = await reward.score([{ prompt: 'p', completion: tagged(solution('relu')), example: { problem: 'relu' } }]);
    expect(evaluate).toHaveBeenCalledTimes(1);
    expect(evaluate.mock.calls[0][3]).toBe('cpu');
    evaluate.mockRestore();
    expect(score.components.correctness.score).toBe(1);
    expect(score.components.runtime.score).toBeGreaterThan(0);
    expect(score.components.runtime.reason).toMatch(/^speedup \S+x on cpu /);
  });

  it('rejects Triton graders that disagree on the runtime device, or name an unknown one', () => {
    const runtime = (device: string) => ({ name: `runtime-${device}`, grader: { type: 'triton', reward: 'runtime', runtimeDevice: device } });
    const context = { baseDir: root, tritonRunner: runner };
    expect(() => buildReward({ components: [runtime('cpu'), runtime('off')] }, context)).toThrow(/different runtimeDevice values: cpu, off/);
    expect(() => buildReward({ components: [runtime('tpu')] }, context)).toThrow(/runtimeDevice must be equal to one of the allowed values/);
  });

  it('answers a request it cannot serve with an error naming the field, and keeps serving', async () => {
    await expect(runner.evaluate('no_such_problem', tagged(solution('relu')))).rejects.toThrow(
      "runner: problem: unknown problem 'no_such_problem'",
    );
    for (const seed of [-1, 1.5, 2 ** 40]) {
      await expect(runner.evaluate('relu', 'no code', undefined, 'off', seed)).rejects.toThrow(/^runner: seed: must be an integer/);
    }
    const seeded = await runner.evaluate('relu', tagged(solution('relu')), undefined, 'off', 7);
    expect(seeded.rewards.correctness.score).toBe(1);
    expect(runner.starts).toBe(1);
  });

  it('refuses a request longer than the runner reads before sending it, and keeps serving', async () => {
    const small = new TritonRunner({ repoRoot: root, workers: 1, timeLimitSeconds: 30, maxLineBytes: 4096 });
    try {
      await expect(small.evaluate('relu', 'x'.repeat(5000))).rejects.toThrow(/request line of \d+ bytes exceeds the limit of 4096 bytes/);
      const result = await small.evaluate('relu', tagged(solution('relu')));
      expect(result.rewards.correctness.score).toBe(1);
    } finally {
      await small.close();
    }
  });

  it('is restarted after it dies: requests in flight score 0, the next ones are graded', async () => {
    const reward = buildReward(REWARD_CONFIGS.triton, { baseDir: root, tritonRunner: runner });
    const { pid } = await runner.hello();
    const inFlight = reward.score([{ prompt: 'p', completion: tagged(solution('add')), example: { problem: 'add' } }]);
    process.kill(Number(pid), 'SIGKILL');
    const [lost] = await inFlight;
    expect(lost.total).toBe(0);
    expect(lost.components.correctness.reason).toMatch(/grader failed: .*exited/);
    const [after] = await reward.score([{ prompt: 'p', completion: tagged(solution('add')), example: { problem: 'add' } }]);
    expect(after.total).toBe(3);
    expect(runner.starts).toBe(2);
  });
});
