import { timeDispatches } from '../src/gpu/autotune.js';
import type { Gpu } from '../src/gpu/gpu.js';

export interface Timing {
  /** Fastest sample, ms per run: other processes sharing a CPU adapter only ever slow runs down. */
  best: number;
  median: number;
  samples: number;
}

/**
 * Times `record` (dispatches only) `samples` times, each sample averaging `reps` runs recorded
 * into one timed pass (see timeDispatches); the first, untimed run compiles the pipelines.
 */
export async function measure(gpu: Gpu, record: () => void, { samples = 3, reps = 1 } = {}): Promise<Timing> {
  const times: number[] = [];
  for (let s = 0; s < samples; s++) times.push(await timeDispatches(gpu, record, reps));
  times.sort((x, y) => x - y);
  return { best: times[0], median: times[times.length >> 1], samples };
}

export function timingMethod(gpu: Gpu): string {
  return gpu.hasTimestamps ? 'GPU timestamp queries (Dawn timestamp_quantization on; reps per pass amortise it)' : 'wall clock around gpu.sync()';
}

export function row(label: string, t: Timing, rate: number, unit: 'GFLOP/s' | 'GB/s'): string {
  return `${label.padEnd(58)} ${t.best.toFixed(2).padStart(9)} ms  (median ${t.median.toFixed(2).padStart(9)})  ${rate.toFixed(2).padStart(7)} ${unit}`;
}
