import { recordOp } from '../autograd/grad-node.js';
import { formatShape, type Tensor } from '../gpu/tensor.js';
import { sameShape } from './shape.js';
import { matmul, matmulInto } from './matmul.js';
import { LOW_RANK_BINDING_BYTES } from './matmul-variants.js';

/**
 * x·Wᵀ + scaling·(u·Aᵀ)·Bᵀ for x [N, in], W [out, in], u [N, in] (the low-rank term's input: x
 * itself, or x after LoRA's dropout), A [r, in] and B [out, r], recorded as one op: h = u·Aᵀ, then
 * the base product carrying scale·h·Bᵀ (in its own dispatch where the broadcast kernel runs it, else
 * a second product accumulated with the scale as its alpha), so the low-rank term costs no separate
 * scale or add dispatches.
 * Gradients, with dh = scaling·g·B: dx = g·W (+ dh·A carried by the same product when u is x, in
 * its dispatch where the broadcast kernel runs it, so the two paths into x need no separate sum),
 * du = dh·A, dW = gᵀ·x, dA = dhᵀ·u, dB = scaling·gᵀ·h; dA and dB are accumulated straight into A
 * and B's .grad when those exist.
 * `known`: the whole sum [N, out] as an earlier forward computed it from the same x with the same
 * weights (ProjectionStore), and that forward's h [N, r] where it was kept: nothing runs forward but
 * h = u·Aᵀ when it was not (dB needs it), and the backward is the same.
 * Returns the sum and h (a forward that keeps its outputs for later keeps h with them).
 */
export function projectPlusLowRank(
  x: Tensor,
  weight: Tensor,
  lowRankInput: Tensor,
  a: Tensor,
  b: Tensor,
  scaling: number,
  known?: { output: Tensor; h?: Tensor },
): { output: Tensor; h: Tensor } {
  const [rows, inFeatures] = x.shape;
  const [outFeatures, rank] = b.shape;
  const fits =
    x.shape.length === 2 && weight.shape.length === 2 && a.shape.length === 2 && b.shape.length === 2 &&
    weight.shape[1] === inFeatures && weight.shape[0] === outFeatures && a.shape[0] === rank && a.shape[1] === inFeatures &&
    lowRankInput.shape.length === 2 && lowRankInput.shape[0] === rows && lowRankInput.shape[1] === inFeatures;
  if (!fits) {
    throw new Error(`projectPlusLowRank: x ${formatShape(x.shape)}, W ${formatShape(weight.shape)}, u ${formatShape(lowRankInput.shape)}, A ${formatShape(a.shape)} and B ${formatShape(b.shape)} do not make x·Wᵀ + (u·Aᵀ)·Bᵀ`);
  }
  if (weight.dtype === 'f16' && weight.requiresGrad) throw new Error(`projectPlusLowRank: an f16 weight ${formatShape(weight.shape)} is frozen and cannot require grad`);
  if (known && !sameShape(known.output.shape, [rows, outFeatures])) {
    throw new Error(`projectPlusLowRank: the known output ${formatShape(known.output.shape)} is not [${rows}, ${outFeatures}]`);
  }
  if (known?.h && !sameShape(known.h.shape, [rows, rank])) throw new Error(`projectPlusLowRank: the known h ${formatShape(known.h.shape)} is not [${rows}, ${rank}]`);
  const gpu = x.gpu;
  // h and dh are bound at one size for any row count (LOW_RANK_BINDING_BYTES).
  const h = known?.h ?? gpu.empty([rows, rank], 'f32', LOW_RANK_BINDING_BYTES);
  if (!known?.h) matmulInto(h, lowRankInput, a, { transB: true, accumulate: false });
  let out = known?.output;
  if (!out) {
    out = gpu.empty([rows, outFeatures]);
    matmulInto(out, x, weight, { transB: true, accumulate: false, plusLowRank: { h, l: b, scale: scaling } });
  }
  const separateInput = lowRankInput !== x;
  const inputs = separateInput ? [x, weight, lowRankInput, a, b] : [x, weight, a, b];
  const output = recordOp('project_plus_low_rank', inputs, out, (g, into) => {
    // A and B's existing .grad (micro-batches after the first): their products accumulate there.
    const [gradA, gradB] = into ? into.slice(-2) : [null, null];
    const needDh = a.requiresGrad || lowRankInput.requiresGrad;
    let dh: Tensor | null = null;
    if (needDh) {
      dh = gpu.empty([rows, rank], 'f32', LOW_RANK_BINDING_BYTES);
      matmulInto(dh, g, b, { accumulate: false, alpha: scaling });
    }
    let dx: Tensor | null = null;
    if (x.requiresGrad) {
      dx = gpu.empty([rows, inFeatures]);
      matmulInto(dx, g, weight, { accumulate: false, plusLowRank: dh && !separateInput ? { h: dh, l: a, scale: 1, lRows: true } : undefined });
    }
    const du = separateInput && dh && lowRankInput.requiresGrad ? matmul(dh, a) : null;
    const dw = weight.requiresGrad ? matmul(g, x, { transA: true }) : null;
    // Into the parameter's .grad when it has one (then no gradient is returned), else a new tensor.
    const parameterProduct = (grad: Tensor | null, shape: number[], left: Tensor, right: Tensor, alpha: number): Tensor | null => {
      const target = grad ?? gpu.empty(shape);
      matmulInto(target, left, right, { transA: true, accumulate: grad !== null, alpha });
      return grad ? null : target;
    };
    const da = dh && a.requiresGrad ? parameterProduct(gradA, [rank, inFeatures], dh, lowRankInput, 1) : null;
    const db = b.requiresGrad ? parameterProduct(gradB, [outFeatures, rank], g, h, scaling) : null;
    dh?.dispose();
    return separateInput ? [dx, dw, du, da, db] : [dx, dw, da, db];
  });
  return { output, h };
}
