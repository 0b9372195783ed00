import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Gpu } from '../src/gpu/gpu.js';
import { add, scale } from '../src/ops/binary.js';
import { sumAll } from '../src/ops/reduce.js';
import { AdamW } from '../src/optim/adamw.js';
import { trainingStep } from '../src/train/step.js';
import { useGpu } from './helpers/gpu.js';

const gpu = useGpu();

/** Descriptor pools stay mapped once grown, so each measurement gets a device of its own. */
async function onFreshDevice<T>(measure: (g: Gpu) => Promise<T>): Promise<T> {
  const g = await Gpu.create();
  try {
    return await measure(g);
  } finally {
    g.destroy();
  }
}

/** Mappings of lavapipe's device-memory file: one per live descriptor set (and per heap block). */
function deviceMemoryMappings(): number {
  return readFileSync('/proc/self/maps', 'utf8').split('\n').filter((line) => line.includes('memfd:')).length;
}

const lavapipeOnLinux = () => process.platform === 'linux' && /llvmpipe|lavapipe/i.test(gpu().adapterName);

// A step of many micro-batches, each a chain of small ops: every dispatch creates a bind group.
// Recorded without a wait, all of them stay alive until the step's end; the trainer waits and
// collects between micro-batches once collectEvery dispatches were recorded, and Dawn reuses the
// collected sets from then on: at the peak, one interval and a micro-batch are live, plus the pools'
// first growth. Sets that came back an interval late (the finalizers run after the device's poll)
// peaked above 3 intervals.
describe('bind groups of a training step', () => {
  const microBatches = 40;
  const opsPerMicroBatch = 150;

  async function stepMappingGrowth(g: Gpu, collectEvery: number) {
    g.collectEvery = collectEvery;
    const p = g.keep(g.tensor([1, 2, 3, 4], [4]));
    p.requiresGrad = true;
    const optimizer = new AdamW([p], { lr: 0.01 });
    await g.sync();
    const before = deviceMemoryMappings();
    const dispatchesBefore = g.commands.dispatchCount;
    let most = before;
    await trainingStep(g, {
      optimizer,
      microBatches: Array.from({ length: microBatches }, (_, i) => i),
      loss: (m) => {
        most = Math.max(most, deviceMemoryMappings());
        let x = scale(p, 1 + m / 1000);
        for (let i = 1; i < opsPerMicroBatch; i++) x = add(scale(x, 0.5), p);
        return { loss: sumAll(x) };
      },
      maxGradNorm: 1,
      schedule: { kind: 'constant', lr: 0.01 },
      step: 0,
    });
    most = Math.max(most, deviceMemoryMappings());
    const dispatches = g.commands.dispatchCount - dispatchesBefore;
    optimizer.dispose();
    p.dispose();
    return { growth: most - before, dispatches };
  }

  it('keeps lavapipe’s mappings within a few collection intervals, not one per dispatch of the step', async (ctx) => {
    if (!lavapipeOnLinux()) ctx.skip(`counts /proc/self/maps lines of lavapipe's memfd; adapter here: ${gpu().adapterName} on ${process.platform}`);
    const collectEvery = 1024;
    const bounded = await onFreshDevice((g) => stepMappingGrowth(g, collectEvery));
    // The measurement must see the problem it guards against: without collections the step's dispatches stay mapped.
    const unbounded = await onFreshDevice((g) => stepMappingGrowth(g, Number.POSITIVE_INFINITY));
    expect(bounded.dispatches).toBeGreaterThan(10 * collectEvery);
    expect(unbounded.growth, `${unbounded.dispatches} dispatches`).toBeGreaterThan(0.8 * unbounded.dispatches);
    expect(bounded.growth, `${bounded.dispatches} dispatches, ${unbounded.growth} mappings without collections`).toBeLessThan(3 * collectEvery);
  });
});
