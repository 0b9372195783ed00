import { pick, randomInt, type Random } from '../data/random.js';
import { evaluateExpression } from '../rewards/graders/arithmetic-expression.js';

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

export const COUNTDOWN_SYSTEM_PROMPT =
  'You are a helpful assistant. You first think about the reasoning process and then provide the user with the answer.';

export function countdownPrompt(row: CountdownRow): string {
  return (
    `Using the numbers [${row.numbers.join(', ')}], create an equation that equals ${row.target}. ` +
    'You can use basic arithmetic operations (+, -, *, /) and each number must be used exactly once. ' +
    'Show your work in <think> </think> tags. And return the final equation in <answer> </answer> tags, ' +
    'for example <answer> (1 + 2) / 3 </answer>.'
  );
}

/** A solvable row: a random expression over 3 or 4 numbers whose value is a positive integer. */
export function countdownRow(random: Random): CountdownRow {
  for (;;) {
    const count = randomInt(random, 3, 4);
    const numbers = Array.from({ length: count }, () => randomInt(random, 1, 99));
    let expression = String(numbers[0]);
    for (const n of numbers.slice(1)) expression = `(${expression} ${pick(random, ['+', '-', '*', '/'])} ${n})`;
    const { value } = evaluateExpression(expression);
    if (value.den !== 1n || value.num <= 0n || value.num > 1000n) continue;
    const shuffled = [...numbers].sort(() => random() - 0.5);
    return { numbers: shuffled, target: Number(value.num), solution: expression.slice(1, -1) };
  }
}
