import { locateAnswer, missingAnswer, type AnswerLocation } from '../extract.js';
import type { GradeResult, Grader, GradingInput } from '../types.js';
import { evaluateExpression, ExpressionError, fractionToString } from './arithmetic-expression.js';

export interface CountdownOptions {
  /**
   * Where the equation is: the last `<answer>` block unless said otherwise. Read before a phrase
   * (`{"before": "="}`, an equation in running text), it is the arithmetic that ends there: the words
   * leading up to it on the line are not part of it ("So 13 + 6 = 19" reads "13 + 6").
   */
  readonly from?: AnswerLocation;
}

/** The arithmetic (digits, operators, parentheses, spaces) at the end of a text. */
const ARITHMETIC_TAIL = /[\d\s+\-*/×÷()]*$/;

/**
 * Countdown (Predibase's RFT-vs-SFT task, after TinyZero): 1 when the answer's expression uses exactly
 * the given numbers, each once, and equals the target.
 */
export class CountdownGrader implements Grader {
  private readonly from: AnswerLocation;

  constructor(options: CountdownOptions = {}) {
    this.from = options.from ?? { tag: 'answer' };
  }

  async grade(input: GradingInput): Promise<GradeResult> {
    const numbers = input.example.numbers;
    const target = input.example.target;
    if (!Array.isArray(numbers) || typeof target !== 'number') throw new Error('a countdown example needs numbers and target');
    const answer = locateAnswer(input.completion, this.from);
    if (answer === undefined) return { score: 0, reason: missingAnswer(this.from) };
    const leftSide = answer.split('=')[0]; // "(1 + 2) * 3 = 9" is fine: only the left side is judged
    const equation = this.from.before === undefined ? leftSide : (ARITHMETIC_TAIL.exec(leftSide)?.[0] ?? '');
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
