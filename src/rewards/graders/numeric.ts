import { resolveExpected, type ExpectedValue } from '../expected.js';
import { locateAnswer, missingAnswer, type AnswerLocation } from '../extract.js';
import type { GradeResult, Grader, GradingInput } from '../types.js';

export interface NumericMatchOptions {
  readonly expected: ExpectedValue;
  /** |answer − expected| ≤ absoluteTolerance + relativeTolerance·|expected| passes (defaults 1e-6 and 0). */
  readonly absoluteTolerance?: number;
  readonly relativeTolerance?: number;
  readonly from?: AnswerLocation;
}

// Integers, decimals and exponents, with optional thousands separators ("1,234.5") and a sign.
const NUMBER = /[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][-+]?\d+)?|[-+]?\.\d+/g;

/** The last number in the text (answers usually end with the result), or undefined when there is none. */
export function lastNumber(text: string): number | undefined {
  const matches = text.match(NUMBER);
  if (!matches) return undefined;
  return Number(matches[matches.length - 1].replace(/,/g, ''));
}

export class NumericMatchGrader implements Grader {
  constructor(private readonly options: NumericMatchOptions) {}

  async grade(input: GradingInput): Promise<GradeResult> {
    const answer = locateAnswer(input.completion, this.options.from);
    if (answer === undefined) return { score: 0, reason: missingAnswer(this.options.from) };
    const value = lastNumber(answer);
    if (value === undefined) return { score: 0, reason: 'no number in the answer' };
    const expected = Number(resolveExpected(this.options.expected, input.example));
    if (!Number.isFinite(expected)) throw new Error(`expected value is not a number: ${expected}`);
    const tolerance = (this.options.absoluteTolerance ?? 1e-6) + (this.options.relativeTolerance ?? 0) * Math.abs(expected);
    const ok = Math.abs(value - expected) <= tolerance;
    return { score: ok ? 1 : 0, reason: `answered ${value}, expected ${expected}${ok ? '' : ` (tolerance ${tolerance})`}` };
  }
}
