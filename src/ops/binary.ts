import { recordOp } from '../autograd/grad-node.js';
import { elementVectors } from '../gpu/kernel.js';
import { formatShape, type Shape, type Tensor } from '../gpu/tensor.js';
import { assertF32, broadcastShapes, broadcastStrides, padShape4, sameShape } from './shape.js';

const WG = 256;
const OPS = { add: 0, sub: 1, mul: 2, div: 3, scale: 4 } as const;
type BinaryOp = keyof typeof OPS;

function launch(op: BinaryOp, a: Tensor, b: Tensor, alpha = 1): Tensor {
  assertF32(op, a, b);
  const gpu = a.gpu;
  const shape = broadcastShapes(op, a.shape, b.shape);
  const out = gpu.empty(shape);
  // Operands of the output's shape need no index arithmetic and go four values at a time.
  const contiguous = sameShape(a.shape, shape) && sameShape(b.shape, shape);
  const { values, invocations } = contiguous ? elementVectors(out.size) : { values: {}, invocations: out.size };
  gpu.run(gpu.kernel('binary', { OP: OPS[op], CONTIGUOUS: contiguous, ...values }), [a, b, out], gpu.grid1d(invocations, WG), {
    u32: [invocations, 0, 0, 0, ...padShape4(op, shape), ...broadcastStrides(op, a.shape, shape), ...broadcastStrides(op, b.shape, shape)],
    f32: [alpha],
  });
  return out;
}

/** Reduces a broadcast gradient back to an input's shape. */
function unbroadcast(g: Tensor, input: Tensor): Tensor {
  return sameShape(g.shape, input.shape) ? g : sumToShape(g, input.shape);
}

/** Elementwise a + b (broadcasting). */
export function add(a: Tensor, b: Tensor): Tensor {
  return recordOp('add', [a, b], launch('add', a, b), (g) => [unbroadcast(g, a), unbroadcast(g, b)]);
}

/** Elementwise a − b (broadcasting). */
export function sub(a: Tensor, b: Tensor): Tensor {
  return recordOp('sub', [a, b], launch('sub', a, b), (g) => [unbroadcast(g, a), unbroadcast(scale(g, -1), b)]);
}

/** Elementwise a · b (broadcasting). */
export function mul(a: Tensor, b: Tensor): Tensor {
  return recordOp('mul', [a, b], launch('mul', a, b), (g) => [
    a.requiresGrad ? unbroadcast(launch('mul', g, b), a) : null,
    b.requiresGrad ? unbroadcast(launch('mul', g, a), b) : null,
  ]);
}

/** Elementwise a / b (broadcasting). */
export function div(a: Tensor, b: Tensor): Tensor {
  const out = launch('div', a, b);
  return recordOp('div', [a, b], out, (g) => [
    a.requiresGrad ? unbroadcast(launch('div', g, b), a) : null,
    // d(a/b)/db = −(a/b)/b
    b.requiresGrad ? unbroadcast(launch('div', launch('mul', g, out), b, -1), b) : null,
  ]);
}

/** s · x for a host scalar s. */
export function scale(x: Tensor, s: number): Tensor {
  return recordOp('scale', [x], launch('scale', x, x, s), (g) => [scale(g, s)]);
}

// Broadcasting and summing back are each other's gradient, so they live together.
const SUM_TO_SHAPE_WG = 64;

/** Sums `x` over the dims along which `shape` was broadcast to x's shape. */
export function sumToShape(x: Tensor, shape: Shape): Tensor {
  assertF32('sumToShape', x);
  if (!sameShape(broadcastShapes('sumToShape', shape, x.shape), x.shape)) {
    throw new Error(`sumToShape: ${formatShape(shape)} does not broadcast to ${formatShape(x.shape)}`);
  }
  const gpu = x.gpu;
  const out = gpu.empty(shape);
  gpu.run(gpu.kernel('sum_to_shape'), [x, out], gpu.grid1d(out.size, SUM_TO_SHAPE_WG), {
    u32: [out.size, 0, 0, 0, ...padShape4('sumToShape', x.shape), ...padShape4('sumToShape', shape)],
  });
  // Broadcasting the gradient back is adding it to zeros of x's shape.
  return recordOp('sumToShape', [x], out, (g) => [add(gpu.zeros(x.shape), g)]);
}
