import { expectedParameterShapes } from './checkpoint-layout.js';
import type { HfModelConfig } from './hf-config.js';
import type { TensorsToWrite } from './safetensors-writer.js';
import type { TensorInfo, TensorReader } from './tensor-reader.js';

/**
 * Fresh weights for a Llama-family config, as transformers initialises them: matrices from
 * N(0, std²), norms at one, biases at zero. Seeded, so the same command reproduces the same model.
 */
export function initialLlamaWeights(config: HfModelConfig, seed: number, std = 0.02): TensorsToWrite {
  let state = seed >>> 0;
  const uniform = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) + 0.5) / 4294967296;
  };
  const normal = (shape: number[]) => {
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
    for (let i = 0; i < data.length; i++) data[i] = std * Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
    return { dtype: 'F32' as const, shape, data };
  };
  const filled = (shape: number[], value: number) => ({ dtype: 'F32' as const, shape, data: new Float32Array(shape[0]).fill(value) });
  const weights: Record<string, TensorsToWrite[string]> = {};
  for (const [name, shape] of expectedParameterShapes(config)) {
    weights[name] = name.endsWith('norm.weight') ? filled(shape, 1) : name.endsWith('.bias') ? filled(shape, 0) : normal(shape);
  }
  return weights;
}

/**
 * The weights of initialLlamaWeights(config, seed) as a TensorReader: a model of a real model's
 * shape without its weights (timing runs on machines that do not hold the checkpoint).
 */
export class RandomLlamaWeights implements TensorReader {
  readonly name: string;
  private readonly tensors: TensorsToWrite;

  constructor(config: HfModelConfig, readonly seed: number) {
    this.name = `random weights (seed ${seed})`;
    this.tensors = initialLlamaWeights(config, seed);
  }

  tensorNames(): string[] {
    return Object.keys(this.tensors);
  }

  has(name: string): boolean {
    return Object.hasOwn(this.tensors, name);
  }

  info(name: string): TensorInfo {
    return { name, shape: this.tensor(name).shape, dtype: 'F32' };
  }

  readFloat32(name: string): Float32Array {
    return this.tensor(name).data as Float32Array;
  }

  close(): void {}

  private tensor(name: string): TensorsToWrite[string] {
    if (!this.has(name)) throw new Error(`${this.name}: no tensor "${name}"`);
    return this.tensors[name];
  }
}
