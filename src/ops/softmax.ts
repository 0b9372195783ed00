import { recordOp } from '../autograd/grad-node.js';
import type { Tensor } from '../gpu/tensor.js';
import { lastAxis, rowGrid, rowWorkgroupSize } from './rows.js';
import { assertGradientFits } from './gradient.js';
import { assertF32 } from './shape.js';

function softmaxOp(name: string, x: Tensor, log: boolean): Tensor {
  assertF32(name, x);
  const { rows, cols } = lastAxis(name, x);
  const gpu = x.gpu;
  const wg = rowWorkgroupSize(gpu, cols);
  const y = gpu.empty(x.shape);
  gpu.run(gpu.kernel('softmax', { LOG: log, WG: wg }), [x, y], rowGrid(gpu, rows), { u32: [rows, cols] });
  return recordOp(name, [x], y, (g) => {
    assertGradientFits(name, g, y);
    const dx = gpu.empty(x.shape);
    gpu.run(gpu.kernel('softmax_backward', { LOG: log, WG: wg }), [y, g, dx], rowGrid(gpu, rows), { u32: [rows, cols] });
    return [dx];
  });
}

/** exp(x) / Σ exp(x) along the last axis, computed stably (shifted by the row max). */
export const softmax = (x: Tensor): Tensor => softmaxOp('softmax', x, false);

/** x − log Σ exp(x) along the last axis, computed stably. */
export const logSoftmax = (x: Tensor): Tensor => softmaxOp('logSoftmax', x, true);
