import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { buildReward } from '../src/rewards/config.js';
import { loadTask } from '../src/tasks/load.js';
import { repositoryRoot } from '../src/io/repository-root.js';
import { evaluateExpression, fractionToString } from '../src/rewards/graders/arithmetic-expression.js';
import { REWARD_CONFIGS, taskDataText } from '../src/tasks/builtin.js';
import { CountdownGrader } from '../src/rewards/graders/countdown.js';
import { countdownDataFiles } from '../src/tasks/countdown.js';
import type { GradingInput } from '../src/rewards/types.js';
import { runNode } from './helpers/train-cli.js';

const root = repositoryRoot();
const rows = (task: string): Record<string, unknown>[] =>
  readFileSync(join(root, 'data', `${task}.jsonl`), 'utf8').trim().split('\n').map((line) => JSON.parse(line));

describe('arithmetic expressions (no eval)', () => {
  it('respects precedence and parentheses, with exact fractions', () => {
    expect(fractionToString(evaluateExpression('2 + 3 * 4').value)).toBe('14');
    expect(fractionToString(evaluateExpression('(2 + 3) * 4').value)).toBe('20');
    expect(fractionToString(evaluateExpression('(8 / 3) * 3').value)).toBe('8');
    expect(fractionToString(evaluateExpression('1 / 3 + 1 / 6').value)).toBe('1/2');
    expect(fractionToString(evaluateExpression('-(4 - 10) × 2').value)).toBe('12');
    expect(evaluateExpression('(1 + 2) * 3').literals).toEqual([1, 2, 3]);
  });

  it('rejects anything that is not arithmetic', () => {
    for (const bad of ['process.exit(1)', '2 ** 3', '1 / (2 - 2)', '(1 + 2', '1 + 2)', '3 4', '', 'Math.max(1)', '1e3']) {
      expect(() => evaluateExpression(bad), bad).toThrow();
    }
  });
});

describe('countdown', () => {
  const grader = new CountdownGrader();
  const example = { numbers: [3, 7, 25, 50], target: 200 };
  const grade = (completion: string) => grader.grade({ prompt: '', completion, example });

  it('needs every number exactly once and the exact target', async () => {
    expect(await grade('<answer> (3 + 7) * 25 - 50 = 200 </answer>')).toEqual({ score: 1, reason: 'evaluates to 200, target 200' });
    expect(await grade('<answer>(7 - 3) * 50</answer>')).toMatchObject({ score: 0, reason: expect.stringMatching(/exactly once/) });
    expect(await grade('<answer>(50 - 25) * (3 + 7) - 50</answer>')).toMatchObject({ score: 0, reason: expect.stringMatching(/exactly once/) });
    expect(await grade('<answer>(25 + 50 + 3 - 7) * 2</answer>')).toMatchObject({ score: 0, reason: expect.stringMatching(/exactly once/) });
    expect(await grade('<answer>25 * 7 + 50 / 3</answer>')).toEqual({ score: 0, reason: 'evaluates to 575/3, target 200' });
    expect(await grade('<answer>(3 + 7) * 25 + 50</answer>')).toEqual({ score: 0, reason: 'evaluates to 300, target 200' });
    expect(await grade('<answer>3 * 7 * 25 / 50</answer>')).toEqual({ score: 0, reason: 'evaluates to 21/2, target 200' });
    expect(await grade('<answer>require("fs")</answer>')).toMatchObject({ score: 0, reason: expect.stringMatching(/invalid expression/) });
    expect(await grade('(3 + 7) * 25 - 50')).toEqual({ score: 0, reason: 'no <answer> block' });
  });

  it('reads the equation after a phrase when told to: the last occurrence, to the end of its line', async () => {
    const sentence = new CountdownGrader({ from: { after: 'The answer is' } });
    const gradeSentence = (completion: string) => sentence.grade({ prompt: '', completion, example });
    expect(await gradeSentence('(3 + 7) is 10, times 25 is 250.\nThe answer is: (3 + 7) * 25 - 50 = 200.')).toEqual({ score: 1, reason: 'evaluates to 200, target 200' });
    expect(await gradeSentence('The answer is 3 * 7.\nOr rather, the answer is (3 + 7) * 25 - 50.\nDone.')).toEqual({ score: 1, reason: 'evaluates to 200, target 200' });
    expect(await gradeSentence('The answer is (3 + 7) * 25 - 50.\nNo, the answer is 200.')).toMatchObject({ score: 0, reason: expect.stringMatching(/uses \[200\], must use each of \[3,7,25,50\] exactly once/) });
    expect(await gradeSentence('The answer is\n(3 + 7) * 25 - 50')).toMatchObject({ score: 0, reason: expect.stringMatching(/invalid expression/) });
    expect(await gradeSentence('<answer>(3 + 7) * 25 - 50</answer>')).toEqual({ score: 0, reason: 'no "The answer is" in the reply' });
  });

  it('reads the left side of the last equation when told to, without the words leading up to it', async () => {
    const equation = new CountdownGrader({ from: { before: '=' } });
    const two = { numbers: [13, 6], target: 19 };
    const gradeEquation = (completion: string) => equation.grade({ prompt: '', completion, example: two });
    expect(await gradeEquation('13 + 6 = 19')).toEqual({ score: 1, reason: 'evaluates to 19, target 19' });
    expect(await gradeEquation('13 - 6 = 7\nSo the equation is 13 + 6 = 19.')).toEqual({ score: 1, reason: 'evaluates to 19, target 19' });
    expect(await gradeEquation('The answer is: (13 + 6) = 19')).toEqual({ score: 1, reason: 'evaluates to 19, target 19' });
    expect(await gradeEquation('13 + 6 = 19\n13 - 6 = 7')).toEqual({ score: 0, reason: 'evaluates to 7, target 19' });
    expect(await gradeEquation('13 + 6 = 19\nThe answer is 19.')).toEqual({ score: 1, reason: 'evaluates to 19, target 19' });
    expect(await gradeEquation('The answer is = 19')).toMatchObject({ score: 0, reason: expect.stringMatching(/invalid expression/) });
    expect(await gradeEquation('The answer is 19.')).toEqual({ score: 0, reason: 'no "=" in the reply' });
  });

  it('takes one location in the reward config: a tag or a phrase', () => {
    expect(() => buildReward({ components: [{ name: 'eq', grader: { type: 'countdown', from: { after: 'The answer is' } } }] }, { baseDir: root })).not.toThrow();
    expect(() => buildReward({ components: [{ name: 'eq', grader: { type: 'countdown', from: { tag: 'answer', after: 'The answer is' } } }] }, { baseDir: root })).toThrow(
      '/components/0/grader/from must NOT have more than 1 properties',
    );
    expect(() => buildReward({ components: [{ name: 'eq', grader: { type: 'countdown', from: { after: '' } } }] }, { baseDir: root })).toThrow('/components/0/grader/from/after must NOT have fewer than 1 characters');
  });
});

describe('built-in task data', () => {
  it('matches its generator, so the committed files are reproducible', () => {
    for (const task of ['countdown', 'arithmetic'] as const) {
      expect(readFileSync(join(root, 'data', `${task}.jsonl`), 'utf8') === taskDataText(task), task).toBe(true);
    }
  });

  it('is solvable: every countdown row solution and arithmetic row answer scores full marks', async () => {
    for (const task of ['countdown', 'arithmetic'] as const) {
      const reward = buildReward(REWARD_CONFIGS[task], { baseDir: root });
      const inputs: GradingInput[] = rows(task).map((row) => ({
        prompt: String(row.prompt),
        completion: `<think>work</think><answer>${task === 'countdown' ? row.solution : row.target}</answer>`,
        example: row,
      }));
      const scores = await reward.score(inputs);
      const failures = scores.filter((s) => Math.abs(s.total - 1.1) > 1e-9);
      expect(failures, task).toEqual([]);
      expect(new Set(inputs.map((i) => i.prompt)).size, task).toBeGreaterThan(900);
    }
  });
});

describe('Countdown data for scarce-data experiments', () => {
  const style = { numbers: [2, 2] as const, maxNumber: 20, operators: ['+', '-', '*', '/'], maxTarget: 100, answerFormat: 'tag' as const };
  const parse = (text: string) => text.trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
  const puzzle = (row: Record<string, unknown>) => `${[...(row.numbers as number[])].sort((a, b) => a - b)}→${row.target}`;

  it('nests the training sets, keeps held-out puzzles apart, and its SFT answers score full marks', async () => {
    for (const think of [false, true]) {
      const files = countdownDataFiles({ ...style, think }, { trainSizes: [10, 100], heldOut: 200, seed: 1 });
      expect(Object.keys(files).sort()).toEqual(['heldout.jsonl', 'reward.json', 'sft-10.jsonl', 'sft-100.jsonl', 'train-10.jsonl', 'train-100.jsonl']);
      const [train10, train100, sft100, held] = ['train-10.jsonl', 'train-100.jsonl', 'sft-100.jsonl', 'heldout.jsonl'].map((f) => parse(files[f]));
      expect([train10.length, train100.length, held.length]).toEqual([10, 100, 200]);
      expect(train100.slice(0, 10)).toEqual(train10);
      expect(sft100.map(({ completion, ...row }) => row)).toEqual(train100);
      expect(new Set([...train100, ...held].map(puzzle)).size).toBe(300);
      for (const row of [...train100, ...held]) {
        expect((row.numbers as number[]).every((n) => n >= 1 && n <= 20) && (row.numbers as number[]).length === 2).toBe(true);
        expect(row.target as number).toBeLessThanOrEqual(100);
        expect(String(row.prompt).includes('<think>')).toBe(think);
      }
      const reward = buildReward(JSON.parse(files['reward.json']), { baseDir: root });
      const scores = await reward.score(sft100.map((row) => ({ prompt: String(row.prompt), completion: String(row.completion), example: row })));
      expect(scores.filter((s) => Math.abs(s.total - 1.1) > 1e-9)).toEqual([]);
      // Without the tags the answer earns nothing, even when the equation is right.
      expect((await reward.score([{ prompt: String(held[0].prompt), completion: String(held[0].solution), example: held[0] }]))[0].total).toBe(0);
    }
  });

  it('asks for "The answer is <equation>." in the sentence format, and its SFT answers score full marks', async () => {
    const files = countdownDataFiles({ ...style, think: false, answerFormat: 'sentence' }, { trainSizes: [10], heldOut: 20, seed: 1 });
    const [sft10, held] = ['sft-10.jsonl', 'heldout.jsonl'].map((f) => parse(files[f]));
    expect(held[0]).toMatchObject({ system: 'Be brief.', prompt: expect.stringMatching(/equals \d+\. .* End your reply with the equation, for example: The answer is \(1 \+ 2\) \/ 3\.$/) });
    expect(String(held[0].prompt)).not.toContain('<answer>');
    expect(sft10[0].completion).toBe(`The answer is ${sft10[0].solution}.`);
    const reward = buildReward(JSON.parse(files['reward.json']), { baseDir: root });
    const scores = await reward.score(sft10.map((row) => ({ prompt: String(row.prompt), completion: `Let me try.\n${row.completion}`, example: row })));
    expect(scores.filter((s) => Math.abs(s.total - 1.1) > 1e-9)).toEqual([]);
    // The phrase alone earns the format's 0.1; a wrong equation after it earns nothing more; no phrase, nothing.
    const one = (completion: string) => reward.score([{ prompt: String(held[0].prompt), completion, example: held[0] }]).then((s) => s[0].total);
    expect(await one(`The answer is ${held[0].target}.`)).toBeCloseTo(0.1, 12);
    expect(await one(String(held[0].solution))).toBe(0);
    expect(() => countdownDataFiles({ ...style, think: true, answerFormat: 'sentence' }, { trainSizes: [10], heldOut: 20, seed: 1 })).toThrow(/<think> reasoning is asked for with the <answer> tag format only/);
  });

  it('asks for the equation and its result in the equation format, and its SFT answers score full marks', async () => {
    const files = countdownDataFiles({ ...style, think: false, answerFormat: 'equation' }, { trainSizes: [10], heldOut: 20, seed: 1 });
    const [sft10, held] = ['sft-10.jsonl', 'heldout.jsonl'].map((f) => parse(files[f]));
    expect(held[0]).toMatchObject({ system: 'Be brief.', prompt: expect.stringMatching(/exactly once\. End your reply with the equation and its result\.$/) });
    expect(sft10[0].completion).toBe(`${sft10[0].solution} = ${sft10[0].target}`);
    const reward = buildReward(JSON.parse(files['reward.json']), { baseDir: root });
    const scores = await reward.score(sft10.map((row) => ({ prompt: String(row.prompt), completion: `Trying it:\n${row.completion}`, example: row })));
    expect(scores.filter((s) => Math.abs(s.total - 1.1) > 1e-9)).toEqual([]);
    const one = (completion: string) => reward.score([{ prompt: String(held[0].prompt), completion, example: held[0] }]).then((s) => s[0].total);
    expect(await one(`${held[0].target} = ${held[0].target}`)).toBeCloseTo(0.1, 12);
    expect(await one(`The answer is ${held[0].target}.`)).toBe(0);
  });

  it('says so when the puzzle space is too small for the rows asked for', () => {
    expect(() => countdownDataFiles({ ...style, maxNumber: 3, think: false }, { trainSizes: [10], heldOut: 200, seed: 0 })).toThrow(/only \d+ distinct puzzles after \d+ draws/);
  });

  it('keeps the built-in countdown reward: the tags 0.1, the equation 1 gated on them (TinyZero)', () => {
    expect(REWARD_CONFIGS.countdown).toEqual({
      components: [
        { name: 'format', grader: { type: 'tags', tags: ['think', 'answer'], ordered: true }, weight: 0.1, timeoutMs: 1000 },
        { name: 'equation', grader: { type: 'countdown' }, weight: 1, gate: { component: 'format' }, timeoutMs: 1000 },
      ],
    });
  });
});

describe('quick-arithmetic (the default task of train.js)', () => {
  const task = loadTask('quick-arithmetic', root, 16);
  const reward = buildReward(task.rewardConfig, { baseDir: root });
  const score = async (completion: string, example: Record<string, unknown>) =>
    (await reward.score([{ prompt: String(example.prompt), completion, example }]))[0].total;

  it('asks short sums with a brief system message and keeps held-out prompts out of training', () => {
    expect(task.eval).toHaveLength(16);
    const held = new Set(task.eval.map((r) => r.prompt));
    expect(task.train.some((r) => held.has(r.prompt))).toBe(false);
    for (const row of [...task.train.slice(0, 200), ...task.eval]) {
      const m = /^What is (\d+) ([-+*]) (\d+)\? End your reply with: The answer is N\.$/.exec(row.prompt);
      expect(m, row.prompt).not.toBeNull();
      const [a, op, b] = [Number(m![1]), m![2], Number(m![3])];
      expect(Math.max(a, b)).toBeLessThanOrEqual(op === '*' ? 10 : 20);
      expect(row.target).toBe(op === '+' ? a + b : op === '-' ? a - b : a * b);
      expect(row.system).toBe('Be brief.');
    }
  });

  it('pays 1 for the right last number and 0.5 more for ending with "The answer is N." when it is right', async () => {
    const example = { prompt: 'What is 7 - 9? End your reply with: The answer is N.', target: -2 };
    expect(await score('7 - 9 = -2. The answer is -2.', example)).toBe(1.5);
    expect(await score('The answer is -2', example)).toBe(1.5);
    expect(await score('7 - 9 = -2', example)).toBe(1);
    expect(await score('The answer is 2.', example)).toBe(0);
    expect(await score('The answer is N.', example)).toBe(0);
    expect(await score('The answer is -2. Subtraction is fun.', example)).toBe(1);
    expect(await score('The answer is -2, or 3.', example)).toBe(0);
  });

  it('is what score.js grades with when given the task name (the peer benchmark scores TRL this way)', async () => {
    const example = { prompt: 'What is 7 - 9? End your reply with: The answer is N.', target: -2 };
    const completions = ['7 - 9 = -2. The answer is -2.', '7 - 9 = -2', 'The answer is 2.'];
    const input = join(mkdtempSync(join(tmpdir(), 'score-')), 'rows.jsonl');
    writeFileSync(input, completions.map((completion) => JSON.stringify({ prompt: example.prompt, completion, example })).join('\n') + '\n');
    const run = await runNode([join(root, 'dist', 'src', 'cli', 'score.js'), '--config', 'quick-arithmetic', '--input', input]);
    expect(run.status, run.stderr).toBe(0);
    const totals = run.stdout.trim().split('\n').map((line) => (JSON.parse(line) as { total: number }).total);
    expect(totals).toEqual([1.5, 1, 0]);
  });
});
