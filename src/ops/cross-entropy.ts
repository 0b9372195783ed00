import { recordOp } from '../autograd/grad-node.js';
import { formatShape, type Tensor } from '../gpu/tensor.js';
import { assertGradientFits } from './gradient.js';
import { assertF32, assertRank } from './shape.js';
import { tokenLogprobs } from './token-logprobs.js';

const WG = 256;

/** factor · Σ mask·x / Σ mask as a [1] tensor; differentiable in x (the mask is a constant). */
function scaledMaskedMean(op: string, x: Tensor, mask: Tensor | undefined, factor: number): Tensor {
  assertRank(op, x, 1);
  assertF32(op, x);
  if (mask) {
    assertF32(op, mask);
    if (mask.shape.length !== 1 || mask.shape[0] !== x.shape[0]) {
      throw new Error(`${op}: mask ${formatShape(mask.shape)} does not match ${formatShape(x.shape)}`);
    }
  }
  const gpu = x.gpu;
  const n = x.size;
  const weights = mask ?? x;
  const specialisation = { WG, HAS_MASK: mask !== undefined };
  const out = gpu.empty([1]);
  const maskSum = gpu.empty([1]);
  gpu.run(gpu.kernel('masked_mean', specialisation), [x, weights, out, maskSum], [1], { u32: [n], f32: [factor] });
  recordOp(op, mask ? [x, mask] : [x], out, (g) => {
    assertGradientFits(op, g, out);
    const dx = gpu.empty(x.shape);
    gpu.run(gpu.kernel('masked_mean_backward', specialisation), [g, weights, maskSum, dx], gpu.grid1d(n, WG), { u32: [n], f32: [factor] });
    return [dx, null];
  });
  if (!out.node) maskSum.dispose();
  return out;
}

/** Σ mask·x / Σ mask over a vector x [N] (the plain mean without a mask) as a [1] tensor; NaN when Σ mask = 0. */
export function maskedMean(x: Tensor, mask?: Tensor): Tensor {
  return scaledMaskedMean('maskedMean', x, mask, 1);
}

/**
 * Mean negative log-likelihood −Σ mask·log softmax(logits)[n, targets[n]] / Σ mask over logits
 * [N, V] and u32 targets [N], as a [1] tensor (F.cross_entropy; a 0/1 mask plays ignore_index).
 */
export function crossEntropy(logits: Tensor, targets: Tensor, mask?: Tensor): Tensor {
  return scaledMaskedMean('crossEntropy', tokenLogprobs(logits, targets), mask, -1);
}
