import { formatShape, Tensor } from '../gpu/tensor.js';
import { add } from '../ops/binary.js';
import { concat } from '../ops/layout.js';
import { knownProduct, matmul } from '../ops/matmul.js';

/** Extra term added to a linear layer's output (LoRA plugs in here). */
export interface LinearDelta {
  /**
   * x·Wᵀ plus the term, computed together (so the term can ride on the base product's dispatch);
   * `known`: that sum as an earlier forward of the same x computed it, recorded instead of recomputed.
   */
  project(x: Tensor, weight: Tensor, known?: Tensor): Tensor;
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

  /**
   * x: [N, in] → [N, out]. `known` [N, out]: the output an earlier forward computed from the same x
   * with the same weights (ProjectionStore): recorded as this layer's output, so the backward runs as
   * if it had been computed here, and no product runs.
   */
  forward(x: Tensor, known?: Tensor): Tensor {
    if (known) {
      if (this.bias?.requiresGrad) throw new Error(`${this.name}: a known output cannot train the bias it includes`);
      return this.delta ? this.delta.project(x, this.weight, known) : knownProduct(x, this.weight, known);
    }
    let y: Tensor;
    if (this.weightBlocks.length > 1) {
      if (this.delta) throw new Error(`${this.name}: a weight split into blocks of rows takes no delta term`);
      // Each block's columns, then joined: the products are the unsplit one's, column for column.
      const parts = this.weightBlocks.map((w) => matmul(x, w, { transB: true }));
      y = concat(parts, 1);
      for (const p of parts) p.dispose();
    } else {
      y = this.delta ? this.delta.project(x, this.weight) : matmul(x, this.weight, { transB: true });
    }
    return this.bias ? add(y, this.bias) : y;
  }
}
