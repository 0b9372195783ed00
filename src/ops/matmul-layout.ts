// Where a product's operands live: strides and offsets, as every matmul kernel reads them.

/** Where the operands live: C[z] (M×N) = op(A[z]) (M×K) · op(B[z]) (K×N), element strides. */
export interface MatmulLayout {
  m: number;
  n: number;
  k: number;
  batch: number;
  aRowStride: number;
  aKStride: number;
  bKStride: number;
  bColStride: number;
  aBatchStride: number;
  bBatchStride: number;
  /** Elements of A and B before their first value (0 for whole tensors; kRange moves them). */
  aOffset: number;
  bOffset: number;
  /** C[row][col] is at row·cRowStride + col·cColStride in its batch's m·n block: n, 1 (or 1, m for Cᵀ). */
  cRowStride: number;
  cColStride: number;
}

/** The layout of op(A) [M, K] · op(B) [K, N] for contiguous A ([M, K], or [K, M] with transA) and B ([K, N], or [N, K] with transB), one batch. */
export function contiguousLayout(m: number, k: number, n: number, transA: boolean, transB: boolean): MatmulLayout {
  return {
    m,
    n,
    k,
    batch: 1,
    aRowStride: transA ? 1 : k,
    aKStride: transA ? m : 1,
    bKStride: transB ? 1 : n,
    bColStride: transB ? k : 1,
    aBatchStride: 0,
    bBatchStride: 0,
    aOffset: 0,
    bOffset: 0,
    cRowStride: n,
    cColStride: 1,
  };
}

/** The part of the product that sums over k in [from, to): accumulating those over a partition of K gives the whole. */
export function kRange(l: MatmulLayout, from: number, to: number): MatmulLayout {
  return { ...l, k: to - from, aOffset: l.aOffset + from * l.aKStride, bOffset: l.bOffset + from * l.bKStride };
}

/**
 * The same product computed the other way round: C = (op(B)ᵀ·op(A)ᵀ)ᵀ, with op(B)ᵀ as the left
 * operand and the result written transposed into C's place. Every output element sums the same
 * products in the same k order, so the result is bit for bit the same; what changes is which
 * operand the kernel's lanes walk along k (pass the operands swapped: b as a, a as b).
 */
export function swappedLayout(l: MatmulLayout): MatmulLayout {
  return {
    m: l.n,
    n: l.m,
    k: l.k,
    batch: l.batch,
    aRowStride: l.bColStride,
    aKStride: l.bKStride,
    bKStride: l.aKStride,
    bColStride: l.aRowStride,
    aBatchStride: l.bBatchStride,
    bBatchStride: l.aBatchStride,
    aOffset: l.bOffset,
    bOffset: l.aOffset,
    cRowStride: l.cColStride,
    cColStride: l.cRowStride,
  };
}
