import { recordOp } from '../autograd/grad-node.js';
import type { Tensor } from '../gpu/tensor.js';
import { assertF32 } from '../ops/shape.js';

const WG = 256;
/** The dropout kernel compares the top 24 bits of each element's hash with p · 2²⁴. */
const MASK_BITS = 24;

function checkU32(what: string, v: number): void {
  if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new Error(`${what} must be an integer in [0, 2³²), got ${v}`);
}

/** PCG hash (Jarzynski & Olano 2020), bit for bit the `pcg` of shaders/dropout.wgsl. */
export function pcgHash(v: number): number {
  const state = (Math.imul(v >>> 0, 747796405) + 2891336453) >>> 0;
  const word = Math.imul((state >>> ((state >>> 28) + 4)) ^ state, 277803737) >>> 0;
  return ((word >>> 22) ^ word) >>> 0;
}

/**
 * Random numbers here are counter-based: a (seed, stream) pair names a stream, and its i-th draw
 * is a hash of (key, i). No generator state to carry, so any draw can be recomputed anywhere —
 * the dropout backward recomputes its mask instead of storing it.
 */
export function streamKey(seed: number, stream: number): number {
  checkU32('random seed', seed);
  checkU32('random stream', stream);
  return pcgHash(seed ^ pcgHash(stream));
}

/** The index-th 32 random bits of the stream with this key, as the dropout kernel draws them. */
export function streamBits(key: number, index: number): number {
  return pcgHash(pcgHash(index) ^ key);
}

/** Elements whose top 24 hash bits fall below this are dropped; P(drop) = threshold / 2²⁴ ≈ p. */
export function dropoutThreshold(p: number): number {
  return Math.round(p * 2 ** MASK_BITS);
}

export interface DropoutOptions {
  /** Probability of zeroing an element, in [0, 1). */
  p: number;
  seed: number;
  /** Which draw of the seed's sequence: a new stream for every application gives a new mask. */
  stream: number;
}

/**
 * Inverted dropout on an f32 tensor: each element is zeroed with probability p and the rest are
 * scaled by 1/(1−p), so the expectation is unchanged and inference needs no rescaling. The mask
 * is fixed by (seed, stream), so a run reproduces; the gradient goes through the same mask.
 */
export function dropout(x: Tensor, options: DropoutOptions): Tensor {
  const { p, seed, stream } = options;
  if (!(p >= 0 && p < 1)) throw new Error(`dropout: p must be in [0, 1), got ${p}`);
  assertF32('dropout', x);
  if (p === 0) return x;
  const key = streamKey(seed, stream);
  const masked = (input: Tensor): Tensor => {
    const gpu = input.gpu;
    const out = gpu.empty(input.shape);
    gpu.run(gpu.kernel('dropout'), [input, out], gpu.grid1d(input.size, WG), {
      u32: [input.size, key, dropoutThreshold(p)],
      f32: [1 / (1 - p)],
    });
    return out;
  };
  return recordOp('dropout', [x], masked(x), (g) => [masked(g)]);
}
