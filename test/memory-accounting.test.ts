import { describe, expect, it } from 'vitest';
import { sizeClass } from '../src/gpu/buffer-pool.js';
import { memoryBreakdown, type MemoryGroups } from '../src/gpu/memory.js';
import type { Tensor } from '../src/gpu/tensor.js';
import { repositoryRoot } from '../src/io/repository-root.js';
import { GrpoTrainer } from '../src/rl/grpo-trainer.js';
import type { StepMetrics } from '../src/rl/grpo-update.js';
import { useGpu } from './helpers/gpu.js';
import { tinyGrpoConfig } from './helpers/tiny-trainer.js';

const MiB = 2 ** 20;
/** Bytes the pool holds for these tensors, each storage counted once, from shapes alone. */
const expectedBytes = (tensors: Iterable<Tensor>) => {
  const seen = new Set<GPUBuffer>();
  let bytes = 0;
  for (const t of tensors) {
    if (seen.has(t.buffer)) continue;
    seen.add(t.buffer);
    bytes += sizeClass(t.byteLength);
  }
  return bytes;
};

describe('memory accounting on tiny', () => {
  const gpu = useGpu();

  const trainer = () =>
    GrpoTrainer.create(
      gpu(),
      tinyGrpoConfig({ promptsPerStep: 2, numGenerations: 4, generationBatchSize: 8, microBatchSize: 3, maxNewTokens: 12, steps: 2, evalEvery: 1_000_000, saveEvery: 1_000_000, evalPrompts: 0 }),
      repositoryRoot(),
    );

  it('sorts every device byte of a GRPO step into one kind', async () => {
    const t = await trainer();
    const rows: StepMetrics[] = [];
    try {
      await t.train((m) => rows.push(m));
      const model = t.loaded.model;
      const frozen = expectedBytes(model.parameters.values());
      const trainable = expectedBytes([...t.lora.parameters(), ...t.optimizer.stateTensors()]);
      expect(frozen).toBeGreaterThan(0);
      expect(rows).toHaveLength(2);
      for (const row of rows) {
        expect(row['memory/frozen_mib']).toBe(frozen / MiB);
        // Gradients are dropped after each optimizer step, so only adapters and moments remain.
        expect(row['memory/trainable_mib']).toBe(trainable / MiB);
        const kinds = row['memory/frozen_mib'] + row['memory/trainable_mib'] + row['memory/pool_cache_mib'] + row['memory/live_other_mib'];
        expect(kinds).toBeCloseTo(row['memory/device_mib'], 9);
        expect(row['memory/peak_device_mib']).toBeGreaterThanOrEqual(row['memory/peak_gpu_mib']);
        expect(row['memory/peak_gpu_mib']).toBeGreaterThan((frozen + trainable) / MiB);
        // Each phase holds the weights and adapters; the step's peak is the larger phase's.
        expect(row['memory/peak_generation_mib']).toBeGreaterThan((frozen + trainable) / MiB);
        expect(row['memory/peak_training_mib']).toBeGreaterThan((frozen + trainable) / MiB);
        expect(row['memory/peak_gpu_mib']).toBe(Math.max(row['memory/peak_generation_mib'], row['memory/peak_training_mib']));
        expect(row['memory/max_rss_mib']).toBeGreaterThanOrEqual(row['memory/rss_mib']);
        if (process.platform === 'linux') expect(Number.isInteger(row['memory/mappings']) && row['memory/mappings'] > 0).toBe(true);
        else expect(row['memory/mappings']).toBeNaN();
      }
      expect(t.gpu.pool.cachedBytes).toBeLessThanOrEqual(t.gpu.pool.maxCachedBytes);
    } finally {
      await t.close();
    }
  });

  it('counts activations as live other while they are held, and as pool cache once released', async () => {
    const t = await trainer();
    const g = gpu();
    try {
      const groups = (): MemoryGroups => ({ frozen: t.loaded.model.parameters.values(), trainable: [...t.lora.parameters(), ...t.optimizer.stateTensors()] });
      g.pool.trim();
      const before = memoryBreakdown(g, groups());
      const held = g.tidy(() => {
        const ids = g.tensor([1, 2, 3, 4, 5, 6], [2, 3], 'u32');
        const positions = g.tensor([0, 1, 2, 0, 1, 2], [2, 3], 'u32');
        return t.loaded.model.forward(ids, { positions });
      });
      const during = memoryBreakdown(g, groups());
      expect(during.liveOtherBytes).toBeGreaterThanOrEqual(before.liveOtherBytes + sizeClass(held.byteLength));
      expect(during.frozenBytes + during.trainableBytes + during.poolCacheBytes + during.liveOtherBytes).toBe(during.allocatedBytes);
      held.dispose();
      const after = memoryBreakdown(g, groups());
      expect(after.liveOtherBytes).toBe(before.liveOtherBytes);
      expect(after.poolCacheBytes).toBe(after.allocatedBytes - before.allocatedBytes);
      expect(after.frozenBytes + after.trainableBytes + after.poolCacheBytes + after.liveOtherBytes).toBe(after.allocatedBytes);
      expect(() => memoryBreakdown(g, { frozen: [held], trainable: [] })).toThrow(/used after dispose/);
    } finally {
      await t.close();
    }
  });
});
