import type { Tensor } from '../../src/gpu/tensor.js';
import type { SequenceBatch } from '../../src/train/completion-logprobs.js';
import { expectClose } from './check.js';
import { runPythonAsync } from '../python/run-python.js';

export interface TorchSftGradients {
  loss: number;
  /** Every trainable parameter's gradient, flattened, under its transformers (or PEFT save) name. */
  grads: Record<string, number[]>;
}

/**
 * The SFT loss of `batch` (a sequenceBatch) and its gradients from transformers, with PEFT's LoRA
 * from `adapterDir` when given, and torch autograd in float64 (test/python/sft_grad_reference.py).
 */
export async function torchSftGradients(batch: SequenceBatch, modelDir: string, adapterDir?: string): Promise<TorchSftGradients> {
  const rows = async (t: Tensor) => {
    const values = Array.from(await t.toArray());
    return Array.from({ length: values.length / batch.width }, (_, r) => values.slice(r * batch.width, (r + 1) * batch.width));
  };
  const request = { ids: await rows(batch.ids), targets: await rows(batch.targets), mask: await rows(batch.mask) };
  const out = await runPythonAsync('sft_grad_reference.py', [modelDir, ...(adapterDir ? [adapterDir] : [])], JSON.stringify(request));
  return JSON.parse(out) as TorchSftGradients;
}

// f32 on the GPU against float64. A gradient entry is a sum of f32 products through every layer:
// its error follows the size of the largest terms, not of the (often cancelling) entry, so the bound
// is relative to the tensor's largest entry: measured ≤ 2e-6 of it for every weight of a 2-layer
// toy transformer, while a mistake in any block's backward is ≳ 1e-2 of it.
const GRADIENT_TOL = { atol: 1e-5, rtol: 1e-5 };
/** The loss measured within 1e-7 relative. */
export const SFT_LOSS_TOL = { atol: 0, rtol: 1e-6 };

/** A GPU gradient against the float64 one, within GRADIENT_TOL of the reference's largest entry. */
export function expectGradientClose(actual: ArrayLike<number>, expected: readonly number[], label: string): void {
  const largest = expected.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
  expectClose(actual, expected, { atol: GRADIENT_TOL.atol * largest, rtol: GRADIENT_TOL.rtol }, label);
}
