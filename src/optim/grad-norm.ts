import type { Gpu } from '../gpu/gpu.js';
import type { Tensor } from '../gpu/tensor.js';

const WG = 256;
/** Elements per first-pass workgroup: enough work per workgroup to amortise its reduction. */
const CHUNK = 4096;

function checkGrads(op: string, grads: readonly Tensor[]): Gpu {
  if (grads.length === 0) throw new Error(`${op}: no gradients given`);
  for (const g of grads) if (g.dtype !== 'f32') throw new Error(`${op}: gradients must be f32, got ${g}`);
  return grads[0].gpu;
}

/** √(Σ g²) over every element of every tensor, as a [1] tensor computed on the GPU (two passes, no read-back). */
export function globalGradNorm(grads: readonly Tensor[]): Tensor {
  const gpu = checkGrads('globalGradNorm', grads);
  const chunks = grads.map((g) => Math.ceil(g.size / CHUNK));
  const partials = gpu.empty([Math.max(1, chunks.reduce((a, b) => a + b, 0))]);
  let offset = 0;
  grads.forEach((g, i) => {
    gpu.run(gpu.kernel('grad_norm_partial', { WG, CHUNK }), [g, partials], gpu.grid1d(chunks[i], 1), { u32: [g.size, offset] });
    offset += chunks[i];
  });
  const norm = gpu.empty([1]);
  gpu.run(gpu.kernel('grad_norm_finish', { WG }), [partials, norm], [1], { u32: [offset] });
  partials.dispose();
  return norm;
}

/**
 * torch.nn.utils.clip_grad_norm_: scales every gradient in place by min(1, maxNorm / (norm + 1e-6))
 * and returns the norm before clipping as a [1] tensor; everything stays on the GPU.
 */
export function clipGradNorm(grads: readonly Tensor[], maxNorm: number): Tensor {
  if (!Number.isFinite(maxNorm) || maxNorm <= 0) throw new Error(`clipGradNorm: maxNorm must be a positive number, got ${maxNorm}`);
  const norm = globalGradNorm(grads);
  const gpu = norm.gpu;
  for (const g of grads) {
    gpu.run(gpu.kernel('grad_norm_clip', { WG }), [norm, g], gpu.grid1d(g.size, WG), { u32: [g.size], f32: [maxNorm] });
  }
  return norm;
}
