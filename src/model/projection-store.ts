import type { Gpu } from '../gpu/gpu.js';
import { formatShape, type Tensor } from '../gpu/tensor.js';
import { embedding } from '../ops/embedding.js';
import type { Linear, LinearDelta } from './linear.js';

/** Bytes of outputs a store holds for its queued copies before it records them: a prefill's, a layer at a time. */
const MAX_PENDING_BYTES = 64 * 2 ** 20;

/**
 * The outputs of a model's linears (the decoder's projections, with their LoRA terms) from the
 * forwards that sampled a rollout, kept for the training forward over the same tokens with the same
 * weights: there the base products are read instead of computed, and only their backward runs.
 * Every forward appends its rows (reserve); a token's row is its slot. Reads name slots, and read a
 * zero row for any slot ≥ capacity (padding, or a token no sampling forward ran).
 *
 * The outputs are only valid for the weights that wrote them: each linear's delta term (its LoRA
 * module, or none) is remembered at its first write and a read under another one is refused, and
 * the owner calls invalidate() once the weights change (after an optimizer step).
 */
export class ProjectionStore {
  private readonly buffers = new Map<Linear, Tensor>();
  private readonly deltas = new Map<Linear, LinearDelta | null>();
  private used = 0;
  private valid = true;
  private pending: { source: Tensor; target: Tensor; offset: number }[] = [];
  private pendingBytes = 0;

  constructor(
    readonly gpu: Gpu,
    linears: readonly Linear[],
    /** Rows each linear's buffer holds: the most rows the sampling forwards may append. */
    readonly capacity: number,
  ) {
    if (!(Number.isInteger(capacity) && capacity > 0)) throw new Error(`ProjectionStore: capacity ${capacity} is not a positive whole number of rows`);
    const tooWide = linears.find((l) => !ProjectionStore.fits(gpu, l.outFeatures, capacity));
    if (tooWide) throw new Error(`ProjectionStore: ${capacity} rows of ${tooWide.name}'s ${tooWide.outFeatures} outputs exceed one storage binding`);
    for (const linear of linears) this.buffers.set(linear, gpu.keep(gpu.empty([capacity, linear.outFeatures])));
  }

  /** Whether `capacity` rows of `outFeatures` f32 values fit one storage binding (what a read binds). */
  static fits(gpu: Gpu, outFeatures: number, capacity: number): boolean {
    const { maxStorageBufferBindingSize, maxBufferSize } = gpu.device.limits;
    return outFeatures * capacity * 4 <= Math.min(maxStorageBufferBindingSize, maxBufferSize);
  }

  /** Rows appended so far. */
  get rows(): number {
    return this.used;
  }

  /** Forgets every row (the next rollout starts at slot 0) and accepts reads again. */
  reset(): void {
    this.used = 0;
    this.valid = true;
    this.deltas.clear();
  }

  /** The weights changed: the rows describe a model that is gone, so reads are refused until reset(). */
  invalidate(): void {
    this.valid = false;
  }

  /** The first slot of a forward of `rows` rows (B·T, padding included). */
  reserve(rows: number): number {
    if (this.used + rows > this.capacity) throw new Error(`ProjectionStore: a forward of ${rows} rows after ${this.used} exceeds the ${this.capacity} rows it was made for`);
    const first = this.used;
    this.used += rows;
    return first;
  }

  /**
   * Copies a linear's output y [rows, out] into slots first … first + rows − 1: queued (y is held
   * until then) and recorded with the other queued copies by flush(). One buffer copy interrupts the
   * compute pass the dispatches are recorded in; a burst of them interrupts it once (on lavapipe a
   * copy in a burst costs ~16 µs, a copy dispatch ~150 µs).
   */
  write(linear: Linear, y: Tensor, first: number): void {
    const buffer = this.buffer(linear);
    const [rows, width] = y.shape;
    if (y.shape.length !== 2 || width !== linear.outFeatures || first + rows > this.used) {
      throw new Error(`ProjectionStore.write: ${linear.name} output ${formatShape(y.shape)} at slot ${first} does not fit the ${this.used} reserved rows of width ${linear.outFeatures}`);
    }
    const delta = this.deltas.get(linear);
    if (delta === undefined) this.deltas.set(linear, linear.delta);
    else if (delta !== linear.delta) throw new Error(`ProjectionStore.write: ${linear.name} changed its delta term between two forwards of one rollout`);
    this.pending.push({ source: this.gpu.keep(y.leadingRows(rows)), target: buffer, offset: first * width * 4 });
    this.pendingBytes += y.byteLength;
    if (this.pendingBytes > MAX_PENDING_BYTES) this.flush();
  }

  /** Records the queued copies (a forward that writes ends with this). */
  flush(): void {
    for (const { source, target, offset } of this.pending) {
      this.gpu.commands.copy(source.buffer, 0, target.buffer, offset, source.byteLength);
      source.dispose();
    }
    this.pending = [];
    this.pendingBytes = 0;
  }

  /** The rows of a linear's output at `slots` (u32 [N]) as [N, out]; a zero row where a slot is ≥ capacity. */
  read(linear: Linear, slots: Tensor): Tensor {
    if (!this.valid) throw new Error(`ProjectionStore.read: ${linear.name}: the weights changed since these outputs were written`);
    const delta = this.deltas.get(linear);
    if (delta === undefined) throw new Error(`ProjectionStore.read: ${linear.name} has no rows written`);
    if (delta !== linear.delta) throw new Error(`ProjectionStore.read: ${linear.name} now ${linear.delta ? 'has a different' : 'has no'} delta term (adapters ${linear.delta ? 'swapped' : 'disabled'}), not the one its outputs were written with`);
    return embedding(slots, this.buffer(linear));
  }

  dispose(): void {
    this.flush();
    for (const t of this.buffers.values()) t.dispose();
    this.buffers.clear();
  }

  private buffer(linear: Linear): Tensor {
    const buffer = this.buffers.get(linear);
    if (!buffer) throw new Error(`ProjectionStore: ${linear.name} is not one of the linears this store keeps`);
    return buffer;
  }
}
