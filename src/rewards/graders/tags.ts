import type { GradeResult, Grader, GradingInput } from '../types.js';

export interface TagFormatOptions {
  /** Each must appear exactly once as a non-empty `<tag>…</tag>` block. */
  readonly tags: readonly string[];
  /** Also require the blocks in the listed order, one after another (e.g. think before answer). */
  readonly ordered?: boolean;
}

/** Fractional credit: one criterion per tag, plus one for the order when asked. */
export class TagFormatGrader implements Grader {
  constructor(private readonly options: TagFormatOptions) {}

  async grade(input: GradingInput): Promise<GradeResult> {
    const text = input.completion;
    const verdicts = this.options.tags.map((tag) => ({ label: `<${tag}>`, problem: tagProblem(text, tag) }));
    if (this.options.ordered) verdicts.push({ label: 'order', problem: orderProblem(text, this.options.tags) });
    const passed = verdicts.filter((v) => v.problem === undefined).length;
    const reason = verdicts.map((v) => `${v.label}: ${v.problem ?? 'ok'}`).join('; ');
    return { score: passed / verdicts.length, reason };
  }
}

function tagProblem(text: string, tag: string): string | undefined {
  const opens = text.split(`<${tag}>`).length - 1;
  const closes = text.split(`</${tag}>`).length - 1;
  if (opens !== 1 || closes !== 1) return `found ${opens} opening and ${closes} closing tags, expected one of each`;
  const open = text.indexOf(`<${tag}>`);
  const close = text.indexOf(`</${tag}>`);
  if (close < open) return 'closing tag before opening tag';
  if (!text.slice(open + tag.length + 2, close).trim()) return 'empty';
  return undefined;
}

function orderProblem(text: string, tags: readonly string[]): string | undefined {
  let previousEnd = -1;
  for (const tag of tags) {
    const open = text.indexOf(`<${tag}>`);
    if (open < 0 || open < previousEnd) return `<${tag}> is missing or out of order`;
    previousEnd = text.indexOf(`</${tag}>`, open);
  }
  return undefined;
}
