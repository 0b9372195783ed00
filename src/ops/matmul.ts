import { recordOp } from '../autograd/grad-node.js';
import { formatShape, numel, type Shape, type Tensor } from '../gpu/tensor.js';
import { view } from './layout.js';
import { contiguousLayout, kRange, swappedLayout, type MatmulLayout } from './matmul-layout.js';
import { chooseMatmulVariant, recordMatmul, runsSwapped, type LowRankTerm } from './matmul-variants.js';
import { sameShape } from './shape.js';
import { sumToShape } from './binary.js';

export interface MatmulOptions {
  /** a is stored [..., K, M] and used transposed. */
  transA?: boolean;
  /** b is stored [..., N, K] and used transposed (the model's x·Wᵀ). */
  transB?: boolean;
}

export interface MatmulIntoOptions extends MatmulOptions {
  /** out += alpha·a·b instead of out = alpha·a·b. */
  accumulate: boolean;
  alpha?: number;
  /**
   * Adds scale·h·Lᵀ (h [M, r], L [N, r], f32; LoRA's low-rank term on its base product x·Wᵀ), or
   * scale·h·L for L [r, N] with `lRows` (LoRA's dh·A on the backward's g·W0): in the product's own
   * dispatch where the broadcast kernel runs it, otherwise as a second, accumulating product.
   * Either way the sums are those of the two products in turn.
   */
  plusLowRank?: LowRankTerm;
}

const MAX_BATCH = 65535;

interface Plan {
  layout: MatmulLayout;
  outShape: number[];
}

function describe(a: Tensor, b: Tensor, transA: boolean, transB: boolean): string {
  return `a ${formatShape(a.shape)} ${a.dtype}${transA ? ' (transposed)' : ''} and b ${formatShape(b.shape)} ${b.dtype}${transB ? ' (transposed)' : ''}`;
}

/**
 * Checks shapes and works out strides. Batch dims must be equal, or one operand has none and is
 * shared across the other's batch; a shared b under an untransposed a folds the batch into M
 * (one big product instead of many small ones).
 */
function plan(op: string, a: Tensor, b: Tensor, transA: boolean, transB: boolean): Plan {
  const what = () => describe(a, b, transA, transB);
  if (a.dtype === 'u32' || b.dtype === 'u32') throw new Error(`${op}: needs f32 or f16 operands, got ${what()}`);
  if (a.shape.length < 2 || b.shape.length < 2) throw new Error(`${op}: operands need at least 2 dims, got ${what()}`);
  const [aRows, aCols] = a.shape.slice(-2);
  const [bRows, bCols] = b.shape.slice(-2);
  const m = transA ? aCols : aRows;
  const k = transA ? aRows : aCols;
  const n = transB ? bRows : bCols;
  if ((transB ? bCols : bRows) !== k) throw new Error(`${op}: inner dimensions differ for ${what()}`);
  const batchA = a.shape.slice(0, -2);
  const batchB = b.shape.slice(0, -2);
  if (batchA.length && batchB.length && !sameShape(batchA, batchB)) throw new Error(`${op}: batch dims differ for ${what()}`);
  const batchShape = batchA.length ? batchA : batchB;
  let batch = numel(batchShape);
  let rows = m;
  if (!batchB.length && !transA) {
    rows = m * batch;
    batch = 1;
  }
  if (batch > MAX_BATCH) throw new Error(`${op}: batch of ${batch} exceeds ${MAX_BATCH} for ${what()}`);
  const layout: MatmulLayout = {
    ...contiguousLayout(rows, k, n, transA, transB),
    batch,
    aBatchStride: batchA.length ? m * k : 0,
    bBatchStride: batchB.length ? k * n : 0,
  };
  return { layout, outShape: [...batchShape, m, n] };
}

function record(out: Tensor, a: Tensor, b: Tensor, layout: MatmulLayout, accumulate: boolean, alpha: number, lowRank?: LowRankTerm): void {
  const variant = chooseMatmulVariant(out.gpu, layout.m);
  const carried = runsSwapped(out.gpu, variant, layout)
    ? recordMatmul(variant, out, b, a, swappedLayout(layout), accumulate, alpha)
    : recordMatmul(variant, out, a, b, layout, accumulate, alpha, lowRank);
  if (lowRank && !carried) record(out, lowRank.h, lowRank.l, plan('matmulInto', lowRank.h, lowRank.l, false, !lowRank.lRows).layout, true, lowRank.scale);
}

function checkLowRank({ h, l, lRows = false }: LowRankTerm, outShape: readonly number[]): void {
  const [m, n] = outShape;
  const [lN, lRank] = lRows ? [l.shape[1], l.shape[0]] : [l.shape[0], l.shape[1]];
  const fits = outShape.length === 2 && h.shape.length === 2 && l.shape.length === 2 && h.shape[0] === m && lN === n && h.shape[1] === lRank;
  if (!fits || h.dtype !== 'f32' || l.dtype !== 'f32') {
    throw new Error(`matmulInto: a low-rank term h ${formatShape(h.shape)} ${h.dtype}, L ${formatShape(l.shape)} ${l.dtype} does not make an f32 [${outShape.join(', ')}] ${lRows ? 'h·L' : 'h·Lᵀ'}`);
  }
}

/** Sums a batched gradient over the batch of an operand that was shared across it. */
function reduceTo(g: Tensor, shape: Shape): Tensor {
  if (sameShape(g.shape, shape)) return g;
  const reduced = sumToShape(g, shape);
  g.dispose();
  return reduced;
}

/** The rows of a batched tensor as one matrix [batch·rows, cols] (a view; dispose it after use). */
function flatRows(t: Tensor): Tensor {
  const cols = t.shape[t.shape.length - 1];
  return view(t, [t.size / cols, cols]);
}

/**
 * op(a) · op(b) in f32: a is [..., M, K] ([..., K, M] with transA), b is [..., K, N] ([..., N, K]
 * with transB); the result is [..., M, N]. f16 operands (frozen weights) are widened on load and
 * get no gradient.
 */
export function matmul(a: Tensor, b: Tensor, options: MatmulOptions = {}): Tensor {
  const { transA = false, transB = false } = options;
  for (const t of [a, b]) {
    if (t.dtype === 'f16' && t.requiresGrad) throw new Error(`matmul: f16 operands are frozen and cannot require grad: ${describe(a, b, transA, transB)}`);
  }
  const { layout, outShape } = plan('matmul', a, b, transA, transB);
  const out = a.gpu.empty(outShape);
  record(out, a, b, layout, false, 1);

  // With C = Â·B̂ (Â = op(a), B̂ = op(b)): dÂ = dC·B̂ᵀ and dB̂ = Âᵀ·dC, each written with the
  // transposes that read a, b and dC where they already are.
  const gradA = (g: Tensor): Tensor => {
    const d = transA ? matmul(b, g, { transA: transB, transB: true }) : matmul(g, b, { transB: !transB });
    return reduceTo(d, a.shape);
  };
  const gradB = (g: Tensor): Tensor => {
    if (b.shape.length === 2 && a.shape.length > 2 && !transA) {
      // b shared across an untransposed a: the sum over the batch is one product over all rows.
      const [a2, g2] = [flatRows(a), flatRows(g)];
      const d = transB ? matmul(g2, a2, { transA: true }) : matmul(a2, g2, { transA: true });
      a2.dispose();
      g2.dispose();
      return d;
    }
    const d = transB ? matmul(g, a, { transA: true, transB: transA }) : matmul(a, g, { transA: !transA });
    return reduceTo(d, b.shape);
  };
  return recordOp('matmul', [a, b], out, (g) => [a.requiresGrad ? gradA(g) : null, b.requiresGrad ? gradB(g) : null]);
}

/**
 * x·Wᵀ as an earlier forward computed it (`known` [N, out] for x [N, in], W [out, in]): nothing
 * runs forward; recorded with the product's gradients dx = g·W and dW = gᵀ·x.
 */
export function knownProduct(x: Tensor, weight: Tensor, known: Tensor): Tensor {
  const fits = x.shape.length === 2 && weight.shape.length === 2 && x.shape[1] === weight.shape[1] && sameShape(known.shape, [x.shape[0], weight.shape[0]]);
  if (!fits) throw new Error(`knownProduct: ${formatShape(known.shape)} is not the shape of x ${formatShape(x.shape)} · Wᵀ for W ${formatShape(weight.shape)}`);
  return recordOp('known_product', [x, weight], known, (g) => [x.requiresGrad ? matmul(g, weight) : null, weight.requiresGrad ? matmul(g, x, { transA: true }) : null]);
}

/**
 * out = alpha·op(a)·op(b), or out += alpha·op(a)·op(b) with accumulate, into an existing f32
 * tensor (gradient accumulation, LoRA updates). Not recorded by autograd.
 */
export function matmulInto(out: Tensor, a: Tensor, b: Tensor, options: MatmulIntoOptions): void {
  const { transA = false, transB = false, accumulate, alpha = 1, plusLowRank } = options;
  const layout = planInto('matmulInto', out, a, b, transA, transB, plusLowRank);
  record(out, a, b, layout, accumulate, alpha, plusLowRank);
}

/** The layout of a product into `out`, which must be an f32 tensor of the product's shape that shares no operand's storage. */
function planInto(op: string, out: Tensor, a: Tensor, b: Tensor, transA: boolean, transB: boolean, lowRank?: LowRankTerm): MatmulLayout {
  const { layout, outShape } = plan(op, a, b, transA, transB);
  if (out.dtype !== 'f32' || !sameShape(out.shape, outShape)) {
    throw new Error(`${op}: out ${formatShape(out.shape)} ${out.dtype} cannot hold the f32 ${formatShape(outShape)} product of ${describe(a, b, transA, transB)}`);
  }
  const operands = lowRank ? [a, b, lowRank.h, lowRank.l] : [a, b];
  if (operands.some((t) => t.buffer === out.buffer)) throw new Error(`${op}: out ${formatShape(out.shape)} shares storage with an operand`);
  if (lowRank) checkLowRank(lowRank, outShape);
  return layout;
}

/**
 * out = alpha·a·op(b) (+ out with accumulate) for a [M, K] stored in blocks of `blockWidth`
 * columns: block after block, each [M, width] row-major (the last may be narrower), as
 * tokenLogprobsGradInto's `blockWidth` writes the LM head's dlogits. One product per block, summed
 * in block order (a reassociation of the sum over K, so not bit-equal to one product). A block's
 * rows are short enough for a uniform window to hold several, so the broadcast kernel can run a
 * sum over a whole vocabulary (the LM head's dX, K = 49 152), which it cannot read from a plain
 * [M, K] layout: 1.7–2.3× faster on lavapipe (bench/README.md). Not recorded by autograd.
 */
export function matmulKBlocksInto(out: Tensor, a: Tensor, b: Tensor, blockWidth: number, options: { transB?: boolean; accumulate: boolean; alpha?: number }): void {
  const op = 'matmulKBlocksInto';
  const { transB = false, accumulate, alpha = 1 } = options;
  if (a.shape.length !== 2 || b.shape.length !== 2) throw new Error(`${op}: needs 2-D operands, got ${describe(a, b, false, transB)}`);
  if (!Number.isSafeInteger(blockWidth) || blockWidth < 1) throw new Error(`${op}: blockWidth must be a positive integer, got ${blockWidth}`);
  const layout = planInto(op, out, a, b, false, transB);
  for (let start = 0; start < layout.k; start += blockWidth) {
    const width = Math.min(blockWidth, layout.k - start);
    const block = { ...kRange(layout, start, start + width), aRowStride: width, aOffset: start * layout.m };
    record(out, a, b, block, accumulate || start > 0, alpha);
  }
}
