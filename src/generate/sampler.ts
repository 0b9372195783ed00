import type { Tensor } from '../gpu/tensor.js';
import { assertF32, assertRank } from '../ops/shape.js';

export interface SamplingOptions {
  /** 0 means greedy (argmax). */
  temperature: number;
  /** 0 disables. */
  topK: number;
  /** 1 disables. */
  topP: number;
  /** 0 disables. */
  minP: number;
  seed: number;
}

export const DEFAULT_SAMPLING: SamplingOptions = { temperature: 1, topK: 0, topP: 1, minP: 0, seed: 0 };

/** What sampleTokens writes for a row whose logits hold a NaN or ±inf (shaders/sample.wgsl's NON_FINITE). */
export const NON_FINITE_TOKEN = 0xfffffffe;

/** The model's logits were not finite: its weights (or adapters) hold NaN or ±inf, or its activations overflowed. */
export class NonFiniteLogits extends Error {}

/**
 * Draws one token id per row of logits [rows, V] on the GPU, into a u32 tensor [rows]. The draw
 * depends only on (seed, row, step), so a run with the same seed reproduces its samples. `drawRows`
 * (u32 [rows]) gives the row number each row's draw is keyed by (default: its own index), so a
 * sequence draws the same numbers after other rows have left the batch. A row whose logits are
 * not all finite gets NON_FINITE_TOKEN.
 */
export function sampleTokens(logits: Tensor, options: SamplingOptions, step: number, drawRows?: Tensor): Tensor {
  assertRank('sampleTokens', logits, 2, 'logits');
  assertF32('sampleTokens', logits);
  const { temperature, topK, topP, minP, seed } = options;
  if (!(temperature >= 0) || !(topP > 0 && topP <= 1) || !(minP >= 0 && minP < 1) || !Number.isInteger(topK) || topK < 0) {
    throw new Error(`sampleTokens: invalid options ${JSON.stringify(options)}`);
  }
  const [rows, vocab] = logits.shape;
  const gpu = logits.gpu;
  if (drawRows && (drawRows.dtype !== 'u32' || drawRows.size !== rows)) throw new Error(`sampleTokens: drawRows must be u32 [${rows}], got ${drawRows}`);
  const rowKeys = drawRows ?? gpu.tensor(Array.from({ length: rows }, (_, i) => i), [rows], 'u32');
  const tokens = gpu.empty([rows], 'u32');
  gpu.run(gpu.kernel('sample'), [logits, tokens, rowKeys], [rows], {
    u32: [vocab, topK, seed >>> 0, step >>> 0],
    f32: [temperature, topP, minP],
  });
  if (!drawRows) rowKeys.dispose();
  return tokens;
}
