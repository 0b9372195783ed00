import { recordOp } from '../autograd/grad-node.js';
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
}

/** Kernels merge their lanes' D-wide accumulators in workgroup memory (LANES · D · 16 bytes). */
const MAX_HEAD_DIM = 128;

/** Head dims the kernels take: multiples of 4 (vec4 loads) up to MAX_HEAD_DIM. */
export const ATTENTION_HEAD_DIMS = `multiples of 4 up to ${MAX_HEAD_DIM}`;
export const supportsHeadDim = (headDim: number): boolean => headDim % 4 === 0 && headDim > 0 && headDim <= MAX_HEAD_DIM;

/**
 * Every kernel gives a workgroup 4 rows (query rows, or keys in the key-side backward), carried
 * as vec4 components, and LANES invocations that split the other side (keys, or query rows).
 * 8 is lavapipe's SIMD width (one workgroup = one CPU thread).
 */
const ROWS_PER_WORKGROUP = 4;
const LANES = 8;

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
  if (kBatch !== batch) throw new Error(`${op}: batch sizes differ: ${shapes}`);
  if (kDim !== headDim) throw new Error(`${op}: head dims differ: ${shapes}`);
  if (kvHeads === 0 || qHeads % kvHeads !== 0) {
    throw new Error(`${op}: query heads (${qHeads}) must be a multiple of kv heads (${kvHeads}): ${shapes}`);
  }
  if (!supportsHeadDim(headDim)) {
    throw new Error(`${op}: head dim must be a multiple of 4 in [4, ${MAX_HEAD_DIM}]: ${shapes}`);
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
  return { batch, queries, keys, qHeads, kvHeads, headDim, kvLength, window, scale: opts.scale ?? 1 / Math.sqrt(headDim) };
}

const kernelValues = (g: Geometry) => ({ D: g.headDim, LANES });
const queryWorkgroups = (g: Geometry): [number, number, number] => [Math.ceil((g.queries * g.qHeads) / g.kvHeads / ROWS_PER_WORKGROUP), g.kvHeads, g.batch];

function params(g: Geometry) {
  return { u32: [g.queries, g.keys, g.qHeads, g.kvHeads, g.kvLength, g.window], f32: [g.scale] };
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
  gpu.run(gpu.kernel('attention_forward', kernelValues(geometry)), [q, k, v, keyStart, out, lse], queryWorkgroups(geometry), params(geometry));

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

/** The gradient for an input that wants one; otherwise null, freeing the storage now. */
function keepIf(grad: Tensor | null, input: Tensor): Tensor | null {
  if (input.requiresGrad) return grad;
  grad?.dispose();
  return null;
}
