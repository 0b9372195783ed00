import { resolveExpected, type ExpectedValue } from '../expected.js';
import { locateAnswer, missingAnswer, type AnswerLocation } from '../extract.js';
import type { GradeResult, Grader, GradingInput } from '../types.js';

export interface StringMatchOptions {
  /** exact: the whole answer; contains: a substring; regex: the expected value is a pattern. */
  readonly mode: 'exact' | 'contains' | 'regex';
  readonly expected: ExpectedValue;
  readonly caseSensitive?: boolean;
  /** Collapse runs of whitespace and trim both sides before comparing (default true). */
  readonly normalizeWhitespace?: boolean;
  readonly from?: AnswerLocation;
}

export class StringMatchGrader implements Grader {
  constructor(private readonly options: StringMatchOptions) {}

  async grade(input: GradingInput): Promise<GradeResult> {
    const answer = locateAnswer(input.completion, this.options.from);
    if (answer === undefined) return { score: 0, reason: missingAnswer(this.options.from) };
    const expected = String(resolveExpected(this.options.expected, input.example));
    const matched = this.matches(this.normalize(answer), expected);
    return { score: matched ? 1 : 0, reason: `${this.options.mode} match ${matched ? 'found' : 'not found'} for ${JSON.stringify(expected)}` };
  }

  private matches(answer: string, expected: string): boolean {
    const { mode, caseSensitive = false } = this.options;
    if (mode === 'regex') return new RegExp(expected, caseSensitive ? 'u' : 'iu').test(answer);
    const [a, e] = caseSensitive ? [answer, this.normalize(expected)] : [answer.toLowerCase(), this.normalize(expected).toLowerCase()];
    return mode === 'exact' ? a === e : a.includes(e);
  }

  private normalize(text: string): string {
    return this.options.normalizeWhitespace === false ? text : text.replace(/\s+/g, ' ').trim();
  }
}
