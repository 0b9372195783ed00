import type { Gpu } from '../gpu/gpu.js';
import type { Tensor } from '../gpu/tensor.js';
import type { HfModelConfig } from '../io/hf-config.js';
import { embedding } from '../ops/embedding.js';

/**
 * Keys and values of every layer for a batch of sequences, [B, capacity, Hkv, D] per layer, filled
 * from position 0 up to `length`. All rows advance together (prompts are left-padded); rows can
 * leave (keepRows), e.g. sequences that finished generating.
 */
export class KVCache {
  keys: Tensor[];
  values: Tensor[];
  length = 0;

  constructor(
    gpu: Gpu,
    config: HfModelConfig,
    public batch: number,
    readonly capacity: number,
  ) {
    const shape = [batch, capacity, config.num_key_value_heads, config.head_dim];
    this.keys = Array.from({ length: config.num_hidden_layers }, () => gpu.keep(gpu.zeros(shape)));
    this.values = Array.from({ length: config.num_hidden_layers }, () => gpu.keep(gpu.zeros(shape)));
  }

  /** Writes this step's k, v ([B, T, Hkv, D]) into positions length … length+T−1 of a layer. */
  write(layer: number, k: Tensor, v: Tensor): void {
    const [batch, steps, heads, dim] = k.shape;
    if (batch !== this.batch || this.length + steps > this.capacity) {
      throw new Error(`KVCache.write: ${batch}×${steps} new positions at ${this.length} do not fit a cache of ${this.batch}×${this.capacity}`);
    }
    const gpu = k.gpu;
    gpu.run(gpu.kernel('kv_cache_write'), [k, v, this.keys[layer], this.values[layer]], gpu.grid1d(k.size, 256), {
      u32: [batch, steps, heads * dim, this.capacity, this.length],
    });
  }

  /** Keeps only these rows, in this order: every layer's keys and values are gathered into new buffers. */
  keepRows(rows: readonly number[]): void {
    if (rows.some((r) => !Number.isInteger(r) || r < 0 || r >= this.batch)) throw new Error(`KVCache.keepRows: rows [${rows.join(', ')}] outside 0..${this.batch - 1}`);
    const gpu = this.keys[0].gpu;
    const index = gpu.tensor(rows, [rows.length], 'u32');
    const gather = (t: Tensor): Tensor => {
      const [, capacity, heads, dim] = t.shape;
      const rowsOnly = t.view([this.batch, capacity * heads * dim]);
      const kept = embedding(index, rowsOnly);
      const out = gpu.keep(kept.view([rows.length, capacity, heads, dim]));
      for (const x of [t, rowsOnly, kept]) x.dispose();
      return out;
    };
    this.keys = this.keys.map(gather);
    this.values = this.values.map(gather);
    index.dispose();
    this.batch = rows.length;
  }

  dispose(): void {
    for (const t of [...this.keys, ...this.values]) t.dispose();
  }
}
