import { recordOp } from '../autograd/grad-node.js';
import { elementVectors } from '../gpu/kernel.js';
import { formatShape, type Tensor } from '../gpu/tensor.js';
import { lastAxis, rowGrid, rowWorkgroupSize } from './rows.js';
import { assertF32, sameShape } from './shape.js';
import { assertGradientFits } from './gradient.js';

const WEIGHT_GRAD_WG = 64;

/**
 * RMSNorm over the last axis as in Hugging Face Llama: x / sqrt(mean(x²) + eps) ⊙ weight, in f32.
 * `weight` [D] may be f32 (trainable) or f16 (frozen, so it takes no gradient); null means none.
 */
export function rmsnorm(x: Tensor, weight: Tensor | null, eps: number): Tensor {
  return normalise('rmsnorm', x, null, weight, eps).normed;
}

/**
 * a + b and rmsnorm(a + b) in one dispatch: a decoder's residual add and the norm that follows it.
 * The autograd graph is that of add then rmsnorm, so the gradients are exactly theirs.
 */
export function addRmsnorm(a: Tensor, b: Tensor, weight: Tensor | null, eps: number): { sum: Tensor; normed: Tensor } {
  if (!sameShape(a.shape, b.shape)) throw new Error(`addRmsnorm: a ${formatShape(a.shape)} and b ${formatShape(b.shape)} differ (no broadcasting here)`);
  assertF32('addRmsnorm', b);
  return normalise('addRmsnorm', a, b, weight, eps);
}

function normalise(op: string, x: Tensor, residual: Tensor | null, weight: Tensor | null, eps: number): { sum: Tensor; normed: Tensor } {
  assertF32(op, x);
  const { rows, cols } = lastAxis(op, x);
  if (weight) {
    if (weight.shape.length !== 1 || weight.shape[0] !== cols) {
      throw new Error(`${op}: weight ${formatShape(weight.shape)} does not match the last axis of x ${formatShape(x.shape)}`);
    }
    if (weight.dtype === 'u32') throw new Error(`${op}: weight must be f32 or f16, got u32 ${formatShape(weight.shape)}`);
    if (weight.dtype === 'f16' && weight.requiresGrad) {
      throw new Error(`${op}: an f16 weight ${formatShape(weight.shape)} is frozen and cannot require grad`);
    }
  }
  if (!(eps >= 0)) throw new Error(`${op}: eps must be ≥ 0, got ${eps}`);
  const gpu = x.gpu;
  // A row of a multiple of 4 columns goes a vec4 at a time.
  const { values, invocations: vectors, width } = elementVectors(cols);
  const weightType = weight?.dtype ?? 'f32';
  // A lane sums 8 or more of its row's vectors where the row allows: more lanes only add rounds to
  // the tree (704 rows of 576 columns on lavapipe: 2.1–2.5 ms at 16 or 32 lanes, 3.3–4.3 at 64).
  const lanes = rowWorkgroupSize(gpu, Math.ceil(vectors / 8));
  const variant = { ...values, WV: width === 4 ? `vec4<${weightType}>` : weightType, WIDTH: width, HAS_WEIGHT: weight !== null, WG: lanes };
  // Without a weight the shaders never read their weight binding; x fills the slot.
  const weightSlot = weight ?? x;
  // The sum is created before the normed output: backward takes tensors in decreasing creation
  // order as its topological order, and the normed output is computed from the sum.
  let sum = residual ? gpu.empty(x.shape) : x;
  const out = gpu.empty(x.shape);
  const rstd = gpu.empty([rows]);
  if (residual) {
    gpu.run(gpu.kernel('rmsnorm', { ...variant, RESIDUAL: true }), [x, weightSlot, out, rstd, residual, sum], rowGrid(gpu, rows), { u32: [rows, vectors], f32: [eps] });
    sum = recordOp('add', [x, residual], sum, (g) => [g, g]);
  } else {
    // The residual slots are never touched: the read one takes x, already bound read-only, the
    // writable one a spare V (WebGPU refuses two writable bindings of one buffer).
    const unused = gpu.empty([width]);
    gpu.run(gpu.kernel('rmsnorm', variant), [x, weightSlot, out, rstd, x, unused], rowGrid(gpu, rows), { u32: [rows, vectors], f32: [eps] });
    unused.dispose();
  }
  const normed = sum;
  const result = recordOp('rmsnorm', weight ? [normed, weight] : [normed], out, (g) => {
    assertGradientFits('rmsnorm', g, out);
    let dx: Tensor | null = null;
    if (normed.requiresGrad) {
      dx = gpu.empty(normed.shape);
      gpu.run(gpu.kernel('rmsnorm_backward', variant), [normed, weightSlot, rstd, g, dx], rowGrid(gpu, rows), { u32: [rows, vectors] });
    }
    let dWeight: Tensor | null = null;
    if (weight?.requiresGrad) {
      dWeight = gpu.empty(weight.shape);
      gpu.run(gpu.kernel('rmsnorm_weight_grad'), [normed, rstd, g, dWeight], gpu.grid1d(cols, WEIGHT_GRAD_WG), { u32: [rows, cols] });
    }
    return [dx, dWeight];
  });
  if (!result.node) rstd.dispose();
  return { sum, normed: result };
}
