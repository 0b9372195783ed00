import type { Tensor } from '../gpu/tensor.js';
import { add } from '../ops/binary.js';
import { matmul } from '../ops/matmul.js';

/** Extra term added to a linear layer's output (LoRA plugs in here). */
export interface LinearDelta {
  /** x·Wᵀ plus the term, computed together (so the term can ride on the base product's dispatch). */
  project(x: Tensor, weight: Tensor): Tensor;
}

/** y = x·Wᵀ + b with W stored as [out, in] like PyTorch's nn.Linear. */
export class Linear {
  delta: LinearDelta | null = null;

  constructor(
    readonly name: string,
    readonly weight: Tensor,
    readonly bias: Tensor | null = null,
  ) {}

  get inFeatures(): number {
    return this.weight.shape[1];
  }

  get outFeatures(): number {
    return this.weight.shape[0];
  }

  /** x: [N, in] → [N, out]. */
  forward(x: Tensor): Tensor {
    const y = this.delta ? this.delta.project(x, this.weight) : matmul(x, this.weight, { transB: true });
    return this.bias ? add(y, this.bias) : y;
  }
}
