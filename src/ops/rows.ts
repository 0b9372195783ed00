import type { Workgroups } from '../gpu/commands.js';
import type { Gpu } from '../gpu/gpu.js';
import { formatShape, type Shape, type Tensor } from '../gpu/tensor.js';

/**
 * Launch helpers for kernels that give one workgroup to each row of the last axis (reductions,
 * softmax, norms). The workgroup is a power of two no wider than the row needs (idle lanes still
 * cost, ~10x on lavapipe for rows of a few elements), from the SIMD width (lavapipe's 8 lanes, a
 * GPU's 32-wide warps) up to 64 on a CPU adapter, which runs a workgroup on one thread where
 * barriers are costly, or 256 on a GPU, which wants wide groups to stream long rows.
 */
export function rowWorkgroupSize(gpu: Gpu, cols: number): number {
  const [narrowest, widest] = gpu.isCpuAdapter ? [8, 64] : [32, 256];
  return Math.min(widest, Math.max(narrowest, 2 ** Math.ceil(Math.log2(cols))));
}

/** One workgroup per row, split over x and y past the per-dimension limit (shaders use num_workgroups). */
export function rowGrid(gpu: Gpu, rows: number): Workgroups {
  return gpu.grid1d(rows, 1);
}

/** Views x as [rows, cols] over its last axis; `outer` is the shape without that axis. */
export function lastAxis(op: string, x: Tensor): { rows: number; cols: number; outer: Shape } {
  if (x.shape.length === 0) throw new Error(`${op}: needs at least one axis, got ${formatShape(x.shape)}`);
  const cols = x.shape[x.shape.length - 1];
  if (cols === 0) throw new Error(`${op}: the last axis is empty in ${formatShape(x.shape)}`);
  const outer = x.shape.slice(0, -1);
  return { rows: x.size / cols, cols, outer };
}
