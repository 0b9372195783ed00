import { afterAll, beforeAll } from 'vitest';
import { Gpu } from '../../src/gpu/gpu.js';
import type { Tensor } from '../../src/gpu/tensor.js';
import { defaultMatmulVariantChoices, restoreMatmulVariantChoices } from '../../src/ops/matmul-variants.js';

/**
 * One device per test file: created before its tests, destroyed after (so the process can exit).
 * Its matmuls run the adapter's default variant per shape class, not the winners a timing picked
 * (GrpoTrainer.create tunes, and keeps what it picks in .cache/autotune): on a fresh clone that
 * timing happens under the test run's own load and can crown any variant, and a test that compares
 * two paths whose products fall in different shape classes would then compare different kernels'
 * roundings. Tests that are about tuning or a variant force or tune their own.
 */
export function useGpu(): () => Gpu {
  let gpu: Gpu | undefined;
  beforeAll(async () => {
    gpu = await Gpu.create();
    restoreMatmulVariantChoices(gpu, defaultMatmulVariantChoices(gpu));
  });
  afterAll(() => gpu?.destroy());
  return () => {
    if (!gpu) throw new Error('GPU not ready');
    return gpu;
  };
}

/** Reads each parameter's accumulated gradient and clears it, so the next backward starts from none. */
export async function takeGradients(parameters: readonly Tensor[]): Promise<Float32Array[]> {
  const grads: Float32Array[] = [];
  for (const p of parameters) {
    grads.push(await p.grad!.toArray());
    p.grad!.dispose();
    p.grad = null;
  }
  return grads;
}
