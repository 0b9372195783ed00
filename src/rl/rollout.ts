import { noGrad } from '../autograd/grad-node.js';
import { generate, logitRows, projectionRows, type FinishReason, type GenerateOptions } from '../generate/generate.js';
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
  /** Where the sampling forwards left this sequence's linear outputs (RolloutOptions.projections; see generate's Completion). */
  projectionSlots?: number[];
}

export interface RolloutOptions extends Omit<GenerateOptions, 'decode'> {
  /** After each decode step of a generation batch: the step, and the tokens the whole rollout has generated so far. */
  onStep?: (step: number, generated: number) => void;
  numGenerations: number;
  /** Sequences generated together; prompts × G is split into chunks of this size. */
  generationBatchSize: number;
}

/** The sequences of a rollout in order, with their prompt: G consecutive ones per prompt. */
function requestsOf(prompts: readonly number[][], numGenerations: number) {
  return prompts.flatMap((ids, promptIndex) => Array.from({ length: numGenerations }, () => ({ ids, promptIndex })));
}

/** Chunks of generationBatchSize sequences, as rollout() samples them. */
function chunksOf<T>(items: readonly T[], size: number): T[][] {
  const chunks: T[][] = [];
  for (let start = 0; start < items.length; start += size) chunks.push(items.slice(start, start + size));
  return chunks;
}

type StoreSizing = Pick<RolloutOptions, 'numGenerations' | 'generationBatchSize' | 'maxNewTokens' | 'sharePrompts'>;

/** A per-generation-batch count (projectionRows, logitRows) summed over the batches rollout() samples. */
function overGenerationBatches(prompts: readonly number[][], options: StoreSizing, count: (prompts: number[][], maxNewTokens: number, sharePrompts?: boolean) => number): number {
  return chunksOf(requestsOf(prompts, options.numGenerations), options.generationBatchSize).reduce((n, chunk) => n + count(chunk.map((r) => r.ids), options.maxNewTokens, options.sharePrompts), 0);
}

/** Rows rollout() appends to RolloutOptions.projections for these prompts: what the store must hold. */
export const rolloutProjectionRows = (prompts: readonly number[][], options: StoreSizing): number => overGenerationBatches(prompts, options, projectionRows);

/** The most rows of logits rollout() keeps in a store that keeps them (logitRows). */
export const rolloutLogitRows = (prompts: readonly number[][], options: StoreSizing): number => overGenerationBatches(prompts, options, logitRows);

/**
 * Samples G completions for every prompt with the current policy (adapters on), in GPU batches of
 * `generationBatchSize`. The seed advances per chunk so every chunk draws fresh samples while a
 * rerun with the same seed reproduces them.
 */
export async function rollout(model: LlamaModel, tokenizer: Tokenizer, prompts: readonly number[][], options: RolloutOptions): Promise<Completion[]> {
  const decode = (ids: readonly number[]) => tokenizer.decode(ids, { skipSpecialTokens: true });
  const out: Completion[] = [];
  let start = 0;
  let generatedBefore = 0;
  const { onStep } = options;
  for (const chunk of chunksOf(requestsOf(prompts, options.numGenerations), options.generationBatchSize)) {
    const results = await noGrad(() =>
      generate(
        model,
        chunk.map((r) => r.ids),
        { ...options, seed: (options.seed ?? 0) * 1_000_003 + start, decode, onStep: onStep && ((step, generated) => onStep(step, generatedBefore + generated)) },
      ),
    );
    generatedBefore += results.reduce((n, r) => n + r.tokens.length, 0);
    results.forEach((r, i) =>
      out.push({
        promptIndex: chunk[i].promptIndex,
        promptIds: chunk[i].ids,
        completionIds: r.tokens,
        text: decode(r.tokens),
        finishReason: r.finishReason,
        ...(r.projectionSlots && { projectionSlots: r.projectionSlots }),
      }),
    );
    start += chunk.length;
  }
  return out;
}
