import { AutotuneCache, timeDispatches } from '../gpu/autotune.js';
import type { Gpu } from '../gpu/gpu.js';
import type { Specialisation } from '../gpu/shader-source.js';
import type { Tensor } from '../gpu/tensor.js';

/**
 * The matmul kernels and how to launch them. Two shader families compute the same thing:
 *   rows*  (shaders/matmul.wgsl): no workgroup memory, subgroup shuffles share A; made for CPU
 *          adapters such as lavapipe (needs subgroups of at least 8 invocations).
 *   tiled* (shaders/matmul_tiled.wgsl): workgroup-shared tiles; made for real GPUs.
 * Which one runs: a variant forced with forceMatmulVariant(), else the autotuned winner for the
 * adapter and shape class (tuneMatmul()), else a default by adapter kind.
 */

/** Where the operands live: C[z] (M×N) = op(A[z]) (M×K) · op(B[z]) (K×N), element strides. */
export interface MatmulLayout {
  m: number;
  n: number;
  k: number;
  batch: number;
  aRowStride: number;
  aKStride: number;
  bKStride: number;
  bColStride: number;
  aBatchStride: number;
  bBatchStride: number;
}

interface RowsVariant {
  family: 'rows';
  /** Rows every invocation of a workgroup shares; columns each invocation owns. */
  rows: number;
  cols: number;
}

interface TiledVariant {
  family: 'tiled';
  tile: number;
  tileK: number;
  /** The workgroup is side × side invocations, each owning (tile / side)² outputs. */
  side: number;
}

type Variant = RowsVariant | TiledVariant;

const VARIANTS = {
  rows16x2: { family: 'rows', rows: 16, cols: 2 },
  rows8x4: { family: 'rows', rows: 8, cols: 4 },
  rows4x4: { family: 'rows', rows: 4, cols: 4 },
  tiled64: { family: 'tiled', tile: 64, tileK: 16, side: 16 },
  tiled32: { family: 'tiled', tile: 32, tileK: 16, side: 8 },
} as const satisfies Record<string, Variant>;

export type MatmulVariantName = keyof typeof VARIANTS;
export const MATMUL_VARIANTS = Object.keys(VARIANTS) as MatmulVariantName[];

const MAX_ROWS_WG = 64;
const MIN_ROWS_WG = 8;

function nextPow2(x: number): number {
  return 2 ** Math.ceil(Math.log2(Math.max(1, x)));
}

/** Whether a variant can run on this device (rows* need subgroups of at least 8 invocations). */
export function variantSupported(gpu: Gpu, name: MatmulVariantName): boolean {
  if (VARIANTS[name].family === 'tiled') return true;
  return gpu.features.has('subgroups') && (gpu.device.adapterInfo?.subgroupMinSize ?? 0) >= 8;
}

function kernelFor(gpu: Gpu, name: MatmulVariantName, a: Tensor, b: Tensor, m: number, n: number) {
  const v: Variant = VARIANTS[name];
  const types = { TA: a.dtype, TB: b.dtype };
  if (v.family === 'tiled') {
    const constants: Specialisation = { ...types, TILE_M: v.tile, TILE_N: v.tile, TILE_K: v.tileK, WG_M: v.side, WG_N: v.side };
    return { kernel: gpu.kernel('matmul_tiled', constants), tileM: v.tile, tileN: v.tile };
  }
  // Small problems get a narrower block rather than computing clamped duplicates: fewer rows
  // when M is small, fewer lanes (down to one 8-wide subgroup) when N is.
  const rows = Math.min(v.rows, nextPow2(m));
  const lanes = Math.max(MIN_ROWS_WG, Math.min(MAX_ROWS_WG, nextPow2(Math.ceil(n / v.cols))));
  const kernel = gpu.kernel('matmul', { ...types, WG: lanes, TM: rows, TN: v.cols });
  return { kernel, tileM: rows, tileN: lanes * v.cols };
}

/** Records C = alpha·op(A)·op(B) (+ C when accumulate) with the given variant. */
export function recordMatmul(name: MatmulVariantName, out: Tensor, a: Tensor, b: Tensor, layout: MatmulLayout, accumulate: boolean, alpha: number): void {
  const gpu = out.gpu;
  const { m, n, k, batch } = layout;
  const { kernel, tileM, tileN } = kernelFor(gpu, name, a, b, m, n);
  gpu.run(kernel, [a, b, out], [Math.ceil(n / tileN), Math.ceil(m / tileM), batch], {
    u32: [m, n, k, layout.aRowStride, layout.aKStride, layout.bKStride, layout.bColStride, layout.aBatchStride, layout.bBatchStride, accumulate ? 1 : 0],
    f32: [alpha],
  });
}

// ---- choosing a variant ---------------------------------------------------------------------

const forced = new WeakMap<Gpu, MatmulVariantName>();
const tuned = new AutotuneCache('matmul');

/** Pins every matmul on this device to one variant (tests, benchmarks); undefined unpins. */
export function forceMatmulVariant(gpu: Gpu, name: MatmulVariantName | undefined): void {
  if (name === undefined) {
    forced.delete(gpu);
    return;
  }
  if (!variantSupported(gpu, name)) throw new Error(`matmul: variant ${name} is not supported on ${gpu.adapterName}`);
  forced.set(gpu, name);
}

/** Decode-sized products (a handful of rows) and the rest favour different blockings. */
function shapeClass(m: number): string {
  return m <= 16 ? 'few-rows' : 'many-rows';
}

/** Representative problems per shape class: the model's x·Wᵀ with SmolLM2-sized widths. */
const TUNING_SHAPES: Record<string, { m: number; n: number; k: number }> = {
  'few-rows': { m: 8, n: 1536, k: 576 },
  'many-rows': { m: 256, n: 1536, k: 576 },
};

export function chooseMatmulVariant(gpu: Gpu, m: number): MatmulVariantName {
  const pinned = forced.get(gpu);
  if (pinned) return pinned;
  const winner = tuned.get(gpu.adapterName, shapeClass(m));
  if (winner && winner in VARIANTS && variantSupported(gpu, winner as MatmulVariantName)) return winner as MatmulVariantName;
  return gpu.isCpuAdapter && variantSupported(gpu, 'rows16x2') ? 'rows16x2' : 'tiled64';
}

export interface TuningResult {
  shapeClass: string;
  winner: MatmulVariantName;
  /** Milliseconds per run of each candidate on the class's representative shape. */
  timings: Partial<Record<MatmulVariantName, number>>;
}

export interface TuningOptions {
  /** Retune classes already tuned on this adapter. */
  force?: boolean;
  /** Timed runs per candidate (after one untimed run). */
  reps?: number;
  candidates?: readonly MatmulVariantName[];
  /** false: remember the winners in memory only, not in .cache/autotune/matmul.json. */
  persist?: boolean;
}

/** Drops tuning results held in memory (they are reread from the cache file when next needed). */
export function forgetMatmulTuning(): void {
  tuned.reset();
}

/**
 * Times every supported variant on each shape class's representative problem and remembers the
 * fastest for this adapter (see AutotuneCache). Classes already tuned on this adapter are
 * skipped unless `force`. Run once at start-up; matmul() itself never waits on the GPU.
 */
export async function tuneMatmul(gpu: Gpu, options: TuningOptions = {}): Promise<TuningResult[]> {
  const { force = false, reps = 2, candidates = MATMUL_VARIANTS, persist = true } = options;
  const results: TuningResult[] = [];
  for (const [cls, { m, n, k }] of Object.entries(TUNING_SHAPES)) {
    const known = tuned.get(gpu.adapterName, cls);
    if (known && !force) continue;
    const timings: Partial<Record<MatmulVariantName, number>> = {};
    const [a, b, out] = [gpu.zeros([m, k]), gpu.zeros([n, k]), gpu.empty([m, n])];
    const layout: MatmulLayout = { m, n, k, batch: 1, aRowStride: k, aKStride: 1, bKStride: 1, bColStride: k, aBatchStride: 0, bBatchStride: 0 };
    try {
      for (const name of candidates.filter((c) => variantSupported(gpu, c))) {
        timings[name] = await timeDispatches(gpu, () => recordMatmul(name, out, a, b, layout, false, 1), reps);
      }
    } finally {
      for (const t of [a, b, out]) t.dispose();
    }
    const ranked = (Object.entries(timings) as [MatmulVariantName, number][]).sort((x, y) => x[1] - y[1]);
    if (!ranked.length) throw new Error(`tuneMatmul: no supported candidate among ${candidates.join(', ')}`);
    tuned.set(gpu.adapterName, cls, ranked[0][0], persist);
    results.push({ shapeClass: cls, winner: ranked[0][0], timings });
  }
  return results;
}
