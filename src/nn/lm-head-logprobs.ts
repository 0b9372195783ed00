import { isGradEnabled, noGrad, recordOp } from '../autograd/grad-node.js';
import type { Gpu } from '../gpu/gpu.js';
import { formatShape, type Tensor } from '../gpu/tensor.js';
import { matmulInto, matmulKBlocksInto } from '../ops/matmul.js';
import { mul } from '../ops/binary.js';
import { slice, view } from '../ops/layout.js';
import { tokenLogprobsGradInto, tokenLogprobsInto } from '../ops/token-logprobs.js';
import type { Linear } from '../model/linear.js';

export interface LmHeadLogprobs {
  /** log π(target | prefix) per row [N], recorded for autograd through the hidden states. */
  logprobs: Tensor;
  /** Entropy of the next-token distribution per row [N] (a metric; no gradient). */
  entropy: Tensor;
}

/** Whether nothing in the LM head trains (LoRA on the decoder, or generation): what lmHeadLogprobs needs. */
export function isFrozenHead(head: Linear): boolean {
  return !head.weightBlocks.some((w) => w.requiresGrad) && !head.delta && !head.bias?.requiresGrad;
}

/**
 * Per-token log-probs of the chosen tokens straight from the final hidden states, a chunk of rows
 * at a time: the LM head's [chunk, vocab] logits exist only while their chunk is processed, so
 * N × vocab logits are never held at once. When a gradient will flow, each chunk also keeps
 * d log π(target)/d hidden = (onehot(target) − softmax)·W [chunk, hidden] while its logits exist,
 * and the backward only scales those rows by the incoming gradient: two vocabulary-wide products
 * per row (logits, then that one) instead of three (the backward recomputing the logits before
 * multiplying by W). The head must be frozen (LoRA training, or generation); full fine-tuning of
 * the head uses model.logits + tokenLogprobs instead.
 * `knownLogits(r0, r1)`: the logits of rows [r0, r1) as an earlier forward of the same hidden states
 * computed them (ProjectionStore.readLogits), read instead of computed.
 */
export function lmHeadLogprobs(hidden: Tensor, head: Linear, targets: Tensor, chunkRows = 256, knownLogits?: (r0: number, r1: number) => Tensor): LmHeadLogprobs {
  const op = 'lmHeadLogprobs';
  const [rows, width] = hidden.shape;
  if (hidden.shape.length !== 2 || width !== head.inFeatures || targets.shape.length !== 1 || targets.size !== rows) {
    throw new Error(`${op}: hidden ${formatShape(hidden.shape)}, targets ${formatShape(targets.shape)} and head [${head.outFeatures}, ${head.inFeatures}] do not fit`);
  }
  if (!isFrozenHead(head)) {
    throw new Error(`${op}: the chunked path needs a frozen LM head; train the head with model.logits + tokenLogprobs`);
  }
  const gpu = hidden.gpu;
  const out = { logprobs: gpu.empty([rows]), logsumexp: gpu.empty([rows]), entropy: gpu.empty([rows]) };
  const slope = isGradEnabled() && hidden.requiresGrad ? gpu.empty([rows, width]) : null;
  const unit = slope && gpu.tensor(new Float32Array(rows).fill(1), [rows]);
  noGrad(() => {
    for (let r0 = 0; r0 < rows; r0 += chunkRows) {
      const r1 = Math.min(rows, r0 + chunkRows);
      gpu.tidy(() => {
        const logits = knownLogits ? knownLogits(r0, r1) : head.forward(r0 === 0 && r1 === rows ? hidden : slice(hidden, 0, r0, r1));
        tokenLogprobsInto(logits, targets, out, r0);
        if (!slope || !unit) return;
        const dlogits = gpu.empty(logits.shape);
        // d(logits)/d(hidden) = W for logits = hidden·Wᵀ. A head of one block reads dlogits in
        // blocks of the vocabulary short enough for the broadcast kernel's uniform windows.
        const blocks = head.weightBlocks;
        const blockWidth = blocks.length === 1 ? vocabularyBlockWidth(gpu) : 0;
        tokenLogprobsGradInto(logits, targets, out.logsumexp, unit, dlogits, { rowOffset: r0, blockWidth });
        const dchunk = blockWidth ? vocabularyBlocksProduct(dlogits, blocks[0], blockWidth) : blockwiseProduct(dlogits, blocks);
        gpu.commands.copy(dchunk.buffer, 0, slope.buffer, r0 * width * 4, (r1 - r0) * width * 4);
      });
    }
  });
  out.logsumexp.dispose();
  unit?.dispose();
  if (!slope) return { logprobs: out.logprobs, entropy: out.entropy };
  const logprobs = recordOp(op, [hidden], out.logprobs, (g) => [mul(slope, view(g, [rows, 1]))]);
  return { logprobs, entropy: out.entropy };
}

/** Columns of dlogits per block: a uniform window (64 KiB) then holds 8 rows of a block, and a broadcast dispatch 32 rows from 4 windows. */
export const vocabularyBlockWidth = (gpu: Gpu): number => gpu.device.limits.maxUniformBufferBindingSize / 4 / 8;

/** dlogits·W for dlogits stored in blocks of `blockWidth` columns (tokenLogprobsGradInto's blockWidth). */
function vocabularyBlocksProduct(dlogits: Tensor, w: Tensor, blockWidth: number): Tensor {
  const out = dlogits.gpu.empty([dlogits.shape[0], w.shape[1]]);
  matmulKBlocksInto(out, dlogits, w, blockWidth, { accumulate: false });
  return out;
}

/**
 * dlogits·W for W given as blocks of rows: each block's columns of dlogits times the block, summed
 * in block order (a reassociation of the sum over the vocabulary, so not bit-equal to one product).
 */
function blockwiseProduct(dlogits: Tensor, blocks: readonly Tensor[]): Tensor {
  const out = dlogits.gpu.empty([dlogits.shape[0], blocks[0].shape[1]]);
  let column = 0;
  blocks.forEach((block, i) => {
    const columns = slice(dlogits, 1, column, column + block.shape[0]);
    matmulInto(out, columns, block, { accumulate: i > 0 });
    columns.dispose();
    column += block.shape[0];
  });
  return out;
}
