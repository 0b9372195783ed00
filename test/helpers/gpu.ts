import { afterAll, beforeAll } from 'vitest';
import { Gpu } from '../../src/gpu/gpu.js';

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
