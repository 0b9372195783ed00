import { afterAll, beforeAll } from 'vitest';
import { Gpu } from '../../src/gpu/gpu.js';
import type { Tensor } from '../../src/gpu/tensor.js';

/** One device per test file: created before its tests, destroyed after (so the process can exit). */
export function useGpu(): () => Gpu {
  let gpu: Gpu | undefined;
  beforeAll(async () => {
    gpu = await Gpu.create();
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
