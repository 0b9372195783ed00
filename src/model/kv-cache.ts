import type { Gpu } from '../gpu/gpu.js';
import type { Tensor } from '../gpu/tensor.js';
import type { HfModelConfig } from '../io/hf-config.js';
import { DECODE_RUN_ROWS } from '../ops/attention.js';
import { embedding } from '../ops/embedding.js';
import { view } from '../ops/layout.js';

/**
 * Keys and values of every layer for a batch of sequences, [rows, capacity, Hkv, D] per layer,
 * filled from position 0 up to `length`. All sequences advance together (prompts are left-padded);
 * sequence b lives in cache row `rowOf[b]`. gatherRows changes which sequences there are: when
 * sequences only leave (finished ones) or reorder, the rest stay where they are and only the index
 * changes; when a row is taken twice (a prompt prefilled once, continued by several sequences) the
 * rows are copied into new buffers.
 */
export class KVCache {
  keys: Tensor[];
  values: Tensor[];
  length = 0;
  /** Rows the buffers were made for: at most this many rows are ever in use. */
  private readonly allocatedRows: number;
  /** The cache row of each sequence. */
  private rowOf: number[];
  /** rowOf on the GPU (u32 [batch]), for the cache's writes and attention's reads. */
  private rowTensor: Tensor;
  /**
   * u32 [batch]: the cache row each sequence reads (attention's kvRows), or undefined while
   * sequence b is row b of buffers of exactly `batch` rows (then attention reads k and v as they are).
   * Worked out by gatherRows, read by every layer of every forward.
   */
  private rowsToRead: Tensor | undefined = undefined;
  /**
   * Sequences with the same source hold the same keys and values before `sharedLength`: those a
   * gather that repeated rows copied from one row (a prompt prefilled once for several samples).
   */
  private sourceOf: number[];
  private sharedLength = 0;
  /** attention's sharedKeys runs for the current sequences, made when first asked for. */
  private runs: { tensor: Tensor; several: number } | undefined = undefined;

  /** `allocatedRows` (default `batch`): the most rows a later gatherRows may ask for. */
  constructor(
    gpu: Gpu,
    config: HfModelConfig,
    public batch: number,
    readonly capacity: number,
    allocatedRows = batch,
  ) {
    if (!(Number.isInteger(allocatedRows) && allocatedRows >= batch)) throw new Error(`KVCache: ${allocatedRows} allocated rows cannot hold a batch of ${batch}`);
    this.allocatedRows = allocatedRows;
    const shape = [allocatedRows, capacity, config.num_key_value_heads, config.head_dim];
    const buffer = () => {
      const full = gpu.zeros(shape);
      const used = gpu.keep(full.leadingRows(batch));
      full.dispose();
      return used;
    };
    this.keys = Array.from({ length: config.num_hidden_layers }, buffer);
    this.values = Array.from({ length: config.num_hidden_layers }, buffer);
    this.rowOf = Array.from({ length: batch }, (_, b) => b);
    this.sourceOf = [...this.rowOf];
    this.rowTensor = gpu.keep(gpu.tensor(this.rowOf, [batch], 'u32'));
  }

  get kvRows(): Tensor | undefined {
    return this.rowsToRead;
  }

  /** The cache row of each sequence, u32 [batch], also while it is the identity (the decode kernel reads it always). */
  get rows(): Tensor {
    return this.rowTensor;
  }

  /**
   * attention's sharedKeys: the sequences in runs of consecutive ones with the same source (at most
   * DECODE_RUN_ROWS a run), which share their keys before `length`; a sequence with none runs alone.
   * The runs of several sequences come first.
   */
  get sharedKeys(): { runs: Tensor; severalRuns: number; length: number } {
    if (!this.runs) {
      const runs: [number, number][] = [];
      this.sourceOf.forEach((source, b) => {
        const last = runs.at(-1);
        if (last && this.sourceOf[b - 1] === source && last[1] < DECODE_RUN_ROWS) last[1]++;
        else runs.push([b, 1]);
      });
      const several = runs.filter(([, n]) => n > 1);
      const ordered = [...several, ...runs.filter(([, n]) => n === 1)];
      const gpu = this.keys[0].gpu;
      this.runs = { tensor: gpu.keep(gpu.tensor(ordered.flat(), [ordered.length, 2], 'u32')), several: several.length };
    }
    return { runs: this.runs.tensor, severalRuns: this.runs.several, length: this.sharedLength };
  }

  /** Writes this step's k, v ([B, T, Hkv, D]) into positions length … length+T−1 of a layer. */
  write(layer: number, k: Tensor, v: Tensor): void {
    const [batch, steps, heads, dim] = k.shape;
    if (batch !== this.batch || this.length + steps > this.capacity) {
      throw new Error(`KVCache.write: ${batch}×${steps} new positions at ${this.length} do not fit a cache of ${this.batch}×${this.capacity}`);
    }
    const gpu = k.gpu;
    // In vec4s: a head dim the attention kernels take is a multiple of 4 (supportsHeadDim).
    const row = (heads * dim) / 4;
    gpu.run(gpu.kernel('kv_cache_write'), [k, v, this.keys[layer], this.values[layer], this.rowTensor], gpu.grid1d(batch * steps * row, 256), {
      u32: [batch, steps, row, this.capacity, this.length],
    });
  }

  /**
   * Sequence i becomes old sequence rows[i] (rows may repeat or leave some out; at most the
   * allocated rows). Without repeats nothing moves: the index changes. With them every layer's keys
   * and values are gathered into new buffers as large as the first ones (the rows past the used
   * ones are zero and unused), so repeated calls reuse the buffers the previous call freed instead of
   * leaving a pooled buffer of every intermediate size behind.
   */
  gatherRows(rows: readonly number[]): void {
    if (rows.some((r) => !Number.isInteger(r) || r < 0 || r >= this.batch)) throw new Error(`KVCache.gatherRows: rows [${rows.join(', ')}] outside 0..${this.batch - 1}`);
    if (rows.length > this.allocatedRows) throw new Error(`KVCache.gatherRows: ${rows.length} rows exceed the ${this.allocatedRows} the cache was made for`);
    const gpu = this.keys[0].gpu;
    const source = rows.map((r) => this.rowOf[r]);
    this.runs?.tensor.dispose();
    this.runs = undefined;
    if (new Set(rows).size === rows.length) {
      this.rowOf = source;
      this.sourceOf = rows.map((r) => this.sourceOf[r]);
    } else {
      // Copies of one row share everything so far; what other rows shared before is not kept.
      this.sourceOf = [...rows];
      this.sharedLength = this.length;
      const cacheRows = this.keys[0].shape[0];
      // Indices past the table read as zero rows (see embedding): they pad the result to the first size.
      const index = gpu.tensor([...source, ...Array<number>(this.allocatedRows - rows.length).fill(cacheRows)], [this.allocatedRows], 'u32');
      const gather = (t: Tensor): Tensor => {
        const [, capacity, heads, dim] = t.shape;
        const table = view(t, [cacheRows, capacity * heads * dim]);
        const padded = embedding(index, table);
        const full = view(padded, [this.allocatedRows, capacity, heads, dim]);
        const out = gpu.keep(full.leadingRows(rows.length));
        for (const x of [t, table, padded, full]) x.dispose();
        return out;
      };
      this.keys = this.keys.map(gather);
      this.values = this.values.map(gather);
      index.dispose();
      this.rowOf = rows.map((_, b) => b);
    }
    this.rowTensor.dispose();
    this.rowTensor = gpu.keep(gpu.tensor(this.rowOf, [rows.length], 'u32'));
    this.batch = rows.length;
    const inPlace = this.keys[0].shape[0] === this.batch && this.rowOf.every((row, b) => row === b);
    this.rowsToRead = inPlace ? undefined : this.rowTensor;
  }

  dispose(): void {
    for (const t of [...this.keys, ...this.values, this.rowTensor]) t.dispose();
    this.runs?.tensor.dispose();
  }
}
