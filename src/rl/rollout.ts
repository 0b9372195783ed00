import { noGrad } from '../autograd/grad-node.js';
import { generate, type FinishReason, type GenerateOptions } from '../generate/generate.js';
import type { LlamaModel } from '../model/llama.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';

/** One sampled answer to one prompt. */
export interface Completion {
  /** Index of the prompt in the step's batch; the G completions of a prompt are consecutive. */
  promptIndex: number;
  promptIds: number[];
  completionIds: number[];
  text: string;
  finishReason: FinishReason;
}

export interface RolloutOptions extends Omit<GenerateOptions, 'decode'> {
  numGenerations: number;
  /** Sequences generated together; prompts × G is split into chunks of this size. */
  generationBatchSize: number;
}

/**
 * Samples G completions for every prompt with the current policy (adapters on), in GPU batches of
 * `generationBatchSize`. The seed advances per chunk so every chunk draws fresh samples while a
 * rerun with the same seed reproduces them.
 */
export async function rollout(model: LlamaModel, tokenizer: Tokenizer, prompts: readonly number[][], options: RolloutOptions): Promise<Completion[]> {
  const requests = prompts.flatMap((ids, promptIndex) => Array.from({ length: options.numGenerations }, () => ({ ids, promptIndex })));
  const decode = (ids: readonly number[]) => tokenizer.decode(ids, { skipSpecialTokens: true });
  const out: Completion[] = [];
  for (let start = 0; start < requests.length; start += options.generationBatchSize) {
    const chunk = requests.slice(start, start + options.generationBatchSize);
    const results = await noGrad(() =>
      generate(
        model,
        chunk.map((r) => r.ids),
        { ...options, seed: (options.seed ?? 0) * 1_000_003 + start, decode },
      ),
    );
    results.forEach((r, i) =>
      out.push({ promptIndex: chunk[i].promptIndex, promptIds: chunk[i].ids, completionIds: r.tokens, text: decode(r.tokens), finishReason: r.finishReason }),
    );
  }
  return out;
}
