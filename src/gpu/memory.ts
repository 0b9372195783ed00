import { existsSync, readFileSync } from 'node:fs';
import type { Gpu } from './gpu.js';
import type { Tensor } from './tensor.js';

/** Device bytes by what they hold, and the process's own memory, at one moment. */
export interface MemoryBreakdown {
  /** Weights of the base model (shared storage counted once, e.g. tied embeddings). */
  frozenBytes: number;
  /** Adapters, their gradients and the optimizer's moments. */
  trainableBytes: number;
  /** Free buffers the pool keeps for reuse. */
  poolCacheBytes: number;
  /** Every other live buffer: activations kept for backward, KV cache, temporaries. */
  liveOtherBytes: number;
  /** Host-visible staging buffers (uploads not yet submitted, read-backs in flight); outside the pool. */
  stagingBytes: number;
  /** The pool's device bytes; equals frozen + trainable + pool cache + live other. */
  allocatedBytes: number;
  /** Resident set of the whole process; on a CPU adapter device memory is part of it. */
  rssBytes: number;
  /** JS heap in use, and ArrayBuffers (typed arrays) outside it. */
  heapUsedBytes: number;
  arrayBuffersBytes: number;
}

/** The tensors whose buffers count as frozen or trainable; the rest of the pool's live buffers are "other". */
export interface MemoryGroups {
  frozen: Iterable<Tensor>;
  trainable: Iterable<Tensor>;
}

/**
 * Sorts the pool's live buffers into kinds. A tensor named in a group must be live in the pool,
 * and a buffer is counted once even when several tensors share it, so the kinds add up to the
 * pool's allocated bytes.
 */
export function memoryBreakdown(gpu: Gpu, groups: MemoryGroups): MemoryBreakdown {
  const pool = gpu.pool;
  const counted = new Set<GPUBuffer>();
  const groupBytes = (kind: string, tensors: Iterable<Tensor>): number => {
    let bytes = 0;
    for (const t of tensors) {
      const buffer = t.buffer;
      if (!pool.isLive(buffer)) throw new Error(`memory breakdown: ${kind} ${t} is not a live buffer of the pool`);
      if (counted.has(buffer)) continue;
      counted.add(buffer);
      bytes += buffer.size;
    }
    return bytes;
  };
  const frozenBytes = groupBytes('frozen tensor', groups.frozen);
  const trainableBytes = groupBytes('trainable tensor', groups.trainable);
  let liveOtherBytes = 0;
  for (const buffer of pool.liveBuffers()) if (!counted.has(buffer)) liveOtherBytes += buffer.size;
  const usage = process.memoryUsage();
  return {
    frozenBytes,
    trainableBytes,
    poolCacheBytes: pool.cachedBytes,
    liveOtherBytes,
    stagingBytes: gpu.commands.stagingBytes,
    allocatedBytes: pool.allocatedBytes,
    rssBytes: usage.rss,
    heapUsedBytes: usage.heapUsed,
    arrayBuffersBytes: usage.arrayBuffers,
  };
}

/** Peak resident set of the process since it started (what `/usr/bin/time -v` reports at exit). */
export function maxRssBytes(): number {
  return process.resourceUsage().maxRSS * 1024;
}

const PROCESS_MAPS = '/proc/self/maps';

/**
 * Memory mappings of the process (Linux; NaN elsewhere). On lavapipe every live descriptor set and,
 * without Dawn's sub-allocation, every buffer is one; past vm.max_map_count (65 530 by default)
 * the process dies with SIGSEGV.
 */
export function processMappings(): number {
  if (!existsSync(PROCESS_MAPS)) return Number.NaN;
  const maps = readFileSync(PROCESS_MAPS, 'utf8');
  let lines = 0;
  for (let i = maps.indexOf('\n'); i !== -1; i = maps.indexOf('\n', i + 1)) lines++;
  return lines;
}
