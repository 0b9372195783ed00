import type { Gpu } from '../gpu/gpu.js';
import type { Tensor } from '../gpu/tensor.js';
import type { HfModelConfig } from '../io/hf-config.js';

/**
 * Keys and values of every layer for a batch of sequences, [B, capacity, Hkv, D] per layer, filled
 * from position 0 up to `length`. All rows advance together (prompts are left-padded).
 */
export class KVCache {
  readonly keys: Tensor[];
  readonly values: Tensor[];
  length = 0;

  constructor(
    gpu: Gpu,
    config: HfModelConfig,
    readonly batch: number,
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

  dispose(): void {
    for (const t of [...this.keys, ...this.values]) t.dispose();
  }
}
