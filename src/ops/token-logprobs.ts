import { recordOp } from '../autograd/grad-node.js';
import { formatShape, type Tensor } from '../gpu/tensor.js';
import { assertGradientFits } from './gradient.js';
import { rowGrid, rowWorkgroupSize } from './rows.js';
import { assertF32, assertRank } from './shape.js';

/** Per-token outputs of one [chunk, V] slice, written at rows [rowOffset, rowOffset + chunk) of full-length [N] tensors. */
export interface TokenLogprobsOutputs {
  logprobs: Tensor;
  /** Saved for the backward (the softmax is recomputed from it and the logits). */
  logsumexp: Tensor;
  entropy?: Tensor;
}

export interface TokenLogprobsGradOptions {
  /** Row of targets/logsumexp/gradLogprobs that row 0 of the logits chunk corresponds to. */
  rowOffset?: number;
  /** Add into dlogits instead of overwriting it (rows whose gradient is 0 are then skipped). */
  accumulate?: boolean;
  /**
   * Store dlogits in blocks of this many columns, each block [chunk, width] row-major (the last may
   * be narrower), as matmulKBlocksInto reads it; default: plain row-major [chunk, V].
   */
  blockWidth?: number;
}

function checkChunk(op: string, logits: Tensor, targets: Tensor, rowOffset: number, perToken: Record<string, Tensor | undefined>): void {
  assertRank(op, logits, 2, 'logits');
  assertF32(op, logits);
  assertRank(op, targets, 1, 'targets');
  if (targets.dtype !== 'u32') throw new Error(`${op}: targets must be u32, got ${targets.dtype} ${formatShape(targets.shape)}`);
  const [rows, vocab] = logits.shape;
  if (vocab === 0) throw new Error(`${op}: logits ${formatShape(logits.shape)} have an empty vocabulary`);
  const n = targets.shape[0];
  if (!Number.isInteger(rowOffset) || rowOffset < 0 || rowOffset + rows > n) {
    throw new Error(`${op}: logits ${formatShape(logits.shape)} at row offset ${rowOffset} do not fit targets ${formatShape(targets.shape)}`);
  }
  for (const [name, t] of Object.entries(perToken)) {
    if (!t) continue;
    assertF32(op, t);
    // Indexed flat, so only the size must agree (autograd may hand over a reshaped gradient).
    if (t.size !== n) {
      throw new Error(`${op}: ${name} ${formatShape(t.shape)} does not match targets ${formatShape(targets.shape)}`);
    }
  }
}

/**
 * Writes log softmax(logits)[r, targets[rowOffset + r]] (and the row's logsumexp, and optionally
 * its entropy) at index rowOffset + r of the outputs, for every row r of a [chunk, V] logits slice.
 * Not recorded by autograd: the fused LM-head loss calls this chunk by chunk.
 */
export function tokenLogprobsInto(logits: Tensor, targets: Tensor, out: TokenLogprobsOutputs, rowOffset = 0): void {
  const op = 'tokenLogprobs';
  checkChunk(op, logits, targets, rowOffset, { ...out });
  const gpu = logits.gpu;
  const [rows, vocab] = logits.shape;
  const withEntropy = out.entropy !== undefined;
  // The shader always binds an entropy buffer; a writable binding cannot alias another one.
  const entropy = out.entropy ?? gpu.empty([1]);
  const WG = rowWorkgroupSize(gpu, vocab);
  gpu.run(gpu.kernel('token_logprobs', { WG, WITH_ENTROPY: withEntropy }), [logits, targets, out.logprobs, out.logsumexp, entropy], rowGrid(gpu, rows), {
    u32: [rows, vocab, rowOffset],
    f32: [NaN],
  });
  if (!withEntropy) entropy.dispose();
}

/**
 * dlogits[r, v] (=|+=) g[rowOffset + r]·(1[v = target] − softmax(logits)[r, v]) for a [chunk, V]
 * logits slice and its [chunk, V] gradient buffer; targets, logsumexp and gradLogprobs are [N].
 * Not recorded by autograd.
 */
export function tokenLogprobsGradInto(
  logits: Tensor,
  targets: Tensor,
  logsumexp: Tensor,
  gradLogprobs: Tensor,
  dlogits: Tensor,
  options: TokenLogprobsGradOptions = {},
): void {
  const op = 'tokenLogprobs backward';
  const { rowOffset = 0, accumulate = false, blockWidth = 0 } = options;
  checkChunk(op, logits, targets, rowOffset, { logsumexp, gradLogprobs });
  if (!Number.isSafeInteger(blockWidth) || blockWidth < 0) throw new Error(`${op}: blockWidth must be a non-negative integer, got ${blockWidth}`);
  assertF32(op, dlogits);
  if (dlogits.shape.length !== 2 || dlogits.shape[0] !== logits.shape[0] || dlogits.shape[1] !== logits.shape[1]) {
    throw new Error(`${op}: dlogits ${formatShape(dlogits.shape)} does not match logits ${formatShape(logits.shape)}`);
  }
  const gpu = logits.gpu;
  const [rows, vocab] = logits.shape;
  const WG = rowWorkgroupSize(gpu, vocab);
  gpu.run(gpu.kernel('token_logprobs_backward', { WG, ACCUMULATE: accumulate }), [logits, targets, logsumexp, gradLogprobs, dlogits], rowGrid(gpu, rows), {
    u32: [rows, vocab, rowOffset, blockWidth],
  });
}

/** log softmax(logits)[n, targets[n]] for logits [N, V] and u32 targets [N]; differentiable in the logits. */
export function tokenLogprobs(logits: Tensor, targets: Tensor): Tensor;
/** Also returns each row's entropy −Σ p·log p [N] (a logged metric: no gradient flows through it). */
export function tokenLogprobs(logits: Tensor, targets: Tensor, options: { withEntropy: true }): { logprobs: Tensor; entropy: Tensor };
export function tokenLogprobs(logits: Tensor, targets: Tensor, options?: { withEntropy: true }): Tensor | { logprobs: Tensor; entropy: Tensor } {
  checkChunk('tokenLogprobs', logits, targets, 0, {});
  if (logits.shape[0] !== targets.shape[0]) {
    throw new Error(`tokenLogprobs: logits ${formatShape(logits.shape)} and targets ${formatShape(targets.shape)} have different row counts`);
  }
  const gpu = logits.gpu;
  const n = targets.shape[0];
  const out: TokenLogprobsOutputs = { logprobs: gpu.empty([n]), logsumexp: gpu.empty([n]) };
  if (options?.withEntropy) out.entropy = gpu.empty([n]);
  tokenLogprobsInto(logits, targets, out);
  const { logprobs, logsumexp, entropy } = out;
  recordOp('tokenLogprobs', [logits, targets], logprobs, (g) => {
    assertGradientFits('tokenLogprobs', g, logprobs);
    const dlogits = gpu.empty(logits.shape);
    tokenLogprobsGradInto(logits, targets, logsumexp, g, dlogits);
    return [dlogits, null];
  });
  // Without a recorded backward nothing will read the logsumexp again.
  if (!logprobs.node) logsumexp.dispose();
  return entropy ? { logprobs, entropy } : logprobs;
}
