import { backwardFrom } from './backward.js';
import { isGradEnabled, noGrad, withGrad } from './grad-node.js';
import type { Tensor } from '../gpu/tensor.js';

/** State a forward advances and a recomputation has to start from the same point (e.g. a dropout stream counter). */
export interface ReplayableState {
  get(): number;
  set(value: number): void;
}

/**
 * Activation recomputation (gradient checkpointing): runs fn without recording, so only its inputs
 * and outputs stay alive, and gives the outputs one backward that runs fn again from the same
 * inputs, recording, and back-propagates through that copy. Trainable weights fn reads (LoRA's A
 * and B) receive their gradients as leaves of that inner pass. Costs one more forward of fn.
 * The outputs always require grad: fn may read trainable weights that are not among the inputs.
 */
export function checkpoint(op: string, inputs: readonly Tensor[], fn: (inputs: readonly Tensor[]) => Tensor[], replay: readonly ReplayableState[] = []): Tensor[] {
  if (!isGradEnabled()) return fn(inputs);
  const gpu = inputs[0].gpu;
  const start = replay.map((s) => s.get());
  const outputs = noGrad(() => gpu.tidy(() => fn(inputs)));
  for (const out of outputs) out.requiresGrad = true;
  const node = {
    op,
    inputs,
    outputs,
    backwardAll(gradOutputs: readonly (Tensor | null)[]): (Tensor | null)[] {
      const now = replay.map((s) => s.get());
      replay.forEach((s, i) => s.set(start[i]));
      try {
        return gpu.tidy(() => {
          // The inputs again, as leaves sharing their storage: the inner pass leaves their gradients in .grad.
          const leaves = inputs.map((x) => {
            const leaf = x.leadingRows(x.shape[0]);
            leaf.requiresGrad = x.requiresGrad;
            return leaf;
          });
          const recomputed = withGrad(() => fn(leaves));
          const roots = recomputed.filter((out, i) => gradOutputs[i] && out.requiresGrad);
          if (roots.length) backwardFrom(roots, gradOutputs.filter((g, i): g is Tensor => g !== null && recomputed[i].requiresGrad));
          return leaves.map((leaf) => leaf.grad);
        });
      } finally {
        replay.forEach((s, i) => s.set(now[i]));
      }
    },
  };
  for (const out of outputs) out.node = node;
  return outputs;
}
