import { describe, expect, it } from 'vitest';

import { ComposedReward } from '../src/rewards/compose.js';
import { buildReward, checkRewardConfig } from '../src/rewards/config.js';
import { gradeGuarded } from '../src/rewards/guard.js';
import { JsonGrader } from '../src/rewards/graders/json.js';
import { lastNumber, NumericMatchGrader } from '../src/rewards/graders/numeric.js';
import { RankGrader, rankedItems } from '../src/rewards/graders/rank.js';
import { StringMatchGrader } from '../src/rewards/graders/string-match.js';
import { TagFormatGrader } from '../src/rewards/graders/tags.js';
import type { Grader, GradingInput } from '../src/rewards/types.js';

const input = (completion: string, example: Record<string, unknown> = {}): GradingInput => ({ prompt: 'q', completion, example });

describe('string match', () => {
  it('matches exactly, by substring and by regex, with case options and a tag location', async () => {
    const exact = new StringMatchGrader({ mode: 'exact', expected: { field: 'answer' }, from: { tag: 'answer' } });
    expect((await exact.grade(input('<answer>  Paris </answer>', { answer: 'paris' }))).score).toBe(1);
    expect((await exact.grade(input('<answer>Paris, France</answer>', { answer: 'paris' }))).score).toBe(0);
    expect((await exact.grade(input('Paris', { answer: 'paris' }))).reason).toMatch(/no <answer> block/);

    const strict = new StringMatchGrader({ mode: 'contains', expected: { value: 'Paris' }, caseSensitive: true });
    expect((await strict.grade(input('It is Paris.'))).score).toBe(1);
    expect((await strict.grade(input('it is paris.'))).score).toBe(0);

    const pattern = new StringMatchGrader({ mode: 'regex', expected: { value: '^\\d{3}-\\d{4}$' } });
    expect((await pattern.grade(input('555-1234'))).score).toBe(1);
    expect((await pattern.grade(input('call 555-1234'))).score).toBe(0);
  });
});

describe('numeric match', () => {
  it('takes the last number, with separators and signs, within the tolerance', async () => {
    expect(lastNumber('first 3, then 1,234.5')).toBe(1234.5);
    expect(lastNumber('the answer is -0.25')).toBe(-0.25);
    expect(lastNumber('no digits')).toBeUndefined();
    const grader = new NumericMatchGrader({ expected: { field: 'target' }, relativeTolerance: 0.01, from: { tag: 'answer' } });
    expect((await grader.grade(input('<answer>100.5</answer>', { target: 100 }))).score).toBe(1);
    expect((await grader.grade(input('<answer>102</answer>', { target: 100 }))).score).toBe(0);
    expect((await grader.grade(input('<answer>none</answer>', { target: 100 }))).reason).toBe('no number in the answer');
  });
});

describe('JSON', () => {
  const schema = { type: 'object', required: ['name', 'age'], properties: { name: { type: 'string' }, age: { type: 'integer', minimum: 0 } } };

  it('scores validity, then schema conformance, and explains failures', async () => {
    const valid = new JsonGrader({});
    expect((await valid.grade(input('[1, 2]'))).score).toBe(1);
    expect((await valid.grade(input('{oops}'))).reason).toMatch(/invalid JSON/);
    const conforming = new JsonGrader({ schema });
    expect((await conforming.grade(input('```json\n{"name": "Ada", "age": 36}\n```'))).score).toBe(1);
    const wrong = await conforming.grade(input('{"name": "Ada", "age": -1}'));
    expect(wrong.score).toBe(0);
    expect(wrong.reason).toMatch(/\/age must be >= 0/);
  });
});

describe('tag format', () => {
  it('gives fractional credit per tag and for the order', async () => {
    const grader = new TagFormatGrader({ tags: ['think', 'answer'], ordered: true });
    expect((await grader.grade(input('<think>a</think><answer>b</answer>'))).score).toBe(1);
    expect((await grader.grade(input('<answer>b</answer><think>a</think>'))).score).toBeCloseTo(2 / 3);
    // Empty think and a repeated answer fail their criteria; the order still holds.
    expect((await grader.grade(input('<think></think><answer>b</answer><answer>c</answer>'))).score).toBeCloseTo(1 / 3);
    expect((await grader.grade(input('<think>a</think> no answer'))).score).toBeCloseTo(1 / 3);
  });
});

describe('rank', () => {
  it('gives full credit at rank 1 and scales linearly to the top N', async () => {
    expect(rankedItems('1. Alpha\n2) beta\n- Gamma')).toEqual(['alpha', 'beta', 'gamma']);
    expect(rankedItems('alpha, beta')).toEqual(['alpha', 'beta']);
    const grader = new RankGrader({ expected: { field: 'best' }, topN: 4 });
    const list = '1. Lyon\n2. Paris\n3. Nice\n4. Lille\n5. Metz';
    expect((await grader.grade(input(list, { best: 'Lyon' }))).score).toBe(1);
    expect((await grader.grade(input(list, { best: 'paris' }))).score).toBe(0.75);
    expect((await grader.grade(input(list, { best: 'Lille' }))).score).toBe(0.25);
    expect((await grader.grade(input(list, { best: 'Metz' }))).score).toBe(0);
    expect((await grader.grade(input(list, { best: 'Brest' }))).reason).toMatch(/not in the list/);
  });
});

describe('guarded grading', () => {
  const graderOf = (grade: Grader['grade']): Grader => ({ grade });

  it('turns throws, rejections, hangs and invalid scores into 0 with a reason', async () => {
    const thrown = await gradeGuarded(graderOf(() => { throw new Error('boom'); }), input('x'), 1000);
    expect(thrown).toEqual({ score: 0, reason: 'grader failed: boom', failed: true });
    const rejected = await gradeGuarded(graderOf(() => Promise.reject(new Error('later'))), input('x'), 1000);
    expect(rejected.reason).toBe('grader failed: later');
    let aborted = false;
    const hung = await gradeGuarded(
      graderOf((_, signal) => new Promise(() => signal.addEventListener('abort', () => { aborted = true; }))),
      input('x'),
      50,
    );
    expect(hung).toEqual({ score: 0, reason: 'timed out after 50 ms', failed: true });
    expect(aborted).toBe(true);
    expect((await gradeGuarded(graderOf(async () => ({ score: 1.5, reason: '' })), input('x'), 1000)).reason).toMatch(/invalid score 1.5/);
    expect((await gradeGuarded(graderOf(async () => ({ score: Number.NaN, reason: '' })), input('x'), 1000)).score).toBe(0);
  });
});

describe('composition', () => {
  const constant = (score: number): Grader => ({ grade: async () => ({ score, reason: `always ${score}` }) });

  it('sums weighted scores, counts gated components only when the gate passes, and logs every component', async () => {
    const reward = new ComposedReward([
      { name: 'format', grader: constant(0.5), weight: 0.2, timeoutMs: 1000 },
      { name: 'correct', grader: constant(1), weight: 1, gate: { component: 'format' }, timeoutMs: 1000 },
      { name: 'style', grader: constant(1), weight: 0.5, gate: { component: 'format', minScore: 0.5 }, timeoutMs: 1000 },
    ]);
    const [score] = await reward.score([input('x')]);
    expect(score.total).toBeCloseTo(0.2 * 0.5 + 0.5);
    expect(score.components.correct).toEqual({ score: 1, reason: 'always 1', weight: 1, counted: false });
    expect(score.components.style.counted).toBe(true);
    expect(reward.componentNames).toEqual(['format', 'correct', 'style']);
  });

  it('rejects duplicate names and gates on missing components', () => {
    const component = { name: 'a', grader: constant(1), weight: 1, timeoutMs: 1 };
    expect(() => new ComposedReward([component, component])).toThrow(/distinct names/);
    expect(() => new ComposedReward([{ ...component, gate: { component: 'b' } }])).toThrow(/gated on 'b'/);
  });

  it('builds from a JSON config and scores a batch in order', async () => {
    const reward = buildReward(
      {
        components: [
          { name: 'format', grader: { type: 'tags', tags: ['answer'] }, weight: 0.1 },
          { name: 'answer', grader: { type: 'numeric', expected: { field: 'target' }, from: { tag: 'answer' } }, gate: { component: 'format' } },
        ],
      },
      { baseDir: '.' },
    );
    const scores = await reward.score([input('<answer>4</answer>', { target: 4 }), input('4', { target: 4 }), input('<answer>5</answer>', { target: 4 })]);
    expect(scores.map((s) => s.total)).toEqual([1.1, 0, 0.1]);
    expect(scores[1].components.answer).toMatchObject({ score: 0, counted: false });
  });

  it('reports every config problem at once', () => {
    expect(() =>
      checkRewardConfig({ components: [{ name: 'x', grader: { type: 'numeric', expectd: {} } }, { grader: { type: 'nope' } }] }),
    ).toThrow(/must have required property 'expected'[\s\S]*must NOT have additional properties[\s\S]*must have required property 'name'/);
  });
});
