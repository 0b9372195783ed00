/**
 * Reuses GPU buffers by size class. Training allocates the same shapes every step, so after the
 * first step nearly every allocation is a free-list hit and the device sees no new buffers.
 * Generation and training use different shapes, so free buffers cached by one phase are dead
 * weight in the other: the cache can be capped (`maxCachedBytes`; least recently used size classes
 * go first) and trim() empties it.
 */
/** Size classes: powers of two up to 1 MiB, then steps of 1/8 of the power of two (≤ 12.5% waste). */
export function sizeClass(bytes: number): number {
  const n = Math.max(256, Math.ceil(bytes / 4) * 4);
  if (n <= 1 << 20) return 2 ** Math.ceil(Math.log2(n));
  const step = 2 ** (Math.floor(Math.log2(n)) - 3);
  return Math.ceil(n / step) * step;
}

/**
 * Cap on free bytes kept for reuse. With Dawn's resource sub-allocation the memory of destroyed
 * buffers stays with the process, so evicting and re-creating buffers raised a GRPO step's peak RSS
 * on lavapipe (4.15 → 6.23 GiB, bench/README "Memory"): no cap there. Without it, destroyed
 * buffers' memory goes back, and the cap bounds what one phase's shapes hold in the next.
 */
export function cacheCap(suballocation: boolean): number {
  return suballocation ? Number.POSITIVE_INFINITY : CACHE_CAP_WITHOUT_SUBALLOCATION;
}

export const CACHE_CAP_WITHOUT_SUBALLOCATION = 512 * 2 ** 20;

/** Above 1 MiB classes are 1/8 of a power of two apart: a request may take a buffer up to two classes larger. */
export const DEFAULT_REUSE_SLACK = 0.25;

export class BufferPool {
  /** Free buffers per size class; Map order is use order, least recently used class first. */
  private readonly free = new Map<number, GPUBuffer[]>();
  private readonly live = new Set<GPUBuffer>();
  /** Bytes in buffers handed out and not yet returned. */
  liveBytes = 0;
  /** High-water mark of liveBytes since the last resetPeak(). */
  peakBytes = 0;
  /** Bytes held by the device: live plus cached free buffers. */
  allocatedBytes = 0;
  /** High-water mark of allocatedBytes since the last resetPeak(). */
  peakAllocatedBytes = 0;
  /** Bytes in free buffers kept for reuse. */
  cachedBytes = 0;
  /** How much larger (a fraction) a cached buffer may be than a request it serves when its own class has none. */
  reuseSlack = DEFAULT_REUSE_SLACK;

  constructor(
    private readonly device: GPUDevice,
    private readonly maxBufferSize: number,
    /** Cap on cachedBytes; releasing past it destroys free buffers of the least recently used size classes. */
    public maxCachedBytes = Number.POSITIVE_INFINITY,
    /**
     * Called before buffers are destroyed: a released buffer may still be bound by recorded,
     * unsubmitted commands, and WebGPU refuses to submit work that uses a destroyed buffer.
     */
    private readonly beforeDestroy: () => void = () => {},
  ) {
    if (!(maxCachedBytes >= 0)) throw new Error(`buffer pool: maxCachedBytes must be ≥ 0, got ${maxCachedBytes}`);
  }

  acquire(bytes: number): GPUBuffer {
    const size = sizeClass(bytes);
    if (size > this.maxBufferSize) {
      throw new Error(`buffer of ${bytes} bytes exceeds the device's maxBufferSize (${this.maxBufferSize})`);
    }
    let buffer = this.takeCached(size) ?? this.takeCachedLarger(size);
    if (!buffer) {
      // UNIFORM too: the broadcast matmul reads x through uniform bindings (ops/matmul-variants.ts).
      buffer = this.device.createBuffer({ size, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
      this.allocatedBytes += size;
      this.peakAllocatedBytes = Math.max(this.peakAllocatedBytes, this.allocatedBytes);
    }
    this.live.add(buffer);
    this.liveBytes += buffer.size;
    this.peakBytes = Math.max(this.peakBytes, this.liveBytes);
    return buffer;
  }

  private takeCached(size: number): GPUBuffer | undefined {
    const list = this.free.get(size);
    const buffer = list?.pop();
    if (buffer) {
      this.cachedBytes -= size;
      this.touch(size, list!);
    }
    return buffer;
  }

  /**
   * A free buffer of the smallest cached class at most reuseSlack larger: tensors bind their own
   * byte length, never the buffer's size, so a larger buffer serves as well and one less is created.
   */
  private takeCachedLarger(size: number): GPUBuffer | undefined {
    let best = 0;
    for (const [cached, list] of this.free) if (cached > size && cached <= size * (1 + this.reuseSlack) && list.length && (!best || cached < best)) best = cached;
    return best ? this.takeCached(best) : undefined;
  }

  release(buffer: GPUBuffer): void {
    if (!this.live.delete(buffer)) throw new Error(`buffer pool: a buffer of ${buffer.size} bytes was released twice or never acquired`);
    this.liveBytes -= buffer.size;
    const list = this.free.get(buffer.size) ?? [];
    list.push(buffer);
    this.cachedBytes += buffer.size;
    this.touch(buffer.size, list);
    this.trim(this.maxCachedBytes);
  }

  /** Whether the buffer is handed out by this pool and not yet returned. */
  isLive(buffer: GPUBuffer): boolean {
    return this.live.has(buffer);
  }

  liveBuffers(): ReadonlySet<GPUBuffer> {
    return this.live;
  }

  /** Size classes with cached free buffers, least recently used first (for tests and reports). */
  cachedClasses(): number[] {
    return [...this.free.entries()].filter(([, list]) => list.length > 0).map(([size]) => size);
  }

  resetPeak(): void {
    this.peakBytes = this.liveBytes;
    this.peakAllocatedBytes = this.allocatedBytes;
  }

  /** Gives cached free buffers back to the device, least recently used size classes first, until at most keepBytes stay cached. */
  trim(keepBytes = 0): void {
    if (this.cachedBytes <= keepBytes) return;
    this.beforeDestroy();
    for (const [size, list] of this.free) {
      while (this.cachedBytes > keepBytes && list.length) {
        list.pop()!.destroy();
        this.cachedBytes -= size;
        this.allocatedBytes -= size;
      }
      if (!list.length) this.free.delete(size);
      if (this.cachedBytes <= keepBytes) return;
    }
  }

  /** Moves a size class to the most recently used end. */
  private touch(size: number, list: GPUBuffer[]): void {
    this.free.delete(size);
    this.free.set(size, list);
  }
}
