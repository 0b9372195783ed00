import { recordOp } from '../autograd/grad-node.js';
import { formatShape, type Shape, type Tensor } from '../gpu/tensor.js';
import { add } from './binary.js';
import { assertF32, broadcastShapes, padShape4, sameShape } from './shape.js';

const WG = 64;

/** Sums `x` over the dims along which `shape` was broadcast to x's shape. */
export function sumToShape(x: Tensor, shape: Shape): Tensor {
  assertF32('sumToShape', x);
  if (!sameShape(broadcastShapes('sumToShape', shape, x.shape), x.shape)) {
    throw new Error(`sumToShape: ${formatShape(shape)} does not broadcast to ${formatShape(x.shape)}`);
  }
  const gpu = x.gpu;
  const out = gpu.empty(shape);
  gpu.run(gpu.kernel('sum_to_shape'), [x, out], gpu.grid1d(out.size, WG), {
    u32: [out.size, 0, 0, 0, ...padShape4('sumToShape', x.shape), ...padShape4('sumToShape', shape)],
  });
  // Broadcasting the gradient back is adding it to zeros of x's shape.
  return recordOp('sumToShape', [x], out, (g) => [add(gpu.zeros(x.shape), g)]);
}
