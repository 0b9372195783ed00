import type { Tensor } from '../gpu/tensor.js';
import { add } from '../ops/binary.js';
import { matmul } from '../ops/matmul.js';

/** Extra term added to a linear layer's output (LoRA plugs in here). */
export interface LinearDelta {
  forward(x: Tensor): Tensor;
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
    let y = matmul(x, this.weight, { transB: true });
    if (this.bias) y = add(y, this.bias);
    if (this.delta) y = add(y, this.delta.forward(x));
    return y;
  }
}
