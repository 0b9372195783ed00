import { AutotuneCache, timeDispatches } from '../gpu/autotune.js';
import type { Gpu } from '../gpu/gpu.js';
import type { Specialisation } from '../gpu/shader-source.js';
import type { Tensor } from '../gpu/tensor.js';
import { contiguousLayout, type MatmulLayout } from './matmul-layout.js';

/**
 * The matmul kernels and how to launch them. Four shader families compute the same thing:
 *   rows*  (shaders/matmul.wgsl): no workgroup memory, subgroup shuffles share A; made for CPU
 *          adapters such as lavapipe (needs subgroups of at least 8 invocations).
 *   skinny (shaders/matmul_skinny.wgsl): x·Wᵀ for one or two rows of x (decode), each lane
 *          streaming its own row of W with 16-byte loads; CPU adapters, subgroups of at least 8.
 *          It only takes layouts it was made for (skinnyApplies) and runs rows16x2 on the others.
 *   bcast* (shaders/matmul_broadcast.wgsl): x·Wᵀ and g·W with x (g) read through uniform bindings of at most
 *          64 KiB, one dispatch per such window of rows or, where a window holds fewer rows than a
 *          workgroup takes, per block of rows across up to four; made for CPU adapters, where a uniform
 *          load is a gather without branches and, taken from lane 0 with subgroupBroadcast, one
 *          load. Only the layouts broadcastPlanOf plans; rows16x2 on the others.
 *   tiled* (shaders/matmul_tiled.wgsl): workgroup-shared tiles; made for real GPUs.
 * Which one runs: a variant forced with forceMatmulVariant(), else the autotuned winner for the
 * adapter and shape class (tuneMatmul()), else a default by adapter kind.
 */

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

interface SkinnyVariant {
  family: 'skinny';
  /** Invocations per workgroup; rows of W (output columns) each invocation owns. */
  lanes: number;
  cols: number;
}

interface BroadcastVariant {
  family: 'broadcast';
  /** Rows every invocation of a workgroup shares (each invocation owns 4 rows of W, i.e. output columns). */
  rows: number;
}

type Variant = RowsVariant | TiledVariant | SkinnyVariant | BroadcastVariant;

const VARIANTS = {
  rows16x2: { family: 'rows', rows: 16, cols: 2 },
  rows8x4: { family: 'rows', rows: 8, cols: 4 },
  rows4x4: { family: 'rows', rows: 4, cols: 4 },
  skinny: { family: 'skinny', lanes: 8, cols: 1 },
  bcast24x4: { family: 'broadcast', rows: 24 },
  tiled64: { family: 'tiled', tile: 64, tileK: 16, side: 16 },
  tiled32: { family: 'tiled', tile: 32, tileK: 16, side: 8 },
} as const satisfies Record<string, Variant>;

export type MatmulVariantName = keyof typeof VARIANTS;
export const MATMUL_VARIANTS = Object.keys(VARIANTS) as MatmulVariantName[];

const MAX_ROWS_WG = 64;
const MIN_ROWS_WG = 8;
/** Rows of x the skinny kernel holds in registers; more rows take more workgroups along y. */
const MAX_SKINNY_ROWS = 8;
/**
 * rows16x2, or the shared tiles on an adapter without the subgroups it needs: what a skinny or
 * broadcast variant runs on layouts it does not take, and the default of a class whose preferred
 * CPU variant is not supported.
 */
function rowsOrTiles(gpu: Gpu): MatmulVariantName {
  return variantSupported(gpu, 'rows16x2') ? 'rows16x2' : 'tiled64';
}
/** Invocations per broadcast workgroup (one 8-wide SIMD vector of lavapipe's), the columns each owns, and the workgroup's columns. */
const BROADCAST_LANES = 8;
const BROADCAST_COLS = 4;
const BROADCAST_TILE_N = BROADCAST_LANES * BROADCAST_COLS;

/**
 * The fewest rows of the output any variant's workgroup covers on a problem of many rows: a matmul
 * of M rows needs about M / this workgroups along y, whichever variant runs.
 */
export const MATMUL_MIN_ROWS_PER_WORKGROUP = Math.min(
  ...Object.values(VARIANTS).map((v: Variant) => (v.family === 'rows' ? v.rows : v.family === 'tiled' ? v.tile : MAX_SKINNY_ROWS)),
);

function nextPow2(x: number): number {
  return 2 ** Math.ceil(Math.log2(Math.max(1, x)));
}

/** Whether a variant can run on this device (rows* and skinny need subgroups of at least 8 invocations). */
export function variantSupported(gpu: Gpu, name: MatmulVariantName): boolean {
  const family = VARIANTS[name].family;
  if (family === 'tiled' || family === 'broadcast') return true;
  return gpu.features.has('subgroups') && (gpu.device.adapterInfo?.subgroupMinSize ?? 0) >= 8;
}

/**
 * Whether the skinny kernel takes a problem: x f32 and W f32 or f16, both contiguous along K (the
 * model's x·Wᵀ), and K and both offsets multiples of what one 16-byte load holds (4 f32, 8 f16)
 * so that every row of both starts on a 16-byte boundary.
 */
export function skinnyApplies(a: Tensor, b: Tensor, layout: MatmulLayout): boolean {
  const perLoad = b.dtype === 'f16' ? 8 : 4;
  const aligned = [layout.k, layout.aOffset, layout.bOffset].every((v) => v % perLoad === 0);
  return a.dtype === 'f32' && b.dtype !== 'u32' && layout.aKStride === 1 && layout.bKStride === 1 && aligned;
}

/**
 * A window of A for a broadcast kernel: bound from byte `offset` for `bytes` bytes, its first row
 * `shift` vec4s in (0 but for a last window bound back from the end of A's buffer, see broadcastPlan).
 */
export interface BroadcastWindow {
  offset: number;
  bytes: number;
  shift: number;
}

/** One dispatch of a broadcast kernel: rows [row0, row0 + rows) of A, through 1–4 windows. */
export interface BroadcastDispatch {
  row0: number;
  rows: number;
  windows: BroadcastWindow[];
}

/** How the broadcast kernel reads W: along K (x·Wᵀ) or N (g·W), rows of W this far apart. */
interface BroadcastReads {
  alongK: boolean;
  wRowStride: number;
}

/**
 * How a broadcast variant reads W (see shaders/matmul_broadcast.wgsl), or null when it does not take
 * the problem: A f32 contiguous along K in one batch, W f32 or f16 contiguous along K (x·Wᵀ) or
 * along N (g·W), and everything W's 16-byte loads (4 f32, 8 f16) and A's vec4 loads need aligned:
 * W's offset and row stride and the length it is contiguous along, K and A's row stride and offset.
 * Nor, where the rows kernel runs, does it take N narrower than one workgroup's columns (LoRA's
 * rank side, N = r): most lanes would compute clamped duplicates, one workgroup per row block, and
 * those ran 5–10× slower than the rows kernel's narrow blocks (bench/README.md, "The backward's g·W
 * through uniform windows"). Without subgroups the fallback is the shared tiles, not measured there.
 */
function broadcastReads(a: Tensor, b: Tensor, layout: MatmulLayout): BroadcastReads | null {
  if (a.dtype !== 'f32' || b.dtype === 'u32' || layout.aKStride !== 1 || layout.batch !== 1) return null;
  if (![layout.k, layout.aRowStride, layout.aOffset].every((v) => v % 4 === 0)) return null;
  const alongK = layout.bKStride === 1;
  if (!alongK && layout.bColStride !== 1) return null;
  const wRowStride = alongK ? layout.bColStride : layout.bKStride;
  // Elements per load of W: 16 bytes, but 8 for half W along N (4 columns a lane, as with f32).
  const perLoad = b.dtype === 'f16' && alongK ? 8 : 4;
  const aligned = [alongK ? layout.k : layout.n, layout.bOffset, wRowStride].every((v) => v % perLoad === 0);
  const wideEnough = layout.n >= BROADCAST_TILE_N || rowsOrTiles(a.gpu) !== 'rows16x2';
  return aligned && wideEnough ? { alongK, wRowStride } : null;
}

/**
 * A broadcast product as the kernel runs it: how it reads W, the most rows of A a workgroup takes
 * (tileRows), the rows of A a window holds where a dispatch binds several (windowRows), and its
 * dispatches.
 */
export interface BroadcastPlan extends BroadcastReads {
  tileRows: number;
  windowRows: number;
  dispatches: BroadcastDispatch[];
}

/** Windows of A one broadcast dispatch binds at most (uniform bindings 1 and 6–8 of the kernel). */
const MAX_WINDOWS = 4;
/**
 * A broadcast product of at most this many rows (a decode batch) is one block of rows, so each piece
 * of W is loaded once: as blocks of 24 + 8 rows (or 24 + 4 at 28) it is loaded twice, and decode's
 * products ran 1.1–1.8× slower on llvmpipe (bench/README.md, "Several windows per dispatch").
 */
const ONE_BLOCK_ROWS = 32;

/**
 * How a broadcast variant with up to `tileRows` rows per workgroup runs a product: how it reads W
 * and the uniform windows it reads A through; or null when it does not take the problem
 * (broadcastReads, or A's buffer not bindable as uniform).
 * A window holds as many rows as fit the device's uniform binding size; its binding is the next
 * power of two of what it spans (one pipeline per size), which must lie inside A's buffer and start
 * at an offset the device accepts for uniform bindings. Where a window holds a workgroup's rows or
 * more, a dispatch takes one window of whole row blocks (or every row, if they fit). Where it holds
 * fewer (K = 1 536 in f32 fits 10), a dispatch binds enough consecutive windows, up to MAX_WINDOWS,
 * for one block of rows across them, so each piece of W a lane loads feeds a whole block; its
 * windows share the size of a full one, and a last, partial window whose binding at that size
 * would end past the buffer gets a dispatch of its own at its own size, bound back from the
 * buffer's end where even that would pass it.
 */
function broadcastPlan(a: Tensor, b: Tensor, layout: MatmulLayout, tileRows: number): BroadcastPlan | null {
  const { limits } = a.gpu.device;
  const reads = broadcastReads(a, b, layout);
  if (!reads || (a.buffer.usage & GPUBufferUsage.UNIFORM) === 0) return null;
  const maxElements = limits.maxUniformBufferBindingSize / 4;
  const span = (rows: number) => (rows - 1) * layout.aRowStride + layout.k;
  if (span(1) > maxElements) return null;
  const fit = span(layout.m) <= maxElements ? layout.m : Math.floor((maxElements - layout.k) / layout.aRowStride) + 1;
  const perWindow = fit >= tileRows && fit < layout.m ? fit - (fit % tileRows) : fit;
  // Windows per dispatch: enough for a block of tileRows, unless that block would pass ONE_BLOCK_ROWS
  // (e.g. 21 rows a window at K = 768: two would make 42), then as many whole windows as it holds.
  const enough = Math.min(MAX_WINDOWS, Math.ceil(tileRows / fit));
  const group = fit >= tileRows ? 1 : Math.min(enough * fit, layout.m) <= ONE_BLOCK_ROWS ? enough : Math.max(1, Math.floor(ONE_BLOCK_ROWS / fit));
  const bytesFor = (rows: number) => Math.max(16, nextPow2(span(rows) * 4));
  const ownBytes = (start: number) => bytesFor(Math.min(perWindow, layout.m - start));
  const rowByte = (row: number) => (layout.aOffset + row * layout.aRowStride) * 4;
  const bind = (start: number, bytes: number): BroadcastWindow | null => {
    const offset = rowByte(start);
    return offset % limits.minUniformBufferOffsetAlignment === 0 && offset + bytes <= a.buffer.size ? { offset, bytes, shift: 0 } : null;
  };
  // A binding is a power of two of bytes (one pipeline per size), so a last window of a few rows can
  // end past A's buffer (6 rows of K = 1 536 bind 64 KiB for 36 KiB): it is bound to end where the
  // buffer ends instead, its rows `shift` vec4s in.
  const bindFromEnd = (start: number, bytes: number): BroadcastWindow | null => {
    const first = rowByte(start);
    const offset = Math.floor((a.buffer.size - bytes) / limits.minUniformBufferOffsetAlignment) * limits.minUniformBufferOffsetAlignment;
    const end = first + span(layout.m - start) * 4;
    return offset >= 0 && offset <= first && end <= offset + bytes ? { offset, bytes, shift: (first - offset) / 16 } : null;
  };
  const bound = (w: BroadcastWindow | null): w is BroadcastWindow => w !== null;
  const dispatches: BroadcastDispatch[] = [];
  for (let row0 = 0; row0 < layout.m; row0 += group * perWindow) {
    const end = Math.min(row0 + group * perWindow, layout.m);
    const starts = Array.from({ length: group }, (_, w) => row0 + w * perWindow).filter((start) => start < end);
    const windows = starts.map((start) => bind(start, group > 1 ? bytesFor(perWindow) : ownBytes(start)));
    if (windows.every(bound)) {
      dispatches.push({ row0, rows: end - row0, windows });
      continue;
    }
    // Only the product's last, partial window can run past the buffer at a full window's size: alone, at its own.
    const last = starts[starts.length - 1];
    const before = windows.slice(0, -1);
    const alone = bind(last, ownBytes(last)) ?? bindFromEnd(last, ownBytes(last));
    if (!alone || !before.every(bound)) return null;
    if (before.length) dispatches.push({ row0, rows: last - row0, windows: before });
    dispatches.push({ row0: last, rows: end - last, windows: [alone] });
  }
  return { ...reads, tileRows: group > 1 ? Math.min(ONE_BLOCK_ROWS, Math.ceil((group * perWindow) / 4) * 4) : tileRows, windowRows: perWindow, dispatches };
}

/** How a broadcast variant runs a product (broadcastPlan with its rows per workgroup), or null where it runs the rows kernel instead. */
export function broadcastPlanOf(name: MatmulVariantName, a: Tensor, b: Tensor, layout: MatmulLayout): BroadcastPlan | null {
  const v: Variant = VARIANTS[name];
  if (v.family !== 'broadcast') return null;
  const m = layout.m;
  return broadcastPlan(a, b, layout, broadcastTileRows(m, m <= ONE_BLOCK_ROWS ? ONE_BLOCK_ROWS : v.rows));
}

/**
 * A term a product can carry: + scale·h·Lᵀ for h [M, r] and L [N, r] in f32 (LoRA's (x·Aᵀ)·Bᵀ on
 * its base product), or with `lRows`, + scale·h·L for L stored [r, N] (LoRA's dh·A on the
 * backward's g·W0).
 */
export interface LowRankTerm {
  h: Tensor;
  l: Tensor;
  scale: number;
  lRows?: boolean;
}

/**
 * The smallest uniform binding of a low-rank term's h: every h up to this size (a decode step's few
 * rows and a micro-batch's hundreds alike, at r = 8 up to 512 rows) is bound at this size, when its
 * buffer holds it (allocate h with it as empty's minBytes), so that the broadcast kernel's pipelines,
 * one per binding size, do not multiply with h's row counts: bound at h's own power of two, the
 * peer's step compiled 7 sizes of it (bench/README.md, "Pipelines a first step compiles").
 */
export const LOW_RANK_BINDING_BYTES = 16 * 1024;

/** How the broadcast kernel reads a low-rank term: h whole through one uniform binding of `bytes`, r/4 steps. */
interface LowRankBinding {
  term: LowRankTerm;
  bytes: number;
  steps: number;
}

/**
 * The binding of a low-rank term on a broadcast plan, or null where the kernel does not take it (then
 * it is a product of its own). matmulInto has checked the term's shapes and that both are f32.
 */
function lowRankBinding(term: LowRankTerm, plan: BroadcastPlan): LowRankBinding | null {
  const { h } = term;
  const rank = h.shape[1];
  const own = Math.max(16, nextPow2(h.size * 4));
  const shared = Math.max(own, LOW_RANK_BINDING_BYTES);
  const bytes = shared <= h.buffer.size ? shared : own;
  const takes =
    plan.alongK === !term.lRows && rank % 4 === 0 && (h.buffer.usage & GPUBufferUsage.UNIFORM) !== 0 &&
    bytes <= h.gpu.device.limits.maxUniformBufferBindingSize && bytes <= h.buffer.size;
  return takes ? { term, bytes, steps: rank / 4 } : null;
}

/**
 * Lanes of a rows-kernel workgroup for N columns, cols per lane: the widest block up to N (lanes
 * share A's loads), unless its last block would leave more than a quarter of the columns computed
 * as clamped duplicates; then the lane count that pads least. (The LM head's dX run the other way
 * round has N = a chunk's rows, e.g. 150: 2 blocks of 128 columns; 10 of 16 ran it 1.4-1.9x faster.)
 */
function rowsLanes(n: number, cols: number): number {
  const widest = Math.max(MIN_ROWS_WG, Math.min(MAX_ROWS_WG, nextPow2(Math.ceil(n / cols))));
  const padded = (lanes: number) => Math.ceil(n / (lanes * cols)) * lanes * cols;
  if (padded(widest) <= 1.25 * n) return widest;
  let best = widest;
  for (let lanes = widest / 2; lanes >= MIN_ROWS_WG; lanes /= 2) if (padded(lanes) < padded(best)) best = lanes;
  return best;
}

function kernelFor(gpu: Gpu, name: MatmulVariantName, a: Tensor, b: Tensor, m: number, n: number) {
  const v: Variant = VARIANTS[name];
  const types = { TA: a.dtype, TB: b.dtype };
  if (v.family === 'skinny') {
    const rows = Math.min(MAX_SKINNY_ROWS, nextPow2(m));
    const kernel = gpu.kernel('matmul_skinny', { HALF: b.dtype === 'f16', WG: v.lanes, TM: rows, TN: v.cols });
    return { kernel, tileM: rows, tileN: v.lanes * v.cols };
  }
  if (v.family === 'broadcast') throw new Error('kernelFor: broadcast variants launch per window (recordBroadcast)');
  if (v.family === 'tiled') {
    const constants: Specialisation = { ...types, TILE_M: v.tile, TILE_N: v.tile, TILE_K: v.tileK, WG_M: v.side, WG_N: v.side };
    return { kernel: gpu.kernel('matmul_tiled', constants), tileM: v.tile, tileN: v.tile };
  }
  // Small problems get a narrower block rather than computing clamped duplicates: fewer rows
  // when M is small, fewer lanes (down to one 8-wide subgroup) when N is, and fewer columns per
  // lane when even that subgroup would cover N more than once (LoRA's rank-r side, N = r).
  const rows = Math.min(v.rows, nextPow2(m));
  const cols = Math.min(v.cols, Math.ceil(n / MIN_ROWS_WG));
  const lanes = rowsLanes(n, cols);
  const kernel = gpu.kernel('matmul', { ...types, WG: lanes, TM: rows, TN: cols });
  return { kernel, tileM: rows, tileN: lanes * cols };
}

/** Sums over at least this many k count as long (see runsSwapped). */
const LONG_K = 8192;

/**
 * Whether the rows kernels run a product the other way round (swappedLayout). Their lanes each walk
 * their own columns of B along k; for a B stored [K, N] (dX = g·W) that takes every subgroup across
 * a whole row of B per k, half a cache line each, while A's rows are walked once per subgroup. On
 * long sums (the LM head's dX, K = vocabulary) neither stays in cache between the subgroups of a
 * workgroup, and the other way round (lanes along g's rows, W's columns shared) moves a third less
 * and ran 2.1× faster on llvmpipe; at the decoder's K ≤ 1536 it was level or slower
 * (bench/README.md, "Training-shaped products").
 */
export function runsSwapped(gpu: Gpu, name: MatmulVariantName, layout: MatmulLayout): boolean {
  // A broadcast variant would read such long rows of A a window of one to three rows at a time
  // (2.5× slower than the rows kernel on the LM head's dX in blocks of 4 096): its fallback runs them swapped.
  const runs = VARIANTS[name].family === 'broadcast' ? rowsOrTiles(gpu) : name;
  return VARIANTS[runs].family === 'rows' && layout.k >= LONG_K && layout.bKStride !== 1 && layout.aKStride === 1;
}

/**
 * Records C = alpha·op(A)·op(B) (+ C when accumulate) with the given variant, and the low-rank term
 * `lowRank` with it where the broadcast kernel runs the product: returns whether it did (if not, the
 * caller records the term as a product of its own).
 */
export function recordMatmul(name: MatmulVariantName, out: Tensor, a: Tensor, b: Tensor, layout: MatmulLayout, accumulate: boolean, alpha: number, lowRank?: LowRankTerm): boolean {
  const gpu = out.gpu;
  const { m, n, k, batch } = layout;
  const v: Variant = VARIANTS[name];
  const plan = broadcastPlanOf(name, a, b, layout);
  if (plan) {
    const low = lowRank ? lowRankBinding(lowRank, plan) : null;
    recordBroadcast(plan, out, a, b, layout, accumulate, alpha, low);
    return low !== null;
  }
  const usable = (v.family === 'skinny' && !skinnyApplies(a, b, layout)) || v.family === 'broadcast' ? rowsOrTiles(gpu) : name;
  const { kernel, tileM, tileN } = kernelFor(gpu, usable, a, b, m, n);
  gpu.run(kernel, [a, b, out], [Math.ceil(n / tileN), Math.ceil(m / tileM), batch], {
    u32: [m, n, k, layout.aRowStride, layout.aKStride, layout.bKStride, layout.bColStride, layout.aBatchStride, layout.bBatchStride, layout.aOffset, layout.bOffset, layout.cRowStride, layout.cColStride, accumulate ? 1 : 0],
    f32: [alpha],
  });
  return false;
}

/**
 * Rows per broadcast workgroup for a window of m rows: few rows as a power of two, more in steps of 4
 * up to the variant's, so a window of 10 rows (K = 1536 fills 64 KiB with 10) computes 2 clamped
 * duplicates rather than 6, with a handful of pipelines rather than one per row count.
 */
function broadcastTileRows(m: number, most: number): number {
  return Math.min(most, m <= 4 ? nextPow2(m) : Math.ceil(m / 4) * 4);
}

const unusedStores = new WeakMap<Gpu, GPUBuffer>();

/**
 * A 16-byte storage buffer for the broadcast kernel's C binding it does not write (its scalar or its
 * vec4 view of C, whichever C_VEC4 leaves out): the pipeline still declares both, and WebGPU refuses
 * one buffer bound twice writable.
 */
function unusedStore(gpu: Gpu): GPUBufferBinding {
  let buffer = unusedStores.get(gpu);
  if (!buffer) unusedStores.set(gpu, (buffer = gpu.device.createBuffer({ size: 16, usage: GPUBufferUsage.STORAGE })));
  return { buffer, offset: 0, size: 16 };
}

function recordBroadcast(plan: BroadcastPlan, out: Tensor, a: Tensor, b: Tensor, layout: MatmulLayout, accumulate: boolean, alpha: number, low: LowRankBinding | null): void {
  const gpu = out.gpu;
  const { alongK, wRowStride, tileRows, windowRows, dispatches } = plan;
  const lowConstants: Specialisation = low ? { LOW_STEPS: low.steps, LOW_WINDOW: low.bytes / 16 } : {};
  // A lane's 4 columns are one 16-byte store where C is contiguous along N in rows of a multiple of 4 (so each row starts on 16 bytes).
  const vec4Stores = layout.cColStride === 1 && layout.n % 4 === 0 && layout.cRowStride % 4 === 0;
  const constants: Specialisation = { HALF: b.dtype === 'f16', W_ALONG_K: alongK, WG: BROADCAST_LANES, SUBGROUPS: gpu.features.has('subgroups'), C_VEC4: vec4Stores, ...lowConstants };
  for (const d of dispatches) {
    const tileM = broadcastTileRows(d.rows, tileRows);
    const several: Specialisation = d.windows.length > 1 ? { WINDOWS: d.windows.length, WINDOW_ROWS: windowRows } : {};
    const kernel = gpu.kernel('matmul_broadcast', { ...constants, ...several, TM: tileM, WINDOW: d.windows[0].bytes / 16 });
    const [first, second = first, third = first, fourth = first] = d.windows.map((w) => ({ buffer: a.buffer, offset: w.offset, size: w.bytes }));
    // Without a low-rank term its two slots take buffers this dispatch already binds read-only; the kernel never reads them.
    const lowSlots = low ? [{ buffer: low.term.h.buffer, offset: 0, size: low.bytes }, low.term.l] : [first, b];
    const [scalarC, vec4C] = vec4Stores ? [unusedStore(gpu), out] : [out, unusedStore(gpu)];
    gpu.run(kernel, [first, b, scalarC, ...lowSlots, second, third, fourth, b, vec4C], [Math.ceil(layout.n / BROADCAST_TILE_N), Math.ceil(d.rows / tileM)], {
      u32: [d.rows, layout.n, layout.k, layout.aRowStride, wRowStride, layout.bOffset, d.row0 * layout.cRowStride, layout.cRowStride, layout.cColStride, accumulate ? 1 : 0, d.row0, d.windows[0].shift],
      f32: [alpha, low ? low.term.scale : 0],
    });
  }
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

/**
 * Decode of one sequence (one row), decode of a batch (a handful of rows, or up to 32) and the rest
 * favour different blockings: bandwidth, then loads of x shared across columns, then arithmetic.
 */
function shapeClass(m: number): string {
  if (m === 1) return 'one-row';
  if (m <= 16) return 'few-rows';
  return m <= 32 ? 'batch-rows' : 'many-rows';
}

/**
 * Representative problems per shape class: the model's x·Wᵀ with SmolLM2-sized widths, and how many
 * runs one timed sample averages. Decode-sized products take ~1 ms on a CPU adapter, so a sample of
 * two could be decided by one time slice lost to another process: those samples average 20.
 */
const TUNING_SHAPES: Record<string, { m: number; n: number; k: number; reps: number }> = {
  'one-row': { m: 1, n: 1536, k: 576, reps: 20 },
  'few-rows': { m: 8, n: 1536, k: 576, reps: 20 },
  'batch-rows': { m: 24, n: 1536, k: 576, reps: 10 },
  'many-rows': { m: 256, n: 1536, k: 576, reps: 2 },
};

/**
 * What CPU adapters run per shape class before (or without) tuning (llvmpipe measurements,
 * bench/README.md). bcast24x4 needs no subgroups: on Chromium's SwiftShader, which has none, it ran
 * decode-sized products 20–50× faster than tiled64, what that adapter ran before. With x taken
 * from lane 0 it also beat skinny on one row (a decode step 0.87× on llvmpipe), and rows16x2 on
 * many rows (a rollout's prefill 6.6–8.2 s against 14.3–15.7 s on an AMD EPYC; the tuner's choice
 * there and on an Intel Xeon). Without subgroups it takes x otherwise, and many rows did not run
 * faster on it than on tiled64 in the page on SwiftShader: there they stay on tiled64.
 */
const CPU_DEFAULTS: Record<string, MatmulVariantName> = { 'one-row': 'bcast24x4', 'few-rows': 'bcast24x4', 'batch-rows': 'bcast24x4', 'many-rows': 'bcast24x4' };

/**
 * Bumped when the tuning procedure changes, or a variant's kernel changes enough to reorder the
 * winners, so that winners picked before are retuned (version 1 timed decode-sized products over 2
 * runs per sample; one such run on this machine crowned rows4x4, the slowest rows variant at M = 8
 * to 32. Version 2's winners predate bcast24x4 taking x from lane 0, which then beat skinny on one
 * row and widened its lead elsewhere).
 */
const TUNER_VERSION = 3;

/**
 * Tuning results are stored per shape class, variant list and tuner version: a winner timed before a
 * variant existed says nothing about it, so adding one retunes rather than keeping the old winner.
 */
function tuningKey(cls: string): string {
  return `${cls} of ${MATMUL_VARIANTS.join(',')} (tuner ${TUNER_VERSION})`;
}

/** The variant for an M before (or without) tuning: CPU_DEFAULTS on CPU adapters (rowsOrTiles where one is not supported; the shared tiles for many rows without subgroups), shared tiles elsewhere. */
export function defaultMatmulVariant(gpu: Gpu, m: number): MatmulVariantName {
  if (!gpu.isCpuAdapter) return 'tiled64';
  const cls = shapeClass(m);
  // Without subgroups (SwiftShader) the broadcast kernel did not beat the shared tiles on many rows.
  if (cls === 'many-rows' && !variantSupported(gpu, 'rows16x2')) return 'tiled64';
  const preferred = CPU_DEFAULTS[cls];
  return variantSupported(gpu, preferred) ? preferred : rowsOrTiles(gpu);
}

export function chooseMatmulVariant(gpu: Gpu, m: number): MatmulVariantName {
  const pinned = forced.get(gpu);
  if (pinned) return pinned;
  const winner = tuned.get(gpu.adapterName, tuningKey(shapeClass(m)));
  if (winner && winner in VARIANTS && variantSupported(gpu, winner as MatmulVariantName)) return winner as MatmulVariantName;
  return defaultMatmulVariant(gpu, m);
}

export interface TuningResult {
  shapeClass: string;
  winner: MatmulVariantName;
  /** Milliseconds per run of each candidate on the class's representative shape (fastest sample). */
  timings: Partial<Record<MatmulVariantName, number>>;
}

export interface TuningOptions {
  /** Retune classes already tuned on this adapter. */
  force?: boolean;
  /** Timed runs per candidate per sample (after one untimed run); default per shape class. */
  reps?: number;
  /** Rounds over all candidates; each candidate keeps its fastest. */
  samples?: number;
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
 * On a CPU adapter other processes share the cores and only ever slow a run down, by different
 * amounts from moment to moment: so every candidate keeps its fastest of `samples` rounds, and
 * each round times all candidates back to back, so a busy spell hits them alike.
 */
export async function tuneMatmul(gpu: Gpu, options: TuningOptions = {}): Promise<TuningResult[]> {
  const { force = false, samples = 3, candidates = MATMUL_VARIANTS, persist = true } = options;
  const results: TuningResult[] = [];
  const supported = candidates.filter((c) => variantSupported(gpu, c));
  for (const [cls, { m, n, k, reps: classReps }] of Object.entries(TUNING_SHAPES)) {
    const reps = options.reps ?? classReps;
    const known = tuned.get(gpu.adapterName, tuningKey(cls));
    if (known && !force) continue;
    const timings: Partial<Record<MatmulVariantName, number>> = {};
    const [a, b, out] = [gpu.zeros([m, k]), gpu.zeros([n, k]), gpu.empty([m, n])];
    const layout = contiguousLayout(m, k, n, false, true);
    try {
      for (let sample = 0; sample < samples; sample++) {
        for (const name of supported) {
          const ms = await timeDispatches(gpu, () => recordMatmul(name, out, a, b, layout, false, 1), reps, sample === 0);
          timings[name] = Math.min(timings[name] ?? Infinity, ms);
        }
      }
    } finally {
      for (const t of [a, b, out]) t.dispose();
    }
    const ranked = (Object.entries(timings) as [MatmulVariantName, number][]).sort((x, y) => x[1] - y[1]);
    if (!ranked.length) throw new Error(`tuneMatmul: no supported candidate among ${candidates.join(', ')}`);
    tuned.set(gpu.adapterName, tuningKey(cls), ranked[0][0], persist);
    results.push({ shapeClass: cls, winner: ranked[0][0], timings });
  }
  return results;
}

/**
 * The variant each shape class runs on this adapter now (tuned or default). A training run
 * records it in its checkpoints so that a resumed run computes with the very same kernels, and
 * so the same rounding, whatever a new tuning on a busy machine would pick.
 */
export function matmulVariantChoices(gpu: Gpu): Record<string, MatmulVariantName> {
  return Object.fromEntries(Object.entries(TUNING_SHAPES).map(([cls, { m }]) => [cls, chooseMatmulVariant(gpu, m)]));
}

/** What matmulVariantChoices gives on this adapter before any tuning (defaultMatmulVariant per shape class). */
export function defaultMatmulVariantChoices(gpu: Gpu): Record<string, MatmulVariantName> {
  return Object.fromEntries(Object.entries(TUNING_SHAPES).map(([cls, { m }]) => [cls, defaultMatmulVariant(gpu, m)]));
}

/**
 * Makes recorded choices current, in memory only (see matmulVariantChoices). Choices recorded before
 * 'batch-rows' existed ran those products (17–32 rows) with their 'many-rows' variant, which they keep.
 */
export function restoreMatmulVariantChoices(gpu: Gpu, choices: Readonly<Record<string, string>>): void {
  const complete = 'batch-rows' in choices || !('many-rows' in choices) ? choices : { ...choices, 'batch-rows': choices['many-rows'] };
  for (const [cls, variant] of Object.entries(complete)) {
    if (!(cls in TUNING_SHAPES)) throw new Error(`restoreMatmulVariantChoices: unknown shape class '${cls}'`);
    if (!(variant in VARIANTS)) throw new Error(`restoreMatmulVariantChoices: unknown matmul variant '${variant}'`);
    tuned.set(gpu.adapterName, tuningKey(cls), variant, false);
  }
}
