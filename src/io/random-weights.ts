import { expectedParameterShapes } from './checkpoint-layout.js';
import type { HfModelConfig } from './hf-config.js';
import type { TensorsToWrite } from './safetensors-writer.js';
import type { TensorInfo, TensorReader } from './tensor-reader.js';

/** How many uniform draws a tensor takes, and how to make it from the generator's state at its first draw. */
interface InitialTensor {
  shape: number[];
  draws: number;
  make(state: number): TensorsToWrite[string];
}

/** The generator's step: the i-th draw from seed s uses state s + (i + 1)·STEP, so any tensor can start where the ones before it end. */
const STEP = 0x6d2b79f5;

/**
 * Every parameter of the config with its initialisation and the generator state it starts from:
 * matrices from N(0, std²) (two draws per element), norms at one, biases at zero (no draws).
 */
function initialTensors(config: HfModelConfig, seed: number, std: number): Map<string, { shape: number[]; generate(): TensorsToWrite[string] }> {
  const normal = (shape: number[]): InitialTensor => ({
    shape,
    draws: 2 * shape.reduce((a, b) => a * b, 1),
    make(start) {
      let state = start;
      const uniform = () => {
        state = (state + STEP) >>> 0;
        let t = state;
        t = Math.imul(t ^ (t >>> 15), t | 1);
        t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
        return (((t ^ (t >>> 14)) >>> 0) + 0.5) / 4294967296;
      };
      const data = new Float32Array(this.draws / 2);
      for (let i = 0; i < data.length; i++) data[i] = std * Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
      return { dtype: 'F32', shape, data };
    },
  });
  const filled = (shape: number[], value: number): InitialTensor => ({ shape, draws: 0, make: () => ({ dtype: 'F32', shape, data: new Float32Array(shape[0]).fill(value) }) });
  const out = new Map<string, { shape: number[]; generate(): TensorsToWrite[string] }>();
  let drawn = 0;
  for (const [name, shape] of expectedParameterShapes(config)) {
    const tensor = name.endsWith('norm.weight') ? filled(shape, 1) : name.endsWith('.bias') ? filled(shape, 0) : normal(shape);
    // (drawn mod 2³²)·STEP mod 2³² = drawn·STEP mod 2³²; Math.imul needs both factors below 2³².
    const start = (seed + Math.imul(drawn % 2 ** 32, STEP)) >>> 0;
    out.set(name, { shape, generate: () => tensor.make(start) });
    drawn += tensor.draws;
  }
  return out;
}

/**
 * Fresh weights for a Llama-family config, as transformers initialises them: matrices from
 * N(0, std²), norms at one, biases at zero. Seeded, so the same command reproduces the same model.
 */
export function initialLlamaWeights(config: HfModelConfig, seed: number, std = 0.02): TensorsToWrite {
  return Object.fromEntries([...initialTensors(config, seed >>> 0, std)].map(([name, tensor]) => [name, tensor.generate()]));
}

/**
 * The weights of initialLlamaWeights(config, seed) as a TensorReader: a model of a real model's
 * shape without its weights (timing runs on machines that do not hold the checkpoint). Each tensor
 * is generated when it is read, so a model larger than the JS heap loads tensor by tensor.
 */
export class RandomLlamaWeights implements TensorReader {
  readonly name: string;
  private readonly tensors: ReturnType<typeof initialTensors>;

  constructor(config: HfModelConfig, readonly seed: number) {
    this.name = `random weights (seed ${seed})`;
    this.tensors = initialTensors(config, seed >>> 0, 0.02);
  }

  tensorNames(): string[] {
    return [...this.tensors.keys()];
  }

  has(name: string): boolean {
    return this.tensors.has(name);
  }

  info(name: string): TensorInfo {
    return { name, shape: this.tensor(name).shape, dtype: 'F32' };
  }

  readFloat32(name: string): Float32Array {
    return this.tensor(name).generate().data as Float32Array;
  }

  close(): void {}

  private tensor(name: string): { shape: number[]; generate(): TensorsToWrite[string] } {
    const tensor = this.tensors.get(name);
    if (!tensor) throw new Error(`${this.name}: no tensor "${name}"`);
    return tensor;
  }
}
