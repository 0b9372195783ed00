import { recordOp } from '../autograd/grad-node.js';
import { formatShape, type Tensor } from '../gpu/tensor.js';
import { matmul, matmulInto } from './matmul.js';

/**
 * x·Wᵀ + scaling·h·Bᵀ for x [N, in], W [out, in], h [N, r] (x's low-rank projection, e.g. LoRA's
 * x·Aᵀ) and B [out, r]: two products into one output, the second accumulated with its scale folded
 * into the product's alpha, so the low-rank term costs no separate scale or add dispatches.
 * Gradients: dx = g·W, dW = gᵀ·x, dh = scaling·g·B, dB = scaling·gᵀ·h (scaled inside the products too).
 */
export function projectPlusLowRank(x: Tensor, weight: Tensor, h: Tensor, b: Tensor, scaling: number): Tensor {
  const [rows, inFeatures] = x.shape;
  const [outFeatures, rank] = b.shape;
  if (x.shape.length !== 2 || weight.shape.length !== 2 || h.shape.length !== 2 || b.shape.length !== 2 || weight.shape[1] !== inFeatures || weight.shape[0] !== outFeatures || h.shape[0] !== rows || h.shape[1] !== rank) {
    throw new Error(`projectPlusLowRank: x ${formatShape(x.shape)}, W ${formatShape(weight.shape)}, h ${formatShape(h.shape)} and B ${formatShape(b.shape)} do not make x·Wᵀ + h·Bᵀ`);
  }
  if (weight.dtype === 'f16' && weight.requiresGrad) throw new Error(`projectPlusLowRank: an f16 weight ${formatShape(weight.shape)} is frozen and cannot require grad`);
  const gpu = x.gpu;
  const out = gpu.empty([rows, outFeatures]);
  matmulInto(out, x, weight, { transB: true, accumulate: false });
  matmulInto(out, h, b, { transB: true, accumulate: true, alpha: scaling });
  const scaledProduct = (shape: number[], a: Tensor, c: Tensor, transA: boolean): Tensor => {
    const product = gpu.empty(shape);
    matmulInto(product, a, c, { transA, accumulate: false, alpha: scaling });
    return product;
  };
  return recordOp('project_plus_low_rank', [x, weight, h, b], out, (g) => [
    x.requiresGrad ? matmul(g, weight) : null,
    weight.requiresGrad ? matmul(g, x, { transA: true }) : null,
    h.requiresGrad ? scaledProduct([rows, rank], g, b, false) : null,
    b.requiresGrad ? scaledProduct([outFeatures, rank], g, h, true) : null,
  ]);
}
