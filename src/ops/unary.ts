import { recordOp } from '../autograd/grad-node.js';
import type { Tensor } from '../gpu/tensor.js';
import { assertGradientFits } from './gradient.js';
import { assertF32 } from './shape.js';

const WG = 256;
const OPS = { exp: 0, log: 1, neg: 2, sqrt: 3, square: 4, relu: 5, sigmoid: 6, silu: 7 } as const;
export type UnaryOp = keyof typeof OPS;

function launch(op: UnaryOp, x: Tensor): Tensor {
  assertF32(op, x);
  const gpu = x.gpu;
  const out = gpu.empty(x.shape);
  gpu.run(gpu.kernel('unary', { OP: OPS[op] }), [x, out], gpu.grid1d(x.size, WG), { u32: [x.size] });
  return out;
}

/** g · f'(x), fused; not recorded (second derivatives are not needed for training). */
function gradient(op: UnaryOp, x: Tensor, g: Tensor): Tensor {
  assertGradientFits(op, g, x);
  const gpu = x.gpu;
  const dx = gpu.empty(x.shape);
  gpu.run(gpu.kernel('unary_backward', { OP: OPS[op] }), [x, g, dx], gpu.grid1d(x.size, WG), { u32: [x.size] });
  return dx;
}

/** Elementwise f(x) for one of the unary functions, recorded for autograd. */
export function unary(op: UnaryOp, x: Tensor): Tensor {
  return recordOp(op, [x], launch(op, x), (g) => [gradient(op, x, g)]);
}

export const exp = (x: Tensor): Tensor => unary('exp', x);
export const log = (x: Tensor): Tensor => unary('log', x);
export const neg = (x: Tensor): Tensor => unary('neg', x);
export const sqrt = (x: Tensor): Tensor => unary('sqrt', x);
export const square = (x: Tensor): Tensor => unary('square', x);
export const relu = (x: Tensor): Tensor => unary('relu', x);
export const sigmoid = (x: Tensor): Tensor => unary('sigmoid', x);
/** x · σ(x) (Llama's MLP activation). */
export const silu = (x: Tensor): Tensor => unary('silu', x);
