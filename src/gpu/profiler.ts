import type { Params } from './commands.js';

/**
 * Per-kernel GPU time from timestamp queries. While a profiler is attached, every dispatch gets a
 * compute pass of its own with timestamps at its start and end (which costs a little, so it is for
 * benchmarks, not for training runs); totals are summed per shader label.
 */
export interface KernelTime {
  label: string;
  ms: number;
  count: number;
}

const CAPACITY = 2048;

export class KernelProfiler {
  readonly querySet: GPUQuerySet;
  private labels: string[] = [];
  private readonly pending: Promise<void>[] = [];
  private readonly totals = new Map<string, { ns: number; count: number }>();
  /** Names the total a dispatch counts under from its shader label and params (default: the label), e.g. a matmul by its role. */
  classify: ((label: string, params: Params | undefined) => string) | null = null;

  constructor(private readonly device: GPUDevice) {
    if (!device.features.has('timestamp-query')) throw new Error('KernelProfiler: the device has no timestamp-query feature');
    this.querySet = device.createQuerySet({ type: 'timestamp', count: 2 * CAPACITY });
  }

  get full(): boolean {
    return this.labels.length === CAPACITY;
  }

  /** Reserves the query pair of the next dispatch. */
  next(label: string, params?: Params): GPUComputePassTimestampWrites {
    const i = this.labels.push(this.classify ? this.classify(label, params) : label) - 1;
    return { querySet: this.querySet, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 };
  }

  /** Records the resolve of this batch's queries; returns what to run once the batch is submitted. */
  resolve(encoder: GPUCommandEncoder): (() => void) | null {
    if (!this.labels.length) return null;
    const labels = this.labels;
    this.labels = [];
    const bytes = labels.length * 16;
    const resolved = this.device.createBuffer({ size: bytes, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
    const readable = this.device.createBuffer({ size: bytes, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    encoder.resolveQuerySet(this.querySet, 0, 2 * labels.length, resolved, 0);
    encoder.copyBufferToBuffer(resolved, 0, readable, 0, bytes);
    return () => {
      this.pending.push(
        readable.mapAsync(GPUMapMode.READ).then(() => {
          const stamps = new BigUint64Array(readable.getMappedRange());
          labels.forEach((label, i) => {
            const ns = Number(stamps[2 * i + 1] - stamps[2 * i]);
            const total = this.totals.get(label) ?? { ns: 0, count: 0 };
            total.ns += Math.max(0, ns);
            total.count++;
            this.totals.set(label, total);
          });
          readable.destroy();
          resolved.destroy();
        }),
      );
    };
  }

  /** Waits for submitted batches and returns totals, largest first. */
  async collect(): Promise<KernelTime[]> {
    await Promise.all(this.pending.splice(0));
    return [...this.totals]
      .map(([label, t]) => ({ label, ms: t.ns / 1e6, count: t.count }))
      .sort((a, b) => b.ms - a.ms);
  }

  reset(): void {
    this.totals.clear();
  }
}
