import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { readPromptRows, type PromptRow } from '../data/jsonl.js';
import { arithmeticProblem, type OperandRange } from './synthetic.js';
import type { RewardConfig } from '../rewards/config.js';
import { BUILTIN_TASKS, REWARD_CONFIGS, type BuiltinTask } from './builtin.js';
import { seededRandom } from '../data/random.js';

export interface TaskData {
  name: string;
  train: PromptRow[];
  eval: PromptRow[];
  /** The built-in reward config, when the task has one. */
  rewardConfig: RewardConfig | null;
}

/**
 * The tiny model's own short arithmetic problems (it was pre-trained on their format): the answer in
 * <answer> tags counts 0.1, a correct answer 1 more — the same shape as the built-in tasks.
 */
const TINY_REWARD: RewardConfig = {
  components: [
    { name: 'format', grader: { type: 'tags', tags: ['answer'] }, weight: 0.1, timeoutMs: 1000 },
    {
      name: 'answer',
      grader: { type: 'numeric', expected: { field: 'target' }, absoluteTolerance: 1e-6, from: { tag: 'answer' } },
      weight: 1,
      gate: { component: 'format' },
      timeoutMs: 1000,
    },
  ],
};

/**
 * Short sums for instruction-tuned models (the default task of `--model small`): the right number
 * at the end of the reply earns 1, and ending with the requested "The answer is N." 0.5 more, but
 * only when the number is right. SmolLM2-135M-Instruct never writes `<answer>` tags unprompted by
 * examples, but ends with that sentence in about a third of its samples and gets about a third of
 * these sums right (operands ≤ 20, products ≤ 10 × 10), so most groups of 4 disagree and GRPO has a
 * signal from the first step. Ungated, the format paid for any number: a run at lr 1e-3 learned
 * "The answer is 3." for everything within four steps and its correctness fell to 0.
 */
const QUICK_REWARD: RewardConfig = {
  components: [
    { name: 'correct', grader: { type: 'numeric', expected: { field: 'target' }, absoluteTolerance: 1e-6 }, weight: 1, timeoutMs: 1000 },
    {
      name: 'format',
      grader: { type: 'string', mode: 'regex', expected: { value: 'The answer is [-+]?\\d+\\.?$' } },
      weight: 0.5,
      gate: { component: 'correct' },
      timeoutMs: 1000,
    },
  ],
};

const QUICK_OPERANDS: OperandRange = { addMax: 20, mulMax: 10 };

/** How a task words its sums: text after the question, an optional system message, operand sizes. */
interface ArithmeticStyle {
  instruction?: string;
  system?: string;
  range?: OperandRange;
}

function arithmeticRows(count: number, seed: number, { instruction = '', system, range }: ArithmeticStyle): PromptRow[] {
  const random = seededRandom(seed);
  return Array.from({ length: count }, () => {
    const p = arithmeticProblem(random, range);
    return { prompt: p.prompt + instruction, target: p.target, ...(system ? { system } : {}) };
  });
}

const LOCAL_TASKS: Record<string, { rows: (count: number, seed: number) => PromptRow[]; reward: RewardConfig }> = {
  'tiny-arithmetic': { rows: (n, seed) => arithmeticRows(n, seed, {}), reward: TINY_REWARD },
  'quick-arithmetic': {
    rows: (n, seed) => arithmeticRows(n, seed, { instruction: ' End your reply with: The answer is N.', system: 'Be brief.', range: QUICK_OPERANDS }),
    reward: QUICK_REWARD,
  },
};

/** The reward config of a task given by name (built-in or local); undefined for any other name (a user's file). */
export function namedTaskReward(task: string): RewardConfig | undefined {
  const local = LOCAL_TASKS[task];
  if (local) return local.reward;
  return (BUILTIN_TASKS as readonly string[]).includes(task) ? REWARD_CONFIGS[task as BuiltinTask] : undefined;
}

/**
 * A built-in task (its data in data/, held-out rows kept apart) or a user's JSONL file of prompt
 * rows, whose reward then comes from --reward-config.
 */
export function loadTask(task: string, root: string, evalCount: number, evalData?: string): TaskData {
  const local = LOCAL_TASKS[task];
  if (local) {
    // Held-out rows come from another seed; any problem that also came up for training is dropped there.
    const held = evalData ? readPromptRows(evalData) : local.rows(evalCount, 2);
    const heldPrompts = new Set(held.map((r) => r.prompt));
    return { name: task, train: local.rows(2000, 1).filter((r) => !heldPrompts.has(r.prompt)), eval: held, rewardConfig: local.reward };
  }
  if ((BUILTIN_TASKS as readonly string[]).includes(task)) {
    const builtin = task as BuiltinTask;
    if (builtin === 'triton') {
      return {
        name: task,
        train: readPromptRows(join(root, 'data', 'triton-train.jsonl')),
        eval: readPromptRows(evalData ?? join(root, 'data', 'triton-test.jsonl')),
        rewardConfig: REWARD_CONFIGS.triton,
      };
    }
    const rows = readPromptRows(join(root, 'data', `${builtin}.jsonl`));
    // The last rows are held out for validation (never trained on).
    const held = evalData ? readPromptRows(evalData) : rows.slice(rows.length - evalCount);
    return { name: task, train: evalData ? rows : rows.slice(0, rows.length - evalCount), eval: held, rewardConfig: REWARD_CONFIGS[builtin] };
  }
  if (!existsSync(task)) throw new Error(`unknown task '${task}': not one of ${[...BUILTIN_TASKS, ...Object.keys(LOCAL_TASKS)].join(', ')} and not a JSONL file`);
  const train = readPromptRows(task);
  return { name: task, train, eval: evalData ? readPromptRows(evalData) : train.slice(0, evalCount), rewardConfig: null };
}
