import { describe, expect, it } from 'vitest';

import { buildReward } from '../src/rewards/config.js';
import { DEFAULT_JUDGE_TEMPLATE, LlmJudgeGrader, parseJudgeScore, type GenerationOptions, type TextGenerator } from '../src/rewards/graders/llm-judge.js';
import type { GradingInput } from '../src/rewards/types.js';

/** A deterministic stand-in for a local model: replies with a verdict looked up from the prompt. */
class FakeJudge implements TextGenerator {
  readonly batches: string[][] = [];
  readonly options: GenerationOptions[] = [];

  constructor(private readonly reply: (prompt: string) => string) {}

  async generate(prompts: readonly string[], options: GenerationOptions): Promise<string[]> {
    this.batches.push([...prompts]);
    this.options.push(options);
    return prompts.map(this.reply);
  }
}

const input = (completion: string): GradingInput => ({ prompt: 'Explain gravity.', completion, example: {} });

describe('LLM judge', () => {
  it('parses the last "Score: N" and maps the scale onto [0, 1]', () => {
    expect(parseJudgeScore('The format is "Score: N". Reasoning... Score: 7')).toBe(7);
    expect(parseJudgeScore('score = 3.5/10')).toBe(3.5);
    expect(parseJudgeScore('no verdict')).toBeUndefined();
  });

  it('fills the rubric template, batches concurrent requests, and grades each reply', async () => {
    const judge = new FakeJudge((prompt) => (prompt.includes('mass attracts mass') ? 'Accurate. Score: 9' : 'Vague. Score: 2'));
    const grader = new LlmJudgeGrader({ generator: judge, rubric: 'Accurate physics, in one sentence.' });
    const [good, bad] = await Promise.all([grader.grade(input('mass attracts mass')), grader.grade(input('things fall'))]);
    expect(good).toEqual({ score: 0.9, reason: 'judge scored 9 on 0–10' });
    expect(bad.score).toBeCloseTo(0.2);
    expect(judge.batches).toHaveLength(1);
    expect(judge.batches[0]).toHaveLength(2);
    expect(judge.batches[0][0]).toContain('Accurate physics, in one sentence.');
    expect(judge.batches[0][0]).toContain('Explain gravity.');
    expect(judge.options[0]).toEqual({ maxNewTokens: 256, temperature: 0 });
    expect(DEFAULT_JUDGE_TEMPLATE).toContain('{rubric}');
  });

  it('clamps out-of-scale verdicts, gives 0 for unparseable ones, and never expands braces in completions', async () => {
    const judge = new FakeJudge((prompt) => (prompt.includes('{rubric}') ? 'Score: 12' : 'I refuse to grade this.'));
    const grader = new LlmJudgeGrader({ generator: judge, rubric: 'R', scale: { min: 1, max: 5 } });
    expect((await grader.grade(input('literal {rubric} braces'))).score).toBe(1);
    const refused = await grader.grade(input('plain'));
    expect(refused.score).toBe(0);
    expect(refused.reason).toMatch(/no "Score: N"/);
  });

  it('is configured from JSON with the generator passed in, and a failing generator scores 0', async () => {
    const failing: TextGenerator = { generate: () => Promise.reject(new Error('model not loaded')) };
    const reward = buildReward({ components: [{ name: 'judge', grader: { type: 'llm_judge', rubric: 'R' } }] }, { baseDir: '.', textGenerator: failing });
    const [score] = await reward.score([input('x')]);
    expect(score.components.judge).toMatchObject({ score: 0, reason: 'grader failed: model not loaded' });
    expect(() => buildReward({ components: [{ name: 'judge', grader: { type: 'llm_judge', rubric: 'R' } }] }, { baseDir: '.' })).toThrow(/needs a local model to ask \(train.js --judge-model\)/);
  });
});
