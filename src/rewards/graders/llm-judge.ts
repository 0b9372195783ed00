import type { GradeResult, Grader, GradingInput } from '../types.js';

export interface GenerationOptions {
  readonly maxNewTokens: number;
  /** 0 for greedy decoding: a judge should be deterministic. */
  readonly temperature: number;
}

/**
 * What the judge needs from a local model: prompts in, completions out, in order. The project's generation
 * engine (or a fake in tests) provides it.
 */
export interface TextGenerator {
  generate(prompts: readonly string[], options: GenerationOptions): Promise<string[]>;
}

export interface LlmJudgeOptions {
  readonly generator: TextGenerator;
  /** What a good answer looks like, in words the judge model reads. */
  readonly rubric: string;
  /** The judge's scale; its score is mapped linearly onto [0, 1] (default 0–10). */
  readonly scale?: { readonly min: number; readonly max: number };
  /** Optional template with {rubric}, {prompt}, {completion}, {min}, {max} placeholders. */
  readonly template?: string;
  readonly generation?: GenerationOptions;
}

export const DEFAULT_JUDGE_TEMPLATE = `You are grading an answer against a rubric.

Rubric:
{rubric}

Question:
{prompt}

Answer to grade:
{completion}

Think briefly, then give your verdict on the last line as "Score: N" with N an integer from {min} to {max}.`;

// "Score: 7", "score = 7.5", "Score: 7/10": the last such mention wins, since judges may quote the format first.
const SCORE = /score\s*[:=]\s*(-?\d+(?:\.\d+)?)(?:\s*\/\s*\d+(?:\.\d+)?)?/gi;

export function parseJudgeScore(text: string): number | undefined {
  const matches = [...text.matchAll(SCORE)];
  return matches.length ? Number(matches[matches.length - 1][1]) : undefined;
}

/**
 * LLM-as-judge: asks a local model to grade each completion on a rubric and parses its score. Requests that
 * arrive in the same tick are sent to the generator as one batch, since batched generation is what a local
 * model does efficiently.
 */
export class LlmJudgeGrader implements Grader {
  private queue: { prompt: string; resolve(text: string): void; reject(error: unknown): void }[] = [];

  constructor(private readonly options: LlmJudgeOptions) {}

  async grade(input: GradingInput): Promise<GradeResult> {
    const { min, max } = this.options.scale ?? { min: 0, max: 10 };
    const verdict = await this.enqueue(this.judgePrompt(input, min, max));
    const raw = parseJudgeScore(verdict);
    if (raw === undefined) return { score: 0, reason: `no "Score: N" in the judge's reply: ${verdict.slice(-200)}` };
    const score = Math.min(1, Math.max(0, (raw - min) / (max - min)));
    return { score, reason: `judge scored ${raw} on ${min}–${max}` };
  }

  private judgePrompt(input: GradingInput, min: number, max: number): string {
    const fields: Record<string, string> = {
      rubric: this.options.rubric,
      prompt: input.prompt,
      completion: input.completion,
      min: String(min),
      max: String(max),
    };
    // One pass over the template, so braces inside the completion are never expanded.
    return (this.options.template ?? DEFAULT_JUDGE_TEMPLATE).replace(/\{(\w+)\}/g, (whole, key: string) => fields[key] ?? whole);
  }

  private enqueue(prompt: string): Promise<string> {
    return new Promise<string>((resolve, reject) => {
      if (this.queue.length === 0) setImmediate(() => void this.flush());
      this.queue.push({ prompt, resolve, reject });
    });
  }

  private async flush(): Promise<void> {
    const batch = this.queue;
    this.queue = [];
    try {
      const replies = await this.options.generator.generate(
        batch.map((item) => item.prompt),
        this.options.generation ?? { maxNewTokens: 256, temperature: 0 },
      );
      if (replies.length !== batch.length) throw new Error(`the generator returned ${replies.length} replies for ${batch.length} prompts`);
      batch.forEach((item, i) => item.resolve(replies[i]));
    } catch (error) {
      for (const item of batch) item.reject(error);
    }
  }
}
