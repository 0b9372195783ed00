import { GgufFile } from './gguf.js';
import { configFromGguf, ggufArchitecture } from './gguf-config.js';
import type { HfModelConfig } from './hf-config.js';
import { ggufToHfName } from './hf-names.js';
import { unpermuteQK } from './qk-permutation.js';
import type { TensorInfo, TensorReader } from './tensor-reader.js';

/**
 * A GGUF checkpoint seen as a Hugging Face one: tensors under transformers' names, dequantized to
 * f32, with Llama's Q/K rows back in rotate-half order — interchangeable with safetensors weights.
 */
export class GgufHfReader implements TensorReader {
  readonly config: HfModelConfig;
  private readonly ggufNameOf = new Map<string, string>();
  private readonly permuted: boolean;

  private constructor(readonly file: GgufFile) {
    try {
      // Only llama.cpp's "llama" converter permutes Q/K; Qwen2 is stored in HF order (NeoX RoPE).
      this.permuted = ggufArchitecture(file) === 'llama';
      for (const name of file.tensorNames()) {
        const hfName = ggufToHfName(name);
        if (hfName === undefined) throw new Error(`${file.name}: tensor "${name}" has no known Hugging Face name`);
        if (hfName !== null) this.ggufNameOf.set(hfName, name);
      }
      this.config = configFromGguf(file);
    } catch (error) {
      file.close();
      throw error;
    }
  }

  static open(path: string): GgufHfReader {
    return new GgufHfReader(GgufFile.open(path));
  }

  static fromFile(file: GgufFile): GgufHfReader {
    return new GgufHfReader(file);
  }

  get name(): string {
    return this.file.name;
  }

  tensorNames(): string[] {
    return [...this.ggufNameOf.keys()];
  }

  has(name: string): boolean {
    return this.ggufNameOf.has(name);
  }

  info(name: string): TensorInfo {
    const { shape, dtype } = this.file.info(this.ggufName(name));
    return { name, shape, dtype };
  }

  readFloat32(name: string): Float32Array {
    const ggufName = this.ggufName(name);
    const values = this.file.readFloat32(ggufName);
    if (!this.permuted) return values;
    const heads = name.includes('.self_attn.q_proj.')
      ? this.config.num_attention_heads
      : name.includes('.self_attn.k_proj.')
        ? this.config.num_key_value_heads
        : 0;
    if (heads === 0) return values;
    return unpermuteQK(values, heads, this.file.info(ggufName).shape[0], `${this.file.name}: tensor "${ggufName}"`);
  }

  close(): void {
    this.file.close();
  }

  private ggufName(name: string): string {
    const ggufName = this.ggufNameOf.get(name);
    if (!ggufName) throw new Error(`${this.file.name}: no tensor with Hugging Face name "${name}"`);
    return ggufName;
  }
}
