import type { RewardConfig } from '../rewards/config.js';
import { COUNTDOWN_STYLE, COUNTDOWN_SYSTEM_PROMPT, countdownPrompt, countdownReward, countdownRow } from './countdown.js';
import { WORD_PROBLEM_SYSTEM_PROMPT, wordProblemPrompt, wordProblemRow } from './arithmetic-word-problems.js';
import { seededRandom } from '../data/random.js';

/**
 * The built-in tasks: each has a data set (data/<task>.jsonl, rows of `{system, prompt, ...fields}`) and a
 * reward config whose graders read those fields. The Triton task's rows come from the kernel problem set
 * (kernels/export_prompts.py); its rewards come from the Triton runner.
 */
export type TaskRow = Readonly<Record<string, unknown>> & { readonly system: string; readonly prompt: string };

export const BUILTIN_TASKS = ['countdown', 'arithmetic', 'triton'] as const;
export type BuiltinTask = (typeof BUILTIN_TASKS)[number];

// Format first (the tags), then correctness, which counts only when the format is right, as in TinyZero's
// Countdown reward (0.1 for format, 1 for a correct equation).
const THINK_ANSWER = { type: 'tags', tags: ['think', 'answer'], ordered: true };

export const REWARD_CONFIGS: Readonly<Record<BuiltinTask, RewardConfig>> = {
  countdown: countdownReward(COUNTDOWN_STYLE),
  arithmetic: {
    components: [
      { name: 'format', grader: THINK_ANSWER, weight: 0.1, timeoutMs: 1000 },
      {
        name: 'answer',
        grader: { type: 'numeric', expected: { field: 'target' }, absoluteTolerance: 1e-6, from: { tag: 'answer' } },
        weight: 1,
        gate: { component: 'format' },
        timeoutMs: 1000,
      },
    ],
  },
  // As in Predibase's case study: the three rewards add up; runtime needs a GPU, so it weighs 0 by default.
  triton: {
    defaultTimeoutMs: 300_000,
    components: [
      { name: 'formatting', grader: { type: 'triton', reward: 'formatting' } },
      { name: 'compilation', grader: { type: 'triton', reward: 'compilation' } },
      { name: 'correctness', grader: { type: 'triton', reward: 'correctness' } },
      { name: 'runtime', grader: { type: 'triton', reward: 'runtime' }, weight: 0 },
    ],
  },
};

/** The rows of data/countdown.jsonl and data/arithmetic.jsonl, reproducible from their seeds. */
export function generatedTaskRows(task: 'countdown' | 'arithmetic', count: number, seed: number): TaskRow[] {
  const random = seededRandom(seed);
  return Array.from({ length: count }, () => {
    if (task === 'countdown') {
      const row = countdownRow(random);
      return { system: COUNTDOWN_SYSTEM_PROMPT, prompt: countdownPrompt(row), ...row };
    }
    const row = wordProblemRow(random);
    return { system: WORD_PROBLEM_SYSTEM_PROMPT, prompt: wordProblemPrompt(row), ...row };
  });
}

/** Sizes and seeds of the committed data sets. */
export const GENERATED_DATA = {
  countdown: { count: 1000, seed: 1 },
  arithmetic: { count: 1000, seed: 2 },
} as const;

/** The committed text of data/<task>.jsonl (a test checks the files equal it). */
export function taskDataText(task: keyof typeof GENERATED_DATA): string {
  const { count, seed } = GENERATED_DATA[task];
  return generatedTaskRows(task, count, seed).map((row) => JSON.stringify(row)).join('\n') + '\n';
}
