import { resolveExpected, type ExpectedValue } from '../expected.js';
import { locateAnswer, missingAnswer, type AnswerLocation } from '../extract.js';
import type { GradeResult, Grader, GradingInput } from '../types.js';

export interface RankOptions {
  readonly expected: ExpectedValue;
  /** Credit is given down to this rank: rank r ≤ topN scores (topN − r + 1) / topN, so rank 1 scores 1. */
  readonly topN: number;
  readonly from?: AnswerLocation;
}

// List markers a model may put before each item: "1.", "2)", "-", "*", "•".
const MARKER = /^\s*(?:\d+[.)]|[-*•])\s*/;

/** The answer's items, one per line, or comma-separated when it is a single line. */
export function rankedItems(answer: string): string[] {
  const lines = answer.split('\n').map((line) => line.trim()).filter(Boolean);
  const items = lines.length > 1 ? lines : answer.split(',');
  return items.map((item) => normalize(item.replace(MARKER, ''))).filter(Boolean);
}

function normalize(text: string): string {
  return text.trim().replace(/\s+/g, ' ').toLowerCase();
}

export class RankGrader implements Grader {
  constructor(private readonly options: RankOptions) {
    if (!Number.isInteger(options.topN) || options.topN < 1) throw new Error(`rank grader: topN must be a positive integer`);
  }

  async grade(input: GradingInput): Promise<GradeResult> {
    const answer = locateAnswer(input.completion, this.options.from);
    if (answer === undefined) return { score: 0, reason: missingAnswer(this.options.from) };
    const expected = normalize(String(resolveExpected(this.options.expected, input.example)));
    const rank = rankedItems(answer).indexOf(expected) + 1;
    const { topN } = this.options;
    if (rank === 0) return { score: 0, reason: `${JSON.stringify(expected)} is not in the list` };
    if (rank > topN) return { score: 0, reason: `${JSON.stringify(expected)} is at rank ${rank}, below the top ${topN}` };
    return { score: (topN - rank + 1) / topN, reason: `${JSON.stringify(expected)} is at rank ${rank} of the top ${topN}` };
  }
}
