import type { Tensor } from '../gpu/tensor.js';
import { writeSafetensors, type TensorsToWrite } from '../io/safetensors-writer.js';
import { hfTensorsToWrite } from '../model/save.js';
import type { LlamaModel } from '../model/llama.js';
import { clone } from '../autograd/accumulate.js';
import { projectPlusLowRank } from '../ops/low-rank.js';
import { matmulInto } from '../ops/matmul.js';
import { dropout, streamBits, streamKey } from './dropout.js';
import type { KnownOutput, Linear, LinearDelta } from '../model/linear.js';
import { openPeftAdapter, peftAdapterConfig, peftTensorName, writePeftAdapter } from './lora-peft.js';
import { DEFAULT_LORA_TARGETS, loraScaling, resolveLoraConfig, type LoraConfig, type LoraOptions } from './lora-config.js';

/**
 * LoRA (Hu et al. 2021) as Hugging Face PEFT implements it: a frozen linear W0 gains a trainable
 * low-rank term, y = x·W0ᵀ + scale·dropout(x)·Aᵀ·Bᵀ with A [r, in], B [out, r] and
 * scale = alpha/r (alpha/√r with rsLoRA). B starts at zero, so training starts from the base model.
 */

/** A and B for one target linear. */
export interface LoraWeights {
  linear: Linear;
  /** [r, in] f32. */
  a: Tensor;
  /** [out, r] f32. */
  b: Tensor;
}

/** Streams for A's initialisation start here, far above the dropout streams (which count from 0). */
const INIT_STREAM_BASE = 0x8000_0000;

/** One adapted Linear: the term it adds to the frozen layer's output. */
export class LoraModule implements LinearDelta {
  constructor(
    readonly linear: Linear,
    /** [r, in], f32, trainable. */
    readonly a: Tensor,
    /** [out, r], f32, trainable. */
    readonly b: Tensor,
    private readonly adapters: LoraAdapters,
  ) {}

  /** The rank: the intermediate is h = x'·Aᵀ. */
  get innerWidth(): number {
    return this.a.shape[0];
  }

  project(x: Tensor, weight: Tensor, known?: KnownOutput): { output: Tensor; inner: Tensor } {
    const { config, scaling } = this.adapters;
    if (known && this.adapters.training && config.dropout > 0) throw new Error(`${this.linear.name}: LoRA dropout draws a new mask each training forward, so an output computed without it cannot stand for one`);
    const input =
      this.adapters.training && config.dropout > 0 ? dropout(x, { p: config.dropout, seed: config.seed, stream: this.adapters.dropoutStream++ }) : x;
    // x·W0ᵀ + scale·x'·Aᵀ·Bᵀ (x' = x, or x after dropout): B·A ([out, in]) is never formed.
    const { output, h } = projectPlusLowRank(x, weight, input, this.a, this.b, scaling, known && { output: known.output, h: known.inner });
    return { output, inner: h };
  }
}

/** The LoRA adapters attached to one model. */
export class LoraAdapters {
  readonly modules: readonly LoraModule[];
  readonly scaling: number;
  /** Dropout is applied only while training (like torch's module.train()); inference is deterministic. */
  training = false;
  /**
   * Every training forward of an adapted layer draws the next dropout stream, so a run with the
   * same seed and the same sequence of calls gets the same masks. Set it to replay a step.
   */
  dropoutStream = 0;
  /** A recomputed decoder layer draws the same dropout streams as its first forward. */
  private readonly dropoutReplay = { get: () => this.dropoutStream, set: (stream: number) => (this.dropoutStream = stream) };
  private active = true;
  private disposed = false;

  /** Use attachLora or loadLora; `weights` gives A and B of each target, in the model's order. */
  constructor(
    readonly model: LlamaModel,
    readonly config: LoraConfig,
    weights: readonly LoraWeights[],
  ) {
    this.scaling = loraScaling(config);
    // Checked for every layer before any is touched, so a refusal leaves the model as it was.
    const taken = weights.find(({ linear }) => linear.delta);
    if (taken) throw new Error(`LoRA: ${taken.linear.name} already has a delta term (is another adapter attached?)`);
    this.modules = weights.map(({ linear, a, b }) => {
      for (const t of [a, b]) t.requiresGrad = true;
      const module = new LoraModule(linear, a, b, this);
      linear.delta = module;
      return module;
    });
    // With LoRA only A and B train.
    for (const p of model.parameters.values()) p.requiresGrad = false;
    model.replayable.push(this.dropoutReplay);
  }

  /**
   * Draws the dropout streams that `modelForwards` training forwards of the model would (one per
   * adapted module each), for work left out because its gradient is known to be zero: the forwards
   * after it keep their masks.
   */
  skipForwards(modelForwards: number): void {
    if (this.training && this.config.dropout > 0) this.dropoutStream += modelForwards * this.modules.length;
  }

  /** A then B of every adapted module, in the model's layer order (the optimizer's order). */
  parameters(): Tensor[] {
    return this.modules.flatMap((m) => [m.a, m.b]);
  }

  /**
   * Off, the model is exactly the frozen base (the layers skip the LoRA term): GRPO's reference
   * policy is the same network with adapters disabled, not a second copy of the weights.
   */
  get enabled(): boolean {
    return this.active;
  }

  set enabled(on: boolean) {
    if (on && this.disposed) throw new Error('LoRA: these adapters were disposed');
    for (const m of this.modules) {
      if (m.linear.delta !== null && m.linear.delta !== m) throw new Error(`LoRA: ${m.linear.name} carries another delta term`);
      m.linear.delta = on ? m : null;
    }
    this.active = on;
  }

  /** Writes the adapter in PEFT's format (adapter_config.json + adapter_model.safetensors, f32). */
  async save(dir: string, baseModelNameOrPath: string): Promise<void> {
    const tensors: Record<string, TensorsToWrite[string]> = {};
    for (const m of this.modules) {
      tensors[peftTensorName(m.linear.name, 'lora_A')] = { dtype: 'F32', shape: m.a.shape, data: await m.a.toArray() };
      tensors[peftTensorName(m.linear.name, 'lora_B')] = { dtype: 'F32', shape: m.b.shape, data: await m.b.toArray() };
    }
    writePeftAdapter(dir, peftAdapterConfig(this.config, baseModelNameOrPath), tensors);
  }

  /** Detaches the adapters from the model and frees A, B and their gradients. */
  dispose(): void {
    this.enabled = false;
    this.disposed = true;
    this.model.replayable.splice(this.model.replayable.indexOf(this.dropoutReplay), 1);
    for (const t of this.parameters()) {
      t.grad?.dispose();
      t.dispose();
    }
  }
}

/** The model's linears that PEFT's target_modules selects; every listed name must match one. */
export function selectLoraTargets(model: LlamaModel, targetModules: readonly string[] | string): Linear[] {
  const linears = model.linears();
  const example = linears[0]?.name ?? 'model.layers.0.self_attn.q_proj';
  if (typeof targetModules === 'string') {
    // PEFT: "all-linear" is every linear but the output layer; any other string is re.fullmatch.
    const pattern = targetModules === 'all-linear' ? null : new RegExp(`^(?:${targetModules})$`);
    const chosen = linears.filter((l) => !pattern || pattern.test(l.name));
    if (!chosen.length) throw new Error(`LoRA: target_modules /${targetModules}/ matches no linear layer (names look like ${example})`);
    return chosen;
  }
  if (!targetModules.length) throw new Error('LoRA: target_modules is empty');
  const matches = (name: string, target: string) => name === target || name.endsWith(`.${target}`);
  for (const target of targetModules) {
    if (!linears.some((l) => matches(l.name, target))) {
      throw new Error(`LoRA: target module "${target}" matches no linear layer of the model (adaptable: ${DEFAULT_LORA_TARGETS.join(', ')}; names look like ${example})`);
    }
  }
  return linears.filter((l) => targetModules.some((t) => matches(l.name, t)));
}

/** Attaches the adapters, or frees their weights when the model refuses them. */
function adoptWeights(model: LlamaModel, config: LoraConfig, weights: readonly LoraWeights[]): LoraAdapters {
  try {
    return new LoraAdapters(model, config, weights);
  } catch (error) {
    for (const { a, b } of weights) {
      a.dispose();
      b.dispose();
    }
    throw error;
  }
}

/**
 * Adds fresh adapters to the model's target linears and freezes the base. Initialised with PEFT's
 * distributions (not its exact draws, which come from torch's generator): A as kaiming_uniform_
 * (a=√5) gives, U(−1/√in, 1/√in), from our seeded generator; B zero.
 */
export function attachLora(model: LlamaModel, options: LoraOptions): LoraAdapters {
  const config = resolveLoraConfig(options);
  const gpu = model.gpu;
  const weights = selectLoraTargets(model, config.targetModules).map((linear, index) => {
    const bound = 1 / Math.sqrt(linear.inFeatures);
    const key = streamKey(config.seed, INIT_STREAM_BASE + index);
    const a = Float32Array.from({ length: config.rank * linear.inFeatures }, (_, i) => bound * (2 * ((streamBits(key, i) + 0.5) / 2 ** 32) - 1));
    return {
      linear,
      a: gpu.keep(gpu.tensor(a, [config.rank, linear.inFeatures])),
      b: gpu.keep(gpu.zeros([linear.outFeatures, config.rank])),
    };
  });
  return adoptWeights(model, config, weights);
}

/** A few names for an error message (an adapter for a big model has hundreds). */
function firstFew(names: readonly string[]): string {
  return names.slice(0, 4).join(', ') + (names.length > 4 ? ', …' : '');
}

/**
 * Loads a PEFT LoRA adapter directory onto the model (frozen base). The config, the tensor names
 * and every shape are checked against the model before anything is attached.
 */
export function loadLora(model: LlamaModel, dir: string, options: { seed?: number; dropout?: number } = {}): LoraAdapters {
  const { settings, weights: file } = openPeftAdapter(dir);
  try {
    // Dropout is how the adapter is trained, not what it is: a caller may train on with another rate.
    const config = resolveLoraConfig({ ...settings, seed: options.seed, dropout: options.dropout ?? settings.dropout });
    const targets = selectLoraTargets(model, config.targetModules);
    const expected = new Map<string, readonly number[]>();
    for (const l of targets) {
      expected.set(peftTensorName(l.name, 'lora_A'), [config.rank, l.inFeatures]);
      expected.set(peftTensorName(l.name, 'lora_B'), [l.outFeatures, config.rank]);
    }
    const missing = [...expected.keys()].filter((name) => !file.has(name));
    if (missing.length) throw new Error(`${file.name}: missing ${missing.length} LoRA tensor(s) for target_modules ${JSON.stringify(config.targetModules)}: ${firstFew(missing)}`);
    const unexpected = file.tensorNames().filter((name) => !expected.has(name));
    if (unexpected.length) throw new Error(`${file.name}: tensor(s) this adapter's config does not account for: ${firstFew(unexpected)}`);
    for (const [name, shape] of expected) {
      const { shape: actual } = file.info(name);
      if (actual.length !== shape.length || actual.some((d, i) => d !== shape[i])) {
        throw new Error(`${file.name}: ${name} has shape [${actual.join(', ')}], expected [${shape.join(', ')}] (r = ${config.rank})`);
      }
    }
    const gpu = model.gpu;
    const load = (name: string) => gpu.keep(gpu.tensor(file.readFloat32(name), expected.get(name)!));
    const weights = targets.map((linear) => ({ linear, a: load(peftTensorName(linear.name, 'lora_A')), b: load(peftTensorName(linear.name, 'lora_B')) }));
    return adoptWeights(model, config, weights);
  } finally {
    file.close();
  }
}

/**
 * W0 + scale·B·A of every adapted module, computed on the GPU, as new f32 tensors by Hugging Face
 * weight name; the caller disposes them.
 */
export async function mergeLora(adapters: LoraAdapters): Promise<Map<string, Tensor>> {
  const gpu = adapters.model.gpu;
  const merged = new Map<string, Tensor>();
  for (const m of adapters.modules) {
    const w = m.linear.weight;
    // No op casts on the GPU, so an f16 base is widened on the host (exact) and uploaded.
    const out = gpu.keep(w.dtype === 'f32' ? clone(w) : gpu.tensor(await w.toArray(), w.shape));
    matmulInto(out, m.b, m.a, { accumulate: true, alpha: adapters.scaling });
    merged.set(`${m.linear.name}.weight`, out);
  }
  return merged;
}

/**
 * Writes the whole model with the adapters merged in, as one f32 safetensors file with Hugging
 * Face names that transformers loads as a plain checkpoint (next to the base's config.json).
 */
export async function saveMergedModel(adapters: LoraAdapters, path: string, metadata: Record<string, string> = {}): Promise<void> {
  const merged = await mergeLora(adapters);
  try {
    writeSafetensors(path, await hfTensorsToWrite(adapters.model, merged), { format: 'pt', ...metadata });
  } finally {
    for (const t of merged.values()) t.dispose();
  }
}
