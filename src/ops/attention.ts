import { isGradEnabled, recordOp } from '../autograd/grad-node.js';
import type { Gpu } from '../gpu/gpu.js';
import { formatShape, type Tensor } from '../gpu/tensor.js';
import { assertF32, assertRank } from './shape.js';

export interface AttentionOptions {
  /** Key positions of k/v that hold data (a partly filled KV cache); default S. */
  kvLength?: number;
  /** u32 [B]: keys j < keyStart[b] are masked (the left padding of ragged prompts). */
  keyStart?: Tensor;
  /** Multiplies q·k; default 1/√D. */
  scale?: number;
  /**
   * Sliding window: a query sees only the last `window` key columns up to its own (itself
   * included), as transformers' sliding-window mask (kv_idx > q_idx − window). Default: all.
   */
  window?: number;
  /**
   * u32 [B]: the row of k and v that batch row b reads (a KV cache whose finished sequences stay in
   * place, unread, instead of being copied out); k and v may then hold more rows than q. Read by
   * the per-row forward kernel only, without a backward. Default: row b.
   */
  kvRows?: Tensor;
  /**
   * Per batch row, how many of its T queries are real; the rest are padding (the right end of a
   * shorter completion in a [B, W] training batch) whose outputs nobody reads and whose output
   * gradient is zero. The windowed kernels then skip the padding's blocks of query rows, and the
   * keys only padding sees: real rows get exactly what they get without it; a padding row's output
   * is unspecified. Default: all T.
   */
  queryLengths?: readonly number[];
  /**
   * Decode (T = 1) from a KV cache whose sequences come in runs that hold the same keys and values
   * before `length` (copies of one prefilled prompt): `runs` u32 [R, 2] gives each run's first batch
   * row and its number of rows (at most DECODE_RUN_ROWS; the rows of a run are consecutive, have the
   * same keyStart, and every batch row is in one run), the first `severalRuns` of them of several
   * rows and the rest of one.
   * The forward then reads a shared key once per run (attention_decode); a row's output does not
   * depend on the runs nor on `length`. Needs kvRows; without a backward.
   */
  sharedKeys?: { runs: Tensor; severalRuns: number; length: number };
}

/** The most sequences one workgroup of the decode kernel takes (attention_decode's SEQS). */
export const DECODE_RUN_ROWS = 4;

/** Kernels merge their lanes' D-wide accumulators in workgroup memory (LANES · D · 16 bytes). */
const MAX_HEAD_DIM = 128;

/** Head dims the kernels take: multiples of 4 (vec4 loads) up to MAX_HEAD_DIM. */
export const ATTENTION_HEAD_DIMS = `multiples of 4 up to ${MAX_HEAD_DIM}`;
export const supportsHeadDim = (headDim: number): boolean => headDim % 4 === 0 && headDim > 0 && headDim <= MAX_HEAD_DIM;

/**
 * Two families of kernels. The per-row kernels (attention_forward, attention_backward_query,
 * attention_backward_key) give a workgroup 4 rows (query rows, or keys in the key-side backward),
 * carried as vec4 components, and LANES invocations that split the other side (keys, or query
 * rows): what decode wants, a few rows and a long KV cache. The windowed kernels (*_rows) give
 * each of the LANES invocations 4 rows of its own and read the other side through uniform
 * windows, one value for all lanes: what training and prefill want, many rows (3–4× faster on
 * lavapipe, bench/README.md). They run where a (batch row, kv head) has a workgroup's worth of
 * query rows. 8 is lavapipe's SIMD width (one workgroup = one CPU thread). Decode from a KV cache
 * whose sequences share a prompt's keys (sharedKeys) has a per-row kernel of its own,
 * attention_decode, whose workgroup takes up to DECODE_RUN_ROWS sequences and reads a shared key
 * once for all of them.
 */
const ROWS_PER_WORKGROUP = 4;
const LANES = 8;
const WINDOWED_BLOCK = ROWS_PER_WORKGROUP * LANES;

interface Geometry {
  batch: number;
  queries: number;
  keys: number;
  qHeads: number;
  kvHeads: number;
  headDim: number;
  kvLength: number;
  /** Keys a query sees; kvLength when unlimited (no wider window can matter). */
  window: number;
  scale: number;
  /** Real queries of each batch row (AttentionOptions.queryLengths; T where not given). */
  queryLengths: readonly number[];
}

function checkInputs(q: Tensor, k: Tensor, v: Tensor, opts: AttentionOptions): Geometry {
  const op = 'attention';
  assertRank(op, q, 4, 'q [B, T, Hq, D]');
  assertRank(op, k, 4, 'k [B, S, Hkv, D]');
  assertRank(op, v, 4, 'v [B, S, Hkv, D]');
  assertF32(op, q, k, v);
  const [batch, queries, qHeads, headDim] = q.shape;
  const [kBatch, keys, kvHeads, kDim] = k.shape;
  const shapes = `q ${formatShape(q.shape)}, k ${formatShape(k.shape)}, v ${formatShape(v.shape)}`;
  if (k.shape.some((d, i) => d !== v.shape[i])) throw new Error(`${op}: k and v shapes differ: ${shapes}`);
  if (opts.kvRows) {
    if (opts.kvRows.dtype !== 'u32' || opts.kvRows.shape.length !== 1 || opts.kvRows.shape[0] !== batch) {
      throw new Error(`${op}: kvRows must be u32 [${batch}], got ${opts.kvRows.dtype} ${formatShape(opts.kvRows.shape)} for ${shapes}`);
    }
    if ([q, k, v].some((t) => t.requiresGrad) && isGradEnabled()) throw new Error(`${op}: kvRows (a KV cache read by row) has no backward: ${shapes}`);
  } else if (kBatch !== batch) {
    throw new Error(`${op}: batch sizes differ: ${shapes}`);
  }
  if (kDim !== headDim) throw new Error(`${op}: head dims differ: ${shapes}`);
  if (kvHeads === 0 || qHeads % kvHeads !== 0) {
    throw new Error(`${op}: query heads (${qHeads}) must be a multiple of kv heads (${kvHeads}): ${shapes}`);
  }
  if (!supportsHeadDim(headDim)) {
    throw new Error(`${op}: head dim must be a multiple of 4 in [4, ${MAX_HEAD_DIM}]: ${shapes}`);
  }
  if (opts.sharedKeys) {
    const { runs, severalRuns, length } = opts.sharedKeys;
    if (!opts.kvRows) throw new Error(`${op}: sharedKeys needs kvRows (the cache row of each batch row): ${shapes}`);
    const wellFormed = runs.dtype === 'u32' && runs.shape.length === 2 && runs.shape[1] === 2 && Number.isInteger(severalRuns) && severalRuns >= 0 && severalRuns <= runs.shape[0];
    if (queries !== 1 || !wellFormed || !(Number.isInteger(length) && length >= 0)) {
      throw new Error(`${op}: sharedKeys needs T = 1, runs u32 [R, 2] of which severalRuns ≤ R, and a whole length, got T = ${queries}, runs ${runs.dtype} ${formatShape(runs.shape)}, severalRuns ${severalRuns}, length ${length}: ${shapes}`);
    }
  }
  const kvLength = opts.kvLength ?? keys;
  if (!Number.isInteger(kvLength) || kvLength < queries || kvLength > keys) {
    throw new Error(`${op}: kvLength ${kvLength} must be an integer in [T, S] = [${queries}, ${keys}]: ${shapes}`);
  }
  if (opts.keyStart && (opts.keyStart.dtype !== 'u32' || opts.keyStart.shape.length !== 1 || opts.keyStart.shape[0] !== batch)) {
    throw new Error(`${op}: keyStart must be u32 [${batch}], got ${opts.keyStart.dtype} ${formatShape(opts.keyStart.shape)} for ${shapes}`);
  }
  if (opts.window !== undefined && !(Number.isSafeInteger(opts.window) && opts.window > 0)) {
    throw new Error(`${op}: window must be a positive integer, got ${opts.window}`);
  }
  const window = Math.min(opts.window ?? kvLength, kvLength);
  const queryLengths = opts.queryLengths ?? Array<number>(batch).fill(queries);
  if (queryLengths.length !== batch || queryLengths.some((n) => !Number.isInteger(n) || n < 0 || n > queries)) {
    throw new Error(`${op}: queryLengths must be ${batch} whole numbers in [0, T = ${queries}], got [${queryLengths.join(', ')}]: ${shapes}`);
  }
  return { batch, queries, keys, qHeads, kvHeads, headDim, kvLength, window, scale: opts.scale ?? 1 / Math.sqrt(headDim), queryLengths };
}

const kernelValues = (g: Geometry) => ({ D: g.headDim, LANES });
/** Query rows of one (batch row, kv head): its query positions × the query heads that share it. */
const queryRows = (g: Geometry, queries = g.queries): number => (queries * g.qHeads) / g.kvHeads;
const queryWorkgroups = (g: Geometry): [number, number, number] => [Math.ceil(queryRows(g) / ROWS_PER_WORKGROUP), g.kvHeads, g.batch];

/** The u32 params every kernel starts with (the per-row kernels have only these, then the scale). */
const geometryParams = (g: Geometry): number[] => [g.queries, g.keys, g.qHeads, g.kvHeads, g.kvLength, g.window];

function params(g: Geometry) {
  return { u32: geometryParams(g), f32: [g.scale] };
}


/**
 * Causal multi-head attention with grouped-query heads: q [B, T, Hq, D], k and v [B, S, Hkv, D]
 * (query head h reads kv head ⌊h / (Hq/Hkv)⌋), output [B, T, Hq, D] — the layout the projections
 * produce, so no transposes. Query t sits at position kvLength − T + t and attends the keys
 * keyStart[b] ≤ j ≤ that position (and > position − window); a row that sees no key outputs 0.
 * Flash-style: an online softmax over the keys, saving only the per-row log-sum-exp for the
 * backward, which recomputes the probabilities (FlashAttention-2). The saved tensors live in the
 * enclosing tidy scope, so run the backward inside the tidy that ran the forward.
 */
export function attention(q: Tensor, k: Tensor, v: Tensor, opts: AttentionOptions = {}): Tensor {
  const geometry = checkInputs(q, k, v, opts);
  const { batch, queries, qHeads } = geometry;
  const gpu = q.gpu;
  const keyStart = opts.keyStart ?? gpu.zeros([batch], 'u32');
  const out = gpu.empty(q.shape);
  const lse = gpu.empty([batch, queries, qHeads]);
  // The windowed kernels bind each batch row's keys from the host, which does not read kvRows.
  const windows = opts.kvRows ? null : windowPlan(geometry, gpu);
  // A sequence's query heads per kv head: the decode kernel's vector width.
  const runRows = queryRows(geometry, 1);
  if (opts.sharedKeys && opts.kvRows && runRows >= 2 && runRows <= 4) {
    const { runs, severalRuns, length } = opts.sharedKeys;
    const { keys, kvHeads, kvLength, window, scale } = geometry;
    // Runs of one on a kernel for one: one for several computes every slot of a shorter run.
    for (const [seqs, firstRun, count] of [[DECODE_RUN_ROWS, 0, severalRuns], [1, severalRuns, runs.shape[0] - severalRuns]]) {
      if (count === 0) continue;
      const values = { ...kernelValues(geometry), SEQS: seqs, ROWS: runRows, RowsF: `vec${runRows}<f32>` };
      gpu.run(gpu.kernel('attention_decode', values), [q, k, v, keyStart, out, lse, opts.kvRows, runs], [count, kvHeads, 1], {
        u32: [keys, qHeads, kvHeads, kvLength, window, length, firstRun],
        f32: [scale],
      });
    }
  } else if (windows) forwardWindowed(geometry, windows, q, k, v, keyStart, out, lse);
  else {
    // Without kvRows the kernel's index binding takes keyStart, which it never reads as one.
    const kernel = gpu.kernel('attention_forward', { ...kernelValues(geometry), KV_ROWS: opts.kvRows !== undefined });
    gpu.run(kernel, [q, k, v, keyStart, out, lse, opts.kvRows ?? keyStart], queryWorkgroups(geometry), params(geometry));
  }

  recordOp('attention', [q, k, v], out, (gradOut) => attentionBackward(geometry, q, k, v, keyStart, out, lse, gradOut));
  // Nothing will read these again unless a backward was recorded; pool reuse is stream-ordered.
  if (!out.node) {
    lse.dispose();
    if (!opts.keyStart) keyStart.dispose();
  }
  return out;
}

function attentionBackward(g: Geometry, q: Tensor, k: Tensor, v: Tensor, keyStart: Tensor, out: Tensor, lse: Tensor, gradOut: Tensor): (Tensor | null)[] {
  const gpu = q.gpu;
  const windows = windowPlan(g, gpu);
  if (windows) return backwardWindowed(g, windows, q, k, v, keyStart, out, lse, gradOut);
  const gradQ = gpu.empty(q.shape);
  const delta = gpu.empty(lse.shape);
  gpu.run(gpu.kernel('attention_backward_query', kernelValues(g)), [q, k, v, keyStart, out, gradOut, lse, gradQ, delta], queryWorkgroups(g), params(g));
  let gradK: Tensor | null = null;
  let gradV: Tensor | null = null;
  if (k.requiresGrad || v.requiresGrad) {
    gradK = gpu.empty(k.shape);
    gradV = gpu.empty(v.shape);
    const keyWorkgroups = Math.ceil(g.keys / ROWS_PER_WORKGROUP);
    gpu.run(gpu.kernel('attention_backward_key', kernelValues(g)), [q, k, v, keyStart, gradOut, lse, delta, gradK, gradV], [keyWorkgroups, g.kvHeads, g.batch], params(g));
  }
  delta.dispose();
  return [keepIf(gradQ, q), keepIf(gradK, k), keepIf(gradV, v)];
}

/** How the windowed kernels split a call: keys per window (forward, query side), query positions per window (key side). */
interface WindowPlan {
  keysPerWindow: number;
  positionsPerWindow: number;
}

/** The windowed kernels' workgroups over the real query rows of batch row b and one kv head. */
const queryRowBlocks = (g: Geometry, b: number): number => Math.ceil(queryRows(g, g.queryLengths[b]) / WINDOWED_BLOCK);

/** Keys that batch row b's real queries may see: those before the position of its first padding query. */
const realKeys = (g: Geometry, b: number): number => g.kvLength - g.queries + g.queryLengths[b];

/** The windowed kernels' plan, or null where the per-row kernels run (few query rows, or a position too wide for a window). */
function windowPlan(g: Geometry, gpu: Gpu): WindowPlan | null {
  if (queryRows(g) < WINDOWED_BLOCK) return null;
  const { maxUniformBufferBindingSize: most, minUniformBufferOffsetAlignment: align } = gpu.device.limits;
  // A window starts up to `align` bytes before the first row it must hold.
  const keysPerWindow = Math.floor((most - align) / (g.kvHeads * g.headDim * 4));
  const positionsPerWindow = Math.floor((most - align) / (g.qHeads * g.headDim * 4));
  return keysPerWindow > 0 && positionsPerWindow > 0 ? { keysPerWindow, positionsPerWindow } : null;
}

interface UniformWindow {
  binding: GPUBufferBinding;
  /** Added to an index (in vec4s) into the tensor, modulo 2^32, it gives the index into the window. */
  shift: number;
  vec4s: number;
}

/**
 * A uniform binding of t's buffer that holds bytes [from, to) of t: as large as a binding may be,
 * so most windows share one specialisation (one that would pass the buffer's end starts earlier);
 * smaller where the buffer is, or where starting earlier would not reach the bytes' end.
 */
function uniformWindow(t: Tensor, from: number, to: number): UniformWindow {
  const { maxUniformBufferBindingSize: most, minUniformBufferOffsetAlignment: align } = t.gpu.device.limits;
  const start = t.binding.offset ?? 0;
  const size = t.buffer.size;
  const natural = Math.floor((start + from) / align) * align;
  const bytesFrom = (offset: number) => Math.floor(Math.min(most, size - offset) / 16) * 16;
  let offset = natural + most > size ? Math.max(0, Math.min(natural, Math.floor((size - most) / align) * align)) : natural;
  if (start + to > offset + bytesFrom(offset)) offset = natural;
  const bytes = bytesFrom(offset);
  if (start + to > offset + bytes) throw new Error(`attention: bytes [${from}, ${to}) of ${t} do not fit one uniform window`);
  return { binding: { buffer: t.buffer, offset, size: bytes }, shift: ((start - offset) / 16) >>> 0, vec4s: bytes / 16 };
}

const subgroups = (gpu: Gpu): boolean => gpu.features.has('subgroups');

/** The key windows of batch row b that its real queries may see, in key order: [lo, hi) and k's and v's windows for them. */
function keyWindows(g: Geometry, plan: WindowPlan, k: Tensor, v: Tensor, b: number) {
  const keyBytes = g.kvHeads * g.headDim * 4;
  const windows = [];
  for (let lo = 0; lo < realKeys(g, b); lo += plan.keysPerWindow) {
    const hi = Math.min(g.kvLength, lo + plan.keysPerWindow);
    const [from, to] = [(b * g.keys + lo) * keyBytes, (b * g.keys + hi) * keyBytes];
    windows.push({ lo, hi, k: uniformWindow(k, from, to), v: uniformWindow(v, from, to) });
  }
  return windows;
}

function forwardWindowed(g: Geometry, plan: WindowPlan, q: Tensor, k: Tensor, v: Tensor, keyStart: Tensor, out: Tensor, lse: Tensor): void {
  const gpu = q.gpu;
  const blocks = Math.ceil(queryRows(g) / WINDOWED_BLOCK);
  // Each lane's running softmax between windows: max, sum and D accumulators, vec4s over its 4 rows.
  // (With one window the kernel never touches it; the binding still needs a buffer of its own.)
  const state = gpu.empty([g.kvLength > plan.keysPerWindow ? g.batch * g.kvHeads * blocks * LANES * (g.headDim + 2) * 4 : 4]);
  for (let b = 0; b < g.batch; b++) {
    const windows = keyWindows(g, plan, k, v, b);
    windows.forEach((w, i) => {
      const kernel = gpu.kernel('attention_forward_rows', { D: g.headDim, LANES, K_WINDOW: w.k.vec4s, V_WINDOW: w.v.vec4s, SUBGROUPS: subgroups(gpu) });
      const flags = [i === 0 ? 1 : 0, i === windows.length - 1 ? 1 : 0];
      gpu.run(kernel, [q, w.k.binding, w.v.binding, keyStart, out, lse, state], [queryRowBlocks(g, b), g.kvHeads, 1], {
        u32: [...geometryParams(g), b, w.lo, w.hi, w.k.shift, w.v.shift, ...flags],
        f32: [g.scale],
      });
    });
  }
  state.dispose();
}

function backwardWindowed(g: Geometry, plan: WindowPlan, q: Tensor, k: Tensor, v: Tensor, keyStart: Tensor, out: Tensor, lse: Tensor, gradOut: Tensor): (Tensor | null)[] {
  const gpu = q.gpu;
  const gradQ = gpu.zeros(q.shape);
  const delta = gpu.empty(lse.shape);
  for (let b = 0; b < g.batch; b++) {
    keyWindows(g, plan, k, v, b).forEach((w, i) => {
      const kernel = gpu.kernel('attention_backward_query_rows', { D: g.headDim, LANES, K_WINDOW: w.k.vec4s, V_WINDOW: w.v.vec4s, SUBGROUPS: subgroups(gpu) });
      gpu.run(kernel, [q, w.k.binding, w.v.binding, keyStart, out, gradOut, lse, gradQ, delta], [queryRowBlocks(g, b), g.kvHeads, 1], {
        u32: [...geometryParams(g), b, w.lo, w.hi, w.k.shift, w.v.shift, i === 0 ? 1 : 0],
        f32: [g.scale],
      });
    });
  }
  let gradK: Tensor | null = null;
  let gradV: Tensor | null = null;
  if (k.requiresGrad || v.requiresGrad) {
    gradK = gpu.zeros(k.shape);
    gradV = gpu.zeros(v.shape);
    const positionBytes = g.qHeads * g.headDim * 4;
    for (let b = 0; b < g.batch; b++) {
      // Keys past the real queries' last position keep zero gradients: no real query sees them.
      const keyBlocks = Math.ceil(realKeys(g, b) / WINDOWED_BLOCK);
      for (let lo = 0; lo < g.queryLengths[b]; lo += plan.positionsPerWindow) {
        const hi = Math.min(g.queryLengths[b], lo + plan.positionsPerWindow);
        const [from, to] = [(b * g.queries + lo) * positionBytes, (b * g.queries + hi) * positionBytes];
        const qWindow = uniformWindow(q, from, to);
        const gradOutWindow = uniformWindow(gradOut, from, to);
        const kernel = gpu.kernel('attention_backward_key_rows', { D: g.headDim, LANES, Q_WINDOW: qWindow.vec4s, GRAD_OUT_WINDOW: gradOutWindow.vec4s, SUBGROUPS: subgroups(gpu) });
        gpu.run(kernel, [qWindow.binding, k, v, keyStart, gradOutWindow.binding, lse, delta, gradK, gradV], [keyBlocks, g.kvHeads, 1], {
          u32: [...geometryParams(g), b, lo, hi, qWindow.shift, gradOutWindow.shift],
          f32: [g.scale],
        });
      }
    }
  }
  delta.dispose();
  return [keepIf(gradQ, q), keepIf(gradK, k), keepIf(gradV, v)];
}

/** The gradient for an input that wants one; otherwise null, freeing the storage now. */
function keepIf(grad: Tensor | null, input: Tensor): Tensor | null {
  if (input.requiresGrad) return grad;
  grad?.dispose();
  return null;
}
