import type { Gpu } from '../gpu/gpu.js';
import { formatShape, type Tensor } from '../gpu/tensor.js';
import { embedding } from '../ops/embedding.js';
import type { KnownOutput, Linear, LinearDelta } from './linear.js';

/** Bytes of outputs a store holds for its queued copies before it records them: a prefill's, a layer at a time. */
const MAX_PENDING_BYTES = 64 * 2 ** 20;

/**
 * The outputs of a model's linears (the decoder's projections, with their LoRA terms) from the
 * forwards that sampled a rollout, kept for the training forward over the same tokens with the same
 * weights: there the base products are read instead of computed, and only their backward runs.
 * With each output it keeps what the linear's delta term computed on the way (LoRA's h = x·Aᵀ, which
 * the backward's dB needs), for the linears that had a delta term when the store was made.
 * Every forward appends its rows (reserve); a token's row is its slot. Reads name slots, and read a
 * zero row for any slot ≥ capacity (padding, or a token no sampling forward ran).
 *
 * With `logits`, it also keeps the LM head's logits the sampling computed at each token it sampled
 * after (writeLogits, by slot), for the training's log-probs of the same tokens (readLogits): the
 * head's vocabulary-wide product then runs once per completion token instead of twice. They take
 * blocks of rows, each one storage binding, allocated as they fill.
 *
 * The outputs are only valid for the weights that wrote them: each linear's delta term (its LoRA
 * module, or none) is remembered at its first write and a read under another one is refused, and
 * the owner calls invalidate() once the weights change (after an optimizer step).
 */
export class ProjectionStore {
  private readonly buffers = new Map<Linear, Tensor>();
  /** The delta terms' intermediates, [capacity, innerWidth] per linear that had a delta term at construction. */
  private readonly innerBuffers = new Map<Linear, Tensor>();
  private readonly deltas = new Map<Linear, LinearDelta | null>();
  private used = 0;
  private valid = true;
  private pending: { source: Tensor; target: Tensor; offset: number }[] = [];
  private pendingBytes = 0;
  private readonly logitBlocks: Tensor[] = [];
  /** The row of the kept logits that holds each slot's. */
  private readonly logitRowOf = new Map<number, number>();
  private readonly logitsPerBlock: number;

  constructor(
    readonly gpu: Gpu,
    linears: readonly Linear[],
    /** Rows each linear's buffer holds: the most rows the sampling forwards may append. */
    readonly capacity: number,
    /**
     * Keep the sampling's logits too: `rows` of `vocab` values at most (logitRows), in blocks of
     * `blockRows` (default and most: logitBlockRows).
     */
    readonly logits?: { vocab: number; rows: number; blockRows?: number },
  ) {
    if (!(Number.isInteger(capacity) && capacity > 0)) throw new Error(`ProjectionStore: capacity ${capacity} is not a positive whole number of rows`);
    this.logitsPerBlock = logits ? Math.min(logits.blockRows ?? Infinity, ProjectionStore.logitBlockRows(gpu, logits.vocab)) : 0;
    if (logits && !(Number.isInteger(logits.rows) && logits.rows > 0 && Number.isInteger(this.logitsPerBlock) && this.logitsPerBlock > 0)) {
      throw new Error(`ProjectionStore: ${logits.rows} rows of ${logits.vocab} logits in blocks of ${this.logitsPerBlock} cannot be kept (a row must fit one storage binding)`);
    }
    const tooWide = linears.find((l) => !ProjectionStore.fits(gpu, l.outFeatures, capacity));
    if (tooWide) throw new Error(`ProjectionStore: ${capacity} rows of ${tooWide.name}'s ${tooWide.outFeatures} outputs exceed one storage binding`);
    for (const linear of linears) {
      this.buffers.set(linear, gpu.keep(gpu.empty([capacity, linear.outFeatures])));
      const innerWidth = linear.delta?.innerWidth ?? 0;
      if (innerWidth > 0) this.innerBuffers.set(linear, gpu.keep(gpu.empty([capacity, innerWidth])));
    }
  }

  /** Whether `capacity` rows of `outFeatures` f32 values fit one storage binding (what a read binds). */
  static fits(gpu: Gpu, outFeatures: number, capacity: number): boolean {
    const { maxStorageBufferBindingSize, maxBufferSize } = gpu.device.limits;
    return outFeatures * capacity * 4 <= Math.min(maxStorageBufferBindingSize, maxBufferSize);
  }

  /** Rows of `vocab` logits a block holds: as many as one storage binding takes. */
  static logitBlockRows(gpu: Gpu, vocab: number): number {
    const { maxStorageBufferBindingSize, maxBufferSize } = gpu.device.limits;
    return Math.floor(Math.min(maxStorageBufferBindingSize, maxBufferSize) / (vocab * 4));
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
    this.logitRowOf.clear();
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
   * Copies a linear's output y [rows, out], and its delta term's intermediate [rows, innerWidth]
   * where this store keeps that linear's, into slots first … first + rows − 1: queued (both are held
   * until then) and recorded with the other queued copies by flush(). One buffer copy interrupts the
   * compute pass the dispatches are recorded in; a burst of them interrupts it once (on lavapipe a
   * copy in a burst costs ~16 µs, a copy dispatch ~150 µs).
   */
  write(linear: Linear, y: Tensor, first: number, inner: Tensor | null): void {
    const buffer = this.buffer(linear);
    const [rows, width] = y.shape;
    if (y.shape.length !== 2 || width !== linear.outFeatures || first + rows > this.used) {
      throw new Error(`ProjectionStore.write: ${linear.name} output ${formatShape(y.shape)} at slot ${first} does not fit the ${this.used} reserved rows of width ${linear.outFeatures}`);
    }
    const delta = this.deltas.get(linear);
    if (delta === undefined) this.deltas.set(linear, linear.delta);
    else if (delta !== linear.delta) throw new Error(`ProjectionStore.write: ${linear.name} changed its delta term between two forwards of one rollout`);
    this.queue(y, buffer, first);
    const innerBuffer = this.innerBuffers.get(linear);
    if (innerBuffer && linear.delta) {
      if (!inner || inner.shape.length !== 2 || inner.shape[0] !== rows || inner.shape[1] !== innerBuffer.shape[1]) {
        throw new Error(`ProjectionStore.write: ${linear.name}'s delta term gave ${inner ? formatShape(inner.shape) : 'no intermediate'}, not [${rows}, ${innerBuffer.shape[1]}]`);
      }
      this.queue(inner, innerBuffer, first);
    }
    if (this.pendingBytes > MAX_PENDING_BYTES) this.flush();
  }

  /** Queues the copy of `source` [rows, width] into `target` from slot `first` on (a view of it is held until flush). */
  private queue(source: Tensor, target: Tensor, first: number): void {
    const [rows, width] = source.shape;
    this.pending.push({ source: this.gpu.keep(source.leadingRows(rows)), target, offset: first * width * 4 });
    this.pendingBytes += source.byteLength;
  }

  /**
   * Records the queued copies. A forward that writes calls it at the end of each decoder layer,
   * before the layer's temporaries go back to the buffer pool, so the outputs it holds return with them.
   */
  flush(): void {
    for (const { source, target, offset } of this.pending) {
      this.gpu.commands.copy(source.buffer, 0, target.buffer, offset, source.byteLength);
      source.dispose();
    }
    this.pending = [];
    this.pendingBytes = 0;
  }

  /**
   * Keeps logits [rows, vocab] of a forward's newest positions: row i holds the logits at slot
   * slots[i]. A slot already kept (a prompt several rows continue) is skipped; consecutive new
   * slots are copied as one piece.
   */
  writeLogits(logits: Tensor, slots: readonly number[]): void {
    if (!this.logits) throw new Error('ProjectionStore.writeLogits: this store keeps no logits');
    const { vocab, rows: capacity } = this.logits;
    if (logits.shape.length !== 2 || logits.shape[0] !== slots.length || logits.shape[1] !== vocab) {
      throw new Error(`ProjectionStore.writeLogits: logits ${formatShape(logits.shape)} are not [${slots.length}, ${vocab}]`);
    }
    const fresh = new Set(slots.filter((slot) => !this.logitRowOf.has(slot)));
    if (this.logitRowOf.size + fresh.size > capacity) throw new Error(`ProjectionStore.writeLogits: ${this.logitRowOf.size + fresh.size} rows of logits exceed the ${capacity} it was made for`);
    const perBlock = this.logitsPerBlock;
    const rowBytes = vocab * 4;
    // Runs of rows that are consecutive in both the logits and one block, a copy each.
    const runs: { from: number; block: number; inBlock: number; rows: number }[] = [];
    slots.forEach((slot, i) => {
      if (!fresh.delete(slot)) return;
      const row = this.logitRowOf.size;
      this.logitRowOf.set(slot, row);
      const [block, inBlock] = [Math.floor(row / perBlock), row % perBlock];
      const last = runs.at(-1);
      if (last && last.block === block && last.from + last.rows === i) last.rows++;
      else runs.push({ from: i, block, inBlock, rows: 1 });
    });
    for (const { from, block, inBlock, rows } of runs) {
      this.logitBlocks[block] ??= this.gpu.keep(this.gpu.empty([Math.min(perBlock, capacity - block * perBlock), vocab]));
      this.gpu.commands.copy(logits.buffer, from * rowBytes, this.logitBlocks[block].buffer, inBlock * rowBytes, rows * rowBytes);
    }
  }

  /** The kept logits at `slots` as [N, vocab]; a slot whose logits were not kept is refused. */
  readLogits(slots: readonly number[]): Tensor {
    if (!this.logits) throw new Error('ProjectionStore.readLogits: this store keeps no logits');
    if (!this.valid) throw new Error('ProjectionStore.readLogits: the weights changed since these logits were written');
    const rows = slots.map((slot) => {
      const row = this.logitRowOf.get(slot);
      if (row === undefined) throw new Error(`ProjectionStore.readLogits: no logits were kept at slot ${slot}`);
      return row;
    });
    const ids = this.gpu.tensor(rows, [rows.length], 'u32');
    const out = embedding(ids, this.logitBlocks);
    ids.dispose();
    return out;
  }

  /**
   * The rows of a linear's output at `slots` (u32 [N]) as [N, out], and of its delta term's
   * intermediate where this store keeps it; a zero row where a slot is ≥ capacity.
   */
  read(linear: Linear, slots: Tensor): KnownOutput {
    if (!this.valid) throw new Error(`ProjectionStore.read: ${linear.name}: the weights changed since these outputs were written`);
    const delta = this.deltas.get(linear);
    if (delta === undefined) throw new Error(`ProjectionStore.read: ${linear.name} has no rows written`);
    if (delta !== linear.delta) throw new Error(`ProjectionStore.read: ${linear.name} now ${linear.delta ? 'has a different' : 'has no'} delta term (adapters ${linear.delta ? 'swapped' : 'disabled'}), not the one its outputs were written with`);
    const innerBuffer = linear.delta && this.innerBuffers.get(linear);
    return { output: embedding(slots, this.buffer(linear)), ...(innerBuffer && { inner: embedding(slots, innerBuffer) }) };
  }

  dispose(): void {
    this.flush();
    for (const t of [...this.buffers.values(), ...this.innerBuffers.values(), ...this.logitBlocks]) t.dispose();
    this.buffers.clear();
    this.innerBuffers.clear();
    this.logitBlocks.length = 0;
  }

  private buffer(linear: Linear): Tensor {
    const buffer = this.buffers.get(linear);
    if (!buffer) throw new Error(`ProjectionStore: ${linear.name} is not one of the linears this store keeps`);
    return buffer;
  }
}
