import type { HfModelConfig } from '../io/hf-config.js';
import { MATMUL_MIN_ROWS_PER_WORKGROUP } from '../ops/matmul-variants.js';

/** The device limits a generation batch runs into. */
export interface BatchLimits {
  readonly maxBufferSize: number;
  readonly maxStorageBufferBindingSize: number;
  readonly maxComputeWorkgroupsPerDimension: number;
}

export interface BatchLimit {
  /** The most sequences generate() can run together. */
  readonly batch: number;
  /** Which limit binds, in words. */
  readonly reason: string;
}

/**
 * The largest batch of `promptTokens`-long prompts (left-padded to the longest) with room for
 * `newTokens` that fits the device: every per-batch buffer (a layer's keys or values, the prompt's
 * MLP activations, the logits) must fit one storage binding, sampling and attention take one
 * workgroup per sequence, and a prefill matmul's rows (batch × prompt tokens) must fit the
 * workgroup grid. Checked before the first dispatch, so a batch that is too large is refused with
 * what fits instead of failing inside Dawn.
 */
export function generationBatchLimit(config: HfModelConfig, limits: BatchLimits, promptTokens: number, newTokens: number): BatchLimit {
  const binding = Math.min(limits.maxBufferSize, limits.maxStorageBufferBindingSize);
  const perSequence: [number, string][] = [
    [(promptTokens + newTokens) * config.num_key_value_heads * config.head_dim * 4, 'the keys of one layer'],
    [promptTokens * config.intermediate_size * 4, "the prompt's MLP activations"],
    [promptTokens * Math.max(config.hidden_size, config.num_attention_heads * config.head_dim) * 4, "the prompt's hidden states"],
    [config.vocab_size * 4, 'the logits'],
  ];
  const [bytes, buffer] = perSequence.reduce((a, b) => (b[0] > a[0] ? b : a));
  const grid = limits.maxComputeWorkgroupsPerDimension;
  const bounds: BatchLimit[] = [
    { batch: Math.floor(binding / bytes), reason: `${buffer} take ${bytes} bytes per sequence, and one buffer holds at most ${binding} bytes` },
    { batch: grid, reason: `sampling takes one workgroup per sequence, at most ${grid} per dispatch` },
    {
      batch: Math.floor((grid * MATMUL_MIN_ROWS_PER_WORKGROUP) / promptTokens),
      reason: `a prefill matmul has batch × ${promptTokens} rows, at most ${grid} workgroups of ${MATMUL_MIN_ROWS_PER_WORKGROUP} rows`,
    },
  ];
  return bounds.reduce((a, b) => (b.batch < a.batch ? b : a));
}

/** Throws, naming `flag`, when `batch` sequences do not fit the device (see generationBatchLimit). */
export function checkGenerationBatch(flag: string, batch: number, config: HfModelConfig, limits: BatchLimits, promptTokens: number, newTokens: number): void {
  const fits = generationBatchLimit(config, limits, promptTokens, newTokens);
  if (batch > fits.batch) {
    throw new Error(`${flag} ${batch} does not fit this device: at most ${fits.batch} sequences of ${promptTokens} prompt + ${newTokens} new tokens (${fits.reason})`);
  }
}
