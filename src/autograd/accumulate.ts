import { elementVectors } from '../gpu/kernel.js';
import { formatShape, type Shape, type Tensor } from '../gpu/tensor.js';

const WG = 256;

/** acc += src in place (f32, same element count); not recorded by autograd. */
export function accumulate(acc: Tensor, src: Tensor): void {
  if (acc.size !== src.size || acc.dtype !== 'f32' || src.dtype !== 'f32') {
    throw new Error(`accumulate: ${formatShape(acc.shape)} ${acc.dtype} += ${formatShape(src.shape)} ${src.dtype} (need equal sizes, f32)`);
  }
  const gpu = acc.gpu;
  const { values, invocations } = elementVectors(acc.size);
  gpu.run(gpu.kernel('accumulate', values), [acc, src], gpu.grid1d(invocations, WG), { u32: [invocations] });
}

/** A copy in fresh storage, optionally with another shape of the same size; not recorded by autograd. */
export function clone(src: Tensor, shape: Shape = src.shape): Tensor {
  const out = src.gpu.empty(shape, src.dtype);
  if (out.size !== src.size) throw new Error(`clone: cannot copy ${formatShape(src.shape)} into ${formatShape(shape)}`);
  if (src.byteLength) src.gpu.commands.copy(src.buffer, 0, out.buffer, 0, out.binding.size as number);
  return out;
}
