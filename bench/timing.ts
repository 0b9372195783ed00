import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { timeDispatches } from '../src/gpu/autotune.js';
import type { Gpu } from '../src/gpu/gpu.js';

export interface Timing {
  /** Fastest sample, ms per run: other processes sharing a CPU adapter only ever slow runs down. */
  best: number;
  median: number;
  /**
   * CPU adapters only (Linux): ms of CPU time the driver's worker threads spent per run, fewest
   * over the samples. Unlike the wall time it hardly depends on what else the machine runs.
   */
  workerCpu: number | null;
}

const TICK_MS = 10;

/** CPU time (user + system) of this process's threads that `include` accepts, by thread id, or null off Linux. */
function threadsCpuMs(include: (threadId: number) => boolean): number | null {
  if (!existsSync('/proc/self/task')) return null;
  let ticks = 0;
  for (const task of readdirSync('/proc/self/task')) {
    if (!include(Number(task))) continue;
    try {
      const fields = readFileSync(`/proc/self/task/${task}/stat`, 'utf8').split(') ')[1].split(' ');
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      // The thread ended between listing and reading.
    }
  }
  return ticks * TICK_MS;
}

/** CPU time of every thread of this process except the main one (lavapipe's workers), or null. */
export function workerCpuMs(): number | null {
  return threadsCpuMs((id) => id !== process.pid);
}

/** CPU time of the main (JavaScript) thread, or null. */
export function mainThreadCpuMs(): number | null {
  return threadsCpuMs((id) => id === process.pid);
}

/**
 * Times `record` (dispatches only): one untimed run compiles the pipelines, then `samples`
 * samples each average `reps` runs recorded into one timed pass (see timeDispatches).
 */
export async function measure(gpu: Gpu, record: () => void, { samples = 3, reps = 1 } = {}): Promise<Timing> {
  await timeDispatches(gpu, record, 1);
  const times: number[] = [];
  let workerCpu: number | null = null;
  for (let s = 0; s < samples; s++) {
    const before = gpu.isCpuAdapter ? workerCpuMs() : null;
    times.push(await timeDispatches(gpu, record, reps, false));
    const after = before === null ? null : workerCpuMs();
    if (before !== null && after !== null) workerCpu = Math.min(workerCpu ?? Infinity, (after - before) / reps);
  }
  times.sort((x, y) => x - y);
  return { best: times[0], median: times[times.length >> 1], workerCpu };
}

export function timingMethod(gpu: Gpu): string {
  const clock = gpu.hasTimestamps ? 'GPU timestamp queries (Dawn timestamp_quantization on; reps per pass amortise it)' : 'wall clock around gpu.sync()';
  return gpu.isCpuAdapter ? `${clock}; "idle" = work / (worker-thread CPU time / ${availableParallelism()} cores)` : clock;
}

/** One result line: best and median ms, the rate at the best time, and for CPU adapters the idle-machine estimate. */
export function row(label: string, t: Timing, work: number, unit: 'GFLOP/s' | 'GB/s'): string {
  const rate = (ms: number) => (work / ms / 1e6).toFixed(2).padStart(7);
  let line = `${label.padEnd(52)} ${t.best.toFixed(2).padStart(9)} ms (median ${t.median.toFixed(2).padStart(9)})  ${rate(t.best)} ${unit}`;
  if (t.workerCpu) line += `  idle ${rate(t.workerCpu / availableParallelism())} ${unit}`;
  return line;
}
