import { locateAnswer } from '../extract.js';
import type { GradeResult, Grader, GradingInput } from '../types.js';
import { evaluateExpression, ExpressionError, fractionToString } from './arithmetic-expression.js';

/** Countdown (Predibase's RFT-vs-SFT task, after TinyZero): the equation must use each given number once and reach the target. */
/** 1 when the `<answer>` expression uses exactly the given numbers, each once, and equals the target. */
export class CountdownGrader implements Grader {
  async grade(input: GradingInput): Promise<GradeResult> {
    const numbers = input.example.numbers;
    const target = input.example.target;
    if (!Array.isArray(numbers) || typeof target !== 'number') throw new Error('a countdown example needs numbers and target');
    const answer = locateAnswer(input.completion, { tag: 'answer' });
    if (answer === undefined) return { score: 0, reason: 'no <answer> block' };
    const equation = answer.split('=')[0]; // "(1 + 2) * 3 = 9" is fine: only the left side is judged
    let evaluated;
    try {
      evaluated = evaluateExpression(equation);
    } catch (error) {
      if (error instanceof ExpressionError) return { score: 0, reason: `invalid expression: ${error.message}` };
      throw error;
    }
    const used = [...evaluated.literals].sort((a, b) => a - b).join(',');
    const allowed = [...(numbers as number[])].sort((a, b) => a - b).join(',');
    if (used !== allowed) return { score: 0, reason: `uses [${used}], must use each of [${allowed}] exactly once` };
    const { value } = evaluated;
    const reached = value.den === 1n && value.num === BigInt(target);
    return { score: reached ? 1 : 0, reason: `evaluates to ${fractionToString(value)}, target ${target}` };
  }
}
