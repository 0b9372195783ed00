import { noGrad, recordOp } from '../autograd/grad-node.js';
import { formatShape, type Tensor } from '../gpu/tensor.js';
import { matmul, matmulInto } from '../ops/matmul.js';
import { slice } from '../ops/layout.js';
import { tokenLogprobsGradInto, tokenLogprobsInto } from '../ops/token-logprobs.js';
import type { Linear } from '../model/linear.js';

export interface LmHeadLogprobs {
  /** log π(target | prefix) per row [N], recorded for autograd through the hidden states. */
  logprobs: Tensor;
  /** Entropy of the next-token distribution per row [N] (a metric; no gradient). */
  entropy: Tensor;
}

/**
 * Per-token log-probs of the chosen tokens straight from the final hidden states, a chunk of rows
 * at a time: the LM head's [chunk, vocab] logits exist only while their chunk is processed, in the
 * forward and again (recomputed) in the backward, so N × vocab logits are never held at once.
 * The head must be frozen (LoRA training, or generation); full fine-tuning of the head uses
 * model.logits + tokenLogprobs instead.
 */
export function lmHeadLogprobs(hidden: Tensor, head: Linear, targets: Tensor, chunkRows = 256): LmHeadLogprobs {
  const op = 'lmHeadLogprobs';
  const [rows, width] = hidden.shape;
  if (hidden.shape.length !== 2 || width !== head.inFeatures || targets.shape.length !== 1 || targets.size !== rows) {
    throw new Error(`${op}: hidden ${formatShape(hidden.shape)}, targets ${formatShape(targets.shape)} and head [${head.outFeatures}, ${head.inFeatures}] do not fit`);
  }
  if (head.weightBlocks.some((w) => w.requiresGrad) || head.delta || head.bias?.requiresGrad) {
    throw new Error(`${op}: the chunked path needs a frozen LM head; train the head with model.logits + tokenLogprobs`);
  }
  const gpu = hidden.gpu;
  const out = { logprobs: gpu.empty([rows]), logsumexp: gpu.empty([rows]), entropy: gpu.empty([rows]) };
  const chunks: [number, number][] = [];
  for (let r0 = 0; r0 < rows; r0 += chunkRows) chunks.push([r0, Math.min(rows, r0 + chunkRows)]);
  const chunkLogits = (r0: number, r1: number) => head.forward(r0 === 0 && r1 === rows ? hidden : slice(hidden, 0, r0, r1));
  noGrad(() => {
    for (const [r0, r1] of chunks) gpu.tidy(() => tokenLogprobsInto(chunkLogits(r0, r1), targets, out, r0));
  });
  const logprobs = recordOp(op, [hidden], out.logprobs, (g) => {
    const dhidden = gpu.empty([rows, width]);
    for (const [r0, r1] of chunks) {
      gpu.tidy(() => {
        const logits = chunkLogits(r0, r1);
        const dlogits = gpu.empty(logits.shape);
        tokenLogprobsGradInto(logits, targets, out.logsumexp, g, dlogits, { rowOffset: r0 });
        // d(logits)/d(hidden) = W for logits = hidden·Wᵀ.
        const blocks = head.weightBlocks;
        const dchunk = blocks.length === 1 ? matmul(dlogits, blocks[0]) : blockwiseProduct(dlogits, blocks);
        gpu.commands.copy(dchunk.buffer, 0, dhidden.buffer, r0 * width * 4, (r1 - r0) * width * 4);
      });
    }
    return [dhidden];
  });
  if (!logprobs.requiresGrad) out.logsumexp.dispose();
  return { logprobs, entropy: out.entropy };
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
