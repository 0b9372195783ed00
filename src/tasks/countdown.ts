import { pick, randomInt, seededRandom, type Random } from '../data/random.js';
import { evaluateExpression } from '../rewards/graders/arithmetic-expression.js';
import type { GraderConfig, RewardConfig } from '../rewards/config.js';

/**
 * Countdown, as in Predibase's RFT-vs-SFT experiment (after TinyZero): reach the target with + − × ÷ using
 * each given number exactly once.
 */
export interface CountdownRow {
  readonly numbers: readonly number[];
  readonly target: number;
  /** One expression that reaches the target (how the row was built). */
  readonly solution: string;
}

/** How hard the puzzles are and what the reply must look like. */
export interface CountdownStyle {
  /** Fewest and most numbers per puzzle. */
  readonly numbers: readonly [number, number];
  /** Numbers are drawn from 1 to this. */
  readonly maxNumber: number;
  /** Operators the generating expression draws from (the answer may use any of + − × ÷). */
  readonly operators: readonly string[];
  /** Largest target kept. */
  readonly maxTarget: number;
  /** Whether the prompt asks for reasoning in <think> tags before the <answer> (TinyZero's format). */
  readonly think: boolean;
  /**
   * How the equation is given: in `<answer>` tags (TinyZero's format); as a closing sentence "The
   * answer is <equation>."; or as the equation with its result, "13 + 6 = 19" (what small
   * instruction models write when asked for the equation), graded at the reply's last "=".
   */
  readonly answerFormat: CountdownAnswerFormat;
}

export const COUNTDOWN_ANSWER_FORMATS = ['tag', 'sentence', 'equation'] as const;
export type CountdownAnswerFormat = (typeof COUNTDOWN_ANSWER_FORMATS)[number];
type ReplyFormat = Pick<CountdownStyle, 'think' | 'answerFormat'>;

/** The built-in task's puzzles (data/countdown.jsonl): 3 or 4 numbers up to 99, targets up to 1000, <think> then <answer>. */
export const COUNTDOWN_STYLE: CountdownStyle = { numbers: [3, 4], maxNumber: 99, operators: ['+', '-', '*', '/'], maxTarget: 1000, think: true, answerFormat: 'tag' };

export const COUNTDOWN_SYSTEM_PROMPT =
  'You are a helpful assistant. You first think about the reasoning process and then provide the user with the answer.';
/** The system message of the sentence and equation formats: the one the default task's replies end in "The answer is N." under. */
const BRIEF_SYSTEM_PROMPT = 'Be brief.';
/** What the sentence format's answer follows. */
const ANSWER_PHRASE = 'The answer is';

function checkReplyFormat(style: ReplyFormat): void {
  if (style.think && style.answerFormat !== 'tag') throw new Error(`<think> reasoning is asked for with the <answer> tag format only (TinyZero's); the ${style.answerFormat} format has no tags`);
}

export function countdownPrompt(row: CountdownRow, style: ReplyFormat = COUNTDOWN_STYLE): string {
  checkReplyFormat(style);
  const task =
    `Using the numbers [${row.numbers.join(', ')}], create an equation that equals ${row.target}. ` +
    'You can use basic arithmetic operations (+, -, *, /) and each number must be used exactly once.';
  if (style.answerFormat === 'sentence') return `${task} End your reply with the equation, for example: ${ANSWER_PHRASE} (1 + 2) / 3.`;
  if (style.answerFormat === 'equation') return `${task} End your reply with the equation and its result.`;
  return `${task} ${style.think ? 'Show your work in <think> </think> tags. And return' : 'Return'} the final equation in <answer> </answer> tags, for example <answer> (1 + 2) / 3 </answer>.`;
}

/** The system message a row carries, if its format has one. */
function countdownSystem(style: ReplyFormat): string | undefined {
  return style.answerFormat !== 'tag' ? BRIEF_SYSTEM_PROMPT : style.think ? COUNTDOWN_SYSTEM_PROMPT : undefined;
}

/** A solvable row: a random expression over the style's numbers whose value is a positive integer. */
export function countdownRow(random: Random, style: CountdownStyle = COUNTDOWN_STYLE): CountdownRow {
  for (;;) {
    const count = randomInt(random, style.numbers[0], style.numbers[1]);
    const numbers = Array.from({ length: count }, () => randomInt(random, 1, style.maxNumber));
    let expression = String(numbers[0]);
    for (const n of numbers.slice(1)) expression = `(${expression} ${pick(random, style.operators)} ${n})`;
    const { value } = evaluateExpression(expression);
    if (value.den !== 1n || value.num <= 0n || value.num > BigInt(style.maxTarget)) continue;
    const shuffled = [...numbers].sort(() => random() - 0.5);
    return { numbers: shuffled, target: Number(value.num), solution: expression.slice(1, -1) };
  }
}

/** Per answer format: what earns the format reward, and where the countdown grader reads the equation. */
const FORMAT_GRADERS: Record<CountdownAnswerFormat, { format: GraderConfig; equation: GraderConfig }> = {
  tag: { format: { type: 'tags', tags: ['answer'], ordered: true }, equation: { type: 'countdown' } },
  sentence: { format: { type: 'string', mode: 'regex', expected: { value: ANSWER_PHRASE } }, equation: { type: 'countdown', from: { after: ANSWER_PHRASE } } },
  equation: { format: { type: 'string', mode: 'contains', expected: { value: '=' } }, equation: { type: 'countdown', from: { before: '=' } } },
};

/**
 * TinyZero's Countdown reward: the format 0.1 (the tags; in the sentence format the answer phrase, in
 * the equation format an "="), a valid equation over the given numbers that reaches the target 1,
 * counted only when the format is right.
 */
export function countdownReward(style: ReplyFormat): RewardConfig {
  checkReplyFormat(style);
  const graders = FORMAT_GRADERS[style.answerFormat];
  return {
    components: [
      { name: 'format', grader: style.think ? { type: 'tags', tags: ['think', 'answer'], ordered: true } : graders.format, weight: 0.1, timeoutMs: 1000 },
      { name: 'equation', grader: graders.equation, weight: 1, gate: { component: 'format' }, timeoutMs: 1000 },
    ],
  };
}

/** What a reply that solves a row looks like: the SFT target, in the format the prompt asks for. */
export function countdownCompletion(row: CountdownRow, style: ReplyFormat): string {
  if (style.answerFormat === 'sentence') return `${ANSWER_PHRASE} ${row.solution}.`;
  if (style.answerFormat === 'equation') return `${row.solution} = ${row.target}`;
  const answer = `<answer> ${row.solution} </answer>`;
  return style.think ? `<think> ${row.solution} = ${row.target} </think>\n${answer}` : answer;
}

export interface CountdownSplit {
  /** Sizes of the nested training sets: each is the first N rows of the largest. */
  readonly trainSizes: readonly number[];
  readonly heldOut: number;
  readonly seed: number;
}

/**
 * The files of a scarce-data experiment: `heldout.jsonl`; for each N, `train-N.jsonl` (prompts with the
 * fields the grader reads, no answers used by RL) and `sft-N.jsonl` (the same prompts with a solution as
 * the completion); `reward.json`. Every puzzle (its numbers and target) occurs once across all files; held-out puzzles
 * are drawn from another seed after the training ones, so none is ever trained on.
 */
export function countdownDataFiles(style: CountdownStyle, split: CountdownSplit): Record<string, string> {
  checkReplyFormat(style);
  const key = (row: CountdownRow) => `${[...row.numbers].sort((a, b) => a - b).join(',')}→${row.target}`;
  const seen = new Set<string>();
  const distinct = (count: number, random: Random): CountdownRow[] => {
    const rows: CountdownRow[] = [];
    for (let draws = 0; rows.length < count; draws++) {
      if (draws > 100 * (count + seen.size)) throw new Error(`only ${seen.size} distinct puzzles after ${draws} draws: allow more or larger numbers, or ask for fewer rows`);
      const row = countdownRow(random, style);
      if (seen.has(key(row))) continue;
      seen.add(key(row));
      rows.push(row);
    }
    return rows;
  };
  const train = distinct(Math.max(0, ...split.trainSizes), seededRandom(split.seed));
  const held = distinct(split.heldOut, seededRandom(split.seed + 1_000_003));
  const system = countdownSystem(style);
  const promptRow = (row: CountdownRow) => ({ ...(system === undefined ? {} : { system }), prompt: countdownPrompt(row, style), ...row });
  const lines = (rows: readonly object[]) => rows.map((row) => JSON.stringify(row) + '\n').join('');
  const files: Record<string, string> = { 'heldout.jsonl': lines(held.map(promptRow)), 'reward.json': JSON.stringify(countdownReward(style), null, 2) + '\n' };
  for (const n of split.trainSizes) {
    files[`train-${n}.jsonl`] = lines(train.slice(0, n).map(promptRow));
    files[`sft-${n}.jsonl`] = lines(train.slice(0, n).map((row) => ({ ...promptRow(row), completion: countdownCompletion(row, style) })));
  }
  return files;
}
