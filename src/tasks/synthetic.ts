import type { Random } from '../data/random.js';

/**
 * Small verifiable problems with known answers, written as chat turns. They are the corpus the
 * `tiny` model is pre-trained on (so it knows the answer format and is right some of the time) and
 * the prompts RL then improves it on.
 */

export interface SyntheticProblem {
  kind: 'arithmetic' | 'countdown';
  prompt: string;
  /** A correct final answer (for countdown: one expression that reaches the target). */
  answer: string;
  /** What a grader checks: the number an arithmetic answer must equal, or the countdown target. */
  target: number;
  /** Countdown only: the numbers the expression must use, each exactly once. */
  numbers?: number[];
}

const randInt = (rand: Random, lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));

/** Largest operands of sums and differences, and of products. */
export interface OperandRange {
  addMax: number;
  mulMax: number;
}

export function arithmeticProblem(rand: Random, range: OperandRange = { addMax: 99, mulMax: 12 }): SyntheticProblem {
  const kind = randInt(rand, 0, 2);
  let a: number, b: number, op: string, value: number;
  if (kind === 2) {
    a = randInt(rand, 0, range.mulMax);
    b = randInt(rand, 0, range.mulMax);
    op = '*';
    value = a * b;
  } else {
    a = randInt(rand, 0, range.addMax);
    b = randInt(rand, 0, range.addMax);
    op = kind === 0 ? '+' : '-';
    value = kind === 0 ? a + b : a - b;
  }
  return { kind: 'arithmetic', prompt: `What is ${a} ${op} ${b}?`, answer: String(value), target: value };
}

/** Countdown with three small numbers: reach the target with + − × using each number once. */
export function countdownProblem(rand: Random): SyntheticProblem {
  const numbers = [randInt(rand, 1, 9), randInt(rand, 1, 9), randInt(rand, 1, 9)];
  const order = [...numbers].sort(() => rand() - 0.5);
  const ops = ['+', '-', '*'];
  const o1 = ops[randInt(rand, 0, 2)];
  const o2 = ops[randInt(rand, 0, 2)];
  const [x, y, z] = order;
  // Standard precedence: × binds before + and −.
  const apply = (p: number, op: string, q: number) => (op === '+' ? p + q : op === '-' ? p - q : p * q);
  const target = o2 === '*' && o1 !== '*' ? apply(x, o1, y * z) : apply(apply(x, o1, y), o2, z);
  return {
    kind: 'countdown',
    prompt: `Use ${numbers.join(', ')} to make ${target}.`,
    answer: `${x}${o1}${y}${o2}${z}`,
    target,
    numbers,
  };
}

export function syntheticProblem(rand: Random): SyntheticProblem {
  return rand() < 0.5 ? arithmeticProblem(rand) : countdownProblem(rand);
}

/** The assistant's reply in the format the graders expect. */
export function formatAnswer(answer: string): string {
  return `<answer>${answer}</answer>`;
}
