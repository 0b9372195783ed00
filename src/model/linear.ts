import { formatShape, Tensor } from '../gpu/tensor.js';
import { add } from '../ops/binary.js';
import { concat } from '../ops/layout.js';
import { knownProduct, matmul } from '../ops/matmul.js';

/**
 * A linear's output as an earlier forward of the same x with the same weights computed it
 * (ProjectionStore), with what its delta term computed from x on the way (LoRA's x·Aᵀ) where that
 * was kept too.
 */
export interface KnownOutput {
  output: Tensor;
  inner?: Tensor;
}

/** Extra term added to a linear layer's output (LoRA plugs in here). */
export interface LinearDelta {
  /** Columns of what the term computes from x on the way, per row of x (LoRA's x·Aᵀ: the rank). */
  readonly innerWidth: number;
  /**
   * x·Wᵀ plus the term, computed together (so the term can ride on the base product's dispatch),
   * and the term's intermediate [N, innerWidth]; `known`: the sum as an earlier forward of the
   * same x computed it, recorded instead of recomputed (and its intermediate, when given, too).
   */
  project(x: Tensor, weight: Tensor, known?: KnownOutput): { output: Tensor; inner: Tensor };
}

/**
 * y = x·Wᵀ + b with W stored as [out, in] like PyTorch's nn.Linear. A W too large for one storage
 * binding (a large vocabulary's LM head) is given as consecutive blocks of its rows, each its own
 * buffer: every block then produces its range of output columns.
 */
export class Linear {
  delta: LinearDelta | null = null;
  /** W's rows in order: one block unless W was split across bindings (frozen only). */
  readonly weightBlocks: readonly Tensor[];

  constructor(
    readonly name: string,
    weight: Tensor | readonly Tensor[],
    readonly bias: Tensor | null = null,
  ) {
    const blocks = weight instanceof Tensor ? [weight] : weight;
    if (!blocks.length) throw new Error(`${name}: a weight needs at least one block of rows`);
    if (blocks.length > 1) {
      const [first] = blocks;
      for (const b of blocks) {
        if (b.shape.length !== 2 || b.shape[1] !== first.shape[1] || b.dtype !== first.dtype || b.requiresGrad) {
          throw new Error(`${name}: row blocks must be frozen [rows, ${first.shape[1]}] ${first.dtype} matrices, got ${formatShape(b.shape)} ${b.dtype}${b.requiresGrad ? ' requiring grad' : ''}`);
        }
      }
    }
    this.weightBlocks = blocks;
  }

  /** W as one tensor; a weight split across bindings has none (see weightBlocks). */
  get weight(): Tensor {
    if (this.weightBlocks.length > 1) throw new Error(`${this.name}: the weight is split into ${this.weightBlocks.length} blocks of rows (larger than one storage binding) and has no single tensor`);
    return this.weightBlocks[0];
  }

  get inFeatures(): number {
    return this.weightBlocks[0].shape[1];
  }

  get outFeatures(): number {
    return this.weightBlocks.reduce((n, b) => n + b.shape[0], 0);
  }

  /** x: [N, in] → [N, out]. */
  forward(x: Tensor): Tensor {
    return this.project(x).output;
  }

  /**
   * x: [N, in] → [N, out], and the delta term's intermediate (null without a delta term). `known`:
   * the output an earlier forward computed from the same x with the same weights (ProjectionStore):
   * recorded as this layer's output, so the backward runs as if it had been computed here, and no
   * product runs (but the delta term's intermediate, when `known` lacks it).
   */
  project(x: Tensor, known?: KnownOutput): { output: Tensor; inner: Tensor | null } {
    if (known) {
      if (this.bias?.requiresGrad) throw new Error(`${this.name}: a known output cannot train the bias it includes`);
      return this.delta ? this.delta.project(x, this.weight, known) : { output: knownProduct(x, this.weight, known.output), inner: null };
    }
    let y: Tensor;
    let inner: Tensor | null = null;
    if (this.weightBlocks.length > 1) {
      if (this.delta) throw new Error(`${this.name}: a weight split into blocks of rows takes no delta term`);
      // Each block's columns, then joined: the products are the unsplit one's, column for column.
      const parts = this.weightBlocks.map((w) => matmul(x, w, { transB: true }));
      y = concat(parts, 1);
      for (const p of parts) p.dispose();
    } else if (this.delta) {
      ({ output: y, inner } = this.delta.project(x, this.weight));
    } else {
      y = matmul(x, this.weight, { transB: true });
    }
    return { output: this.bias ? add(y, this.bias) : y, inner };
  }
}
