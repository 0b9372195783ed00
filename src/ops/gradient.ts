import { formatShape, type Tensor } from '../gpu/tensor.js';

/**
 * Checks the gradient reaching an op's backward against its output. Autograd only guarantees
 * matching sizes (a consumer may hand back a reshaped gradient), and the kernels index flat data,
 * so size is what must agree.
 */
export function assertGradientFits(op: string, g: Tensor, output: Tensor): void {
  if (g.size !== output.size || g.dtype !== 'f32') {
    throw new Error(`${op} backward: gradient ${formatShape(g.shape)} ${g.dtype} for output ${formatShape(output.shape)} f32`);
  }
}
