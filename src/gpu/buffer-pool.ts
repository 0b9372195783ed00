/**
 * Reuses GPU buffers by size class. Training allocates the same shapes every step, so after the
 * first step nearly every allocation is a free-list hit and the device sees no new buffers.
 */
/** Size classes: powers of two up to 1 MiB, then steps of 1/8 of the power of two (≤ 12.5% waste). */
export function sizeClass(bytes: number): number {
  const n = Math.max(256, Math.ceil(bytes / 4) * 4);
  if (n <= 1 << 20) return 2 ** Math.ceil(Math.log2(n));
  const step = 2 ** (Math.floor(Math.log2(n)) - 3);
  return Math.ceil(n / step) * step;
}

export class BufferPool {
  private readonly free = new Map<number, GPUBuffer[]>();
  /** Bytes in buffers handed out and not yet returned. */
  liveBytes = 0;
  /** High-water mark of liveBytes since the last resetPeak(). */
  peakBytes = 0;
  /** Bytes held by the device: live plus cached free buffers. */
  allocatedBytes = 0;

  constructor(private readonly device: GPUDevice, private readonly maxBufferSize: number) {}

  acquire(bytes: number): GPUBuffer {
    const size = sizeClass(bytes);
    if (size > this.maxBufferSize) {
      throw new Error(`buffer of ${bytes} bytes exceeds the device's maxBufferSize (${this.maxBufferSize})`);
    }
    let buffer = this.free.get(size)?.pop();
    if (!buffer) {
      buffer = this.device.createBuffer({ size, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
      this.allocatedBytes += size;
    }
    this.liveBytes += size;
    this.peakBytes = Math.max(this.peakBytes, this.liveBytes);
    return buffer;
  }

  release(buffer: GPUBuffer): void {
    this.liveBytes -= buffer.size;
    let list = this.free.get(buffer.size);
    if (!list) this.free.set(buffer.size, (list = []));
    list.push(buffer);
  }

  resetPeak(): void {
    this.peakBytes = this.liveBytes;
  }

  /** Gives cached free buffers back to the device. */
  trim(): void {
    for (const list of this.free.values()) {
      for (const buffer of list) {
        this.allocatedBytes -= buffer.size;
        buffer.destroy();
      }
    }
    this.free.clear();
  }
}
