import { recordOp } from '../autograd/grad-node.js';
import { formatShape, type Tensor } from '../gpu/tensor.js';
import { lastAxis, rowGrid, rowWorkgroupSize } from './rows.js';
import { assertF32 } from './shape.js';
import { assertGradientFits } from './gradient.js';

const WEIGHT_GRAD_WG = 64;

/**
 * RMSNorm over the last axis as in Hugging Face Llama: x / sqrt(mean(x²) + eps) ⊙ weight, in f32.
 * `weight` [D] may be f32 (trainable) or f16 (frozen, so it takes no gradient); null means none.
 */
export function rmsnorm(x: Tensor, weight: Tensor | null, eps: number): Tensor {
  assertF32('rmsnorm', x);
  const { rows, cols } = lastAxis('rmsnorm', x);
  if (weight) {
    if (weight.shape.length !== 1 || weight.shape[0] !== cols) {
      throw new Error(`rmsnorm: weight ${formatShape(weight.shape)} does not match the last axis of x ${formatShape(x.shape)}`);
    }
    if (weight.dtype === 'u32') throw new Error(`rmsnorm: weight must be f32 or f16, got u32 ${formatShape(weight.shape)}`);
    if (weight.dtype === 'f16' && weight.requiresGrad) {
      throw new Error(`rmsnorm: an f16 weight ${formatShape(weight.shape)} is frozen and cannot require grad`);
    }
  }
  if (!(eps >= 0)) throw new Error(`rmsnorm: eps must be ≥ 0, got ${eps}`);
  const gpu = x.gpu;
  const wg = rowWorkgroupSize(gpu, cols);
  const variant = { W: weight?.dtype ?? 'f32', HAS_WEIGHT: weight !== null, WG: wg };
  // Without a weight the shaders never read their weight binding; x fills the slot.
  const weightSlot = weight ?? x;
  const out = gpu.empty(x.shape);
  const rstd = gpu.empty([rows]);
  gpu.run(gpu.kernel('rmsnorm', variant), [x, weightSlot, out, rstd], rowGrid(gpu, rows), { u32: [rows, cols], f32: [eps] });

  const result = recordOp('rmsnorm', weight ? [x, weight] : [x], out, (g) => {
    assertGradientFits('rmsnorm', g, out);
    let dx: Tensor | null = null;
    if (x.requiresGrad) {
      dx = gpu.empty(x.shape);
      gpu.run(gpu.kernel('rmsnorm_backward', variant), [x, weightSlot, rstd, g, dx], rowGrid(gpu, rows), { u32: [rows, cols] });
    }
    let dWeight: Tensor | null = null;
    if (weight?.requiresGrad) {
      dWeight = gpu.empty(weight.shape);
      gpu.run(gpu.kernel('rmsnorm_weight_grad'), [x, rstd, g, dWeight], gpu.grid1d(cols, WEIGHT_GRAD_WG), { u32: [rows, cols] });
    }
    return [dx, dWeight];
  });
  if (!result.node) rstd.dispose();
  return result;
}
