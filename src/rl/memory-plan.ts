import { freemem } from 'node:os';
import { sizeClass } from '../gpu/buffer-pool.js';
import { bytesPerElement, type DType } from '../gpu/tensor.js';
import { expectedParameterShapes } from '../io/checkpoint-layout.js';
import type { HfModelConfig } from '../io/hf-config.js';
import type { Linear } from '../model/linear.js';
import type { LlamaModel } from '../model/llama.js';
import type { LoraAdapters } from '../nn/lora.js';

const F32 = 4;
const GiB = 2 ** 30;
/** Rows of logits the LM head holds at once in training (lmHeadLogprobs' default chunk). */
const LOGIT_CHUNK_ROWS = 256;

/** What a GRPO step's device memory is made of, in bytes, as estimated before it runs. */
export interface StepMemoryEstimate {
  /** The frozen base's weights (as loaded). */
  frozen: number;
  /** Adapters, their gradients and AdamW's two moments. */
  trainable: number;
  /** Generation: every layer's keys and values for the generation batch (twice while finished rows are dropped), and one layer of the prompts' prefill. */
  generation: number;
  /** Training: what the forward of one micro-batch keeps for backward, plus one layer's backward at a time. */
  activations: number;
  /** Free buffers the pool may keep (its cap; 0 when uncapped, which the estimate cannot bound). */
  poolCache: number;
  /** The sampling forwards' linear outputs (and LoRA's h beside an adapted one's) kept for training (ProjectionStore), through both phases. */
  projections: number;
  /** The larger of the two phases: frozen + trainable + pool cache + projections + max(generation, activations). */
  peak: number;
}

export interface StepShape {
  /** Longest prompt, in tokens. */
  promptTokens: number;
  maxNewTokens: number;
  numGenerations: number;
  generationBatchSize: number;
  microBatchSize: number;
  /** Whether completions of one prompt attend to one forward of it (see sharedPromptBatch). */
  sharedPrompts: boolean;
  recompute: boolean;
  /** The pool's cap on cached free bytes. */
  poolCacheCap: number;
  /** Rows of the rollout's linear outputs kept for training (rolloutProjectionRows); 0 when they are recomputed. */
  projectionRows?: number;
  /** Rows of the sampling's logits kept with them (rolloutLogitRows), in blocks of `logitBlockRows` (ProjectionStore.logitBlockRows). */
  logitRows?: number;
  logitBlockRows?: number;
}

/** One projection of a decoder layer, as far as memory goes. */
export interface LinearShape {
  inFeatures: number;
  outFeatures: number;
  bias: boolean;
  /** Whether a LoRA adapter is attached. */
  adapted: boolean;
}

/** What the estimate needs of a model and its adapters: from a loaded one (loadedModelShape) or from a config alone (configModelShape). */
export interface TrainedModelShape {
  config: HfModelConfig;
  /** Device bytes of the frozen weights. */
  frozenBytes: number;
  /** Bytes of the adapters' A and B matrices (f32). */
  adapterBytes: number;
  /** One decoder layer's projections: q, k, v, o, gate, up, down. */
  linears: [LinearShape, LinearShape, LinearShape, LinearShape, LinearShape, LinearShape, LinearShape];
  rank: number;
  dropout: boolean;
  /** Storage of the frozen matrices. */
  matrixDtype: DType;
}

export function loadedModelShape(model: LlamaModel, lora: LoraAdapters): TrainedModelShape {
  const adapted = new Set(lora.modules.map((m) => m.linear));
  const layer = model.layers[0];
  const shape = (linear: Linear): LinearShape => ({ inFeatures: linear.inFeatures, outFeatures: linear.outFeatures, bias: linear.bias !== null, adapted: adapted.has(linear) });
  return {
    config: model.config,
    // Each buffer once: tied embeddings share one.
    frozenBytes: [...new Set([...model.parameters.values()].map((t) => t.buffer))].reduce((n, b) => n + b.size, 0),
    adapterBytes: lora.parameters().reduce((n, p) => n + p.byteLength, 0),
    linears: [shape(layer.q), shape(layer.k), shape(layer.v), shape(layer.o), shape(layer.gate), shape(layer.up), shape(layer.down)],
    rank: lora.config.rank,
    dropout: lora.config.dropout > 0,
    matrixDtype: model.embedTokens[0].dtype,
  };
}

/** The shape of a config's model with LoRA on the named projections (PEFT's suffixes: q_proj, …), without loading it. */
export function configModelShape(config: HfModelConfig, matrixDtype: DType, lora: { rank: number; targets: readonly string[]; dropout: number }): TrainedModelShape {
  const c = config;
  const h = c.hidden_size;
  const q = c.num_attention_heads * c.head_dim;
  const kv = c.num_key_value_heads * c.head_dim;
  const linear = (name: string, inFeatures: number, outFeatures: number, bias: boolean): LinearShape => ({ inFeatures, outFeatures, bias, adapted: lora.targets.includes(name) });
  const linears: TrainedModelShape['linears'] = [
    linear('q_proj', h, q, c.attention_bias),
    linear('k_proj', h, kv, c.attention_bias),
    linear('v_proj', h, kv, c.attention_bias),
    linear('o_proj', q, h, c.o_proj_bias),
    linear('gate_proj', h, c.intermediate_size, c.mlp_bias),
    linear('up_proj', h, c.intermediate_size, c.mlp_bias),
    linear('down_proj', c.intermediate_size, h, c.mlp_bias),
  ];
  let frozenBytes = 0;
  for (const shape of expectedParameterShapes(c).values()) {
    const elements = shape.reduce((a, b) => a * b, 1);
    frozenBytes += sizeClass(elements * (shape.length === 2 ? bytesPerElement(matrixDtype) : F32));
  }
  const adapterElements = linears.filter((l) => l.adapted).reduce((n, l) => n + lora.rank * (l.inFeatures + l.outFeatures), 0);
  return { config, frozenBytes, adapterBytes: c.num_hidden_layers * adapterElements * F32, linears, rank: lora.rank, dropout: lora.dropout > 0, matrixDtype };
}

/** Widths (f32 elements per position) of the tensors a Linear's forward allocates: the product, its bias sum, LoRA's terms. */
function linearTensors(linear: LinearShape, rank: number, dropout: boolean): number[] {
  const out = linear.outFeatures;
  const widths = linear.bias ? [out, out] : [out];
  if (!linear.adapted) return widths;
  // Dropout's copy of the input and x·Aᵀ; the scaled ·Bᵀ is added into the base product
  // (projectPlusLowRank). Its backward holds as much: dh = scale·g·B, dx = g·W + dh·A in one
  // buffer, and dropout's gradient through its mask.
  widths.push(...(dropout ? [linear.inFeatures] : []), rank);
  return widths;
}

/**
 * Widths (f32 elements per position) of the tensors a recorded forward of one decoder layer
 * allocates (llama.ts decoderLayer: every op's output lives until the micro-batch ends).
 */
function layerTensors(model: TrainedModelShape): number[] {
  const c = model.config;
  const [lq, lk, lv, lo, gate, up, down] = model.linears.map((l) => linearTensors(l, model.rank, model.dropout));
  const h = c.hidden_size;
  const q = c.num_attention_heads * c.head_dim;
  const kv = c.num_key_value_heads * c.head_dim;
  return [
    h, 1, // RMSNorm and its saved 1/rms
    ...lq, ...lk, ...lv,
    ...(c.qk_norm ? [q, c.num_attention_heads, kv, c.num_key_value_heads] : []),
    q, kv, // rotated q and k
    q, c.num_attention_heads, // attention output and its log-sum-exp
    ...lo, h, // o_proj and the residual sum
    h, 1,
    ...gate, ...up, c.intermediate_size, ...down, h, // MLP, SwiGLU, residual sum
  ];
}

/** The estimate of a step's device memory for this model, adapters and shape (see StepMemoryEstimate). */
export function estimateStepMemory(model: TrainedModelShape, shape: StepShape): StepMemoryEstimate {
  const c = model.config;
  const layers = c.num_hidden_layers;
  const kv = c.num_key_value_heads * c.head_dim;
  const micro = shape.microBatchSize;
  const completion = shape.maxNewTokens;
  const prompt = shape.promptTokens;
  // Positions of one micro-batch: shared, each prompt (at most one per group touched) once and
  // each row its completion; otherwise every row its whole prompt and completion.
  const promptRows = shape.sharedPrompts ? Math.min(micro, Math.ceil(micro / shape.numGenerations) + 1) : 0;
  const positions = shape.sharedPrompts ? promptRows * prompt + micro * completion : micro * (prompt + completion);
  // Pool buffers are rounded up to their size class.
  const bytes = (positionCount: number, widths: readonly number[]) => widths.reduce((n, w) => n + (positionCount ? sizeClass(positionCount * w * F32) : 0), 0);
  const widths = layerTensors(model);
  const promptPositions = shape.sharedPrompts ? promptRows * prompt : 0;
  const rowPositions = shape.sharedPrompts ? micro * completion : micro * (prompt + completion);
  // Continuation rows gather their prompt's keys and values, then join them with their own.
  const gathered = shape.sharedPrompts ? 2 * (sizeClass(micro * prompt * kv * F32) + sizeClass(micro * (prompt + completion) * kv * F32)) : 0;
  const oneLayer = bytes(promptPositions, widths) + bytes(rowPositions, widths) + gathered;
  // Kept across layers: everything, or (recomputing) each layer's input and the prompts' keys and values.
  const kept = shape.recompute ? layers * (bytes(promptPositions, [c.hidden_size, kv, kv]) + bytes(rowPositions, [c.hidden_size])) : layers * oneLayer;
  // The backward of one layer holds about another layer's worth: its gradients (see linearTensors)
  // or, recomputing, the layer run again and freed as it goes.
  const inFlight = oneLayer;
  const logits = 3 * sizeClass(Math.min(positions, LOGIT_CHUNK_ROWS) * c.vocab_size * F32) + bytes(positions, [c.hidden_size, c.hidden_size]);
  const activations = kept + inFlight + logits;
  const kvCache = 2 * layers * shape.generationBatchSize * (prompt + completion) * kv * F32;
  const generation = 2 * kvCache + bytes(shape.generationBatchSize * prompt, widths) + bytes(shape.generationBatchSize, [c.vocab_size]);
  const frozen = model.frozenBytes;
  // Parameters, gradients and two moments.
  const trainable = 4 * model.adapterBytes;
  const poolCache = Number.isFinite(shape.poolCacheCap) ? shape.poolCacheCap : 0;
  const projectionRows = shape.projectionRows ?? 0;
  const logitRows = shape.logitRows ?? 0;
  const perBlock = shape.logitBlockRows ?? logitRows;
  let logitBytes = 0;
  for (let row = 0; row < logitRows; row += perBlock) logitBytes += sizeClass(Math.min(perBlock, logitRows - row) * c.vocab_size * F32);
  // Each linear's outputs, and an adapted one's h = x·Aᵀ beside them.
  const keptBytes = (l: LinearShape) => sizeClass(projectionRows * l.outFeatures * F32) + (l.adapted ? sizeClass(projectionRows * model.rank * F32) : 0);
  const projections = (projectionRows ? layers * model.linears.reduce((n, l) => n + keptBytes(l), 0) : 0) + logitBytes;
  return { frozen, trainable, generation, activations, poolCache, projections, peak: frozen + trainable + poolCache + projections + Math.max(generation, activations) };
}

export interface MemoryPlan {
  microBatchSize: number;
  recompute: boolean;
  /** Cap on the pool's cached free bytes: the shape's, or less when a budget leaves less room. */
  poolCacheCap: number;
  estimate: StepMemoryEstimate;
}

export interface MemoryBudget {
  /** Bytes a step may use; undefined: no budget (the settings are taken as given). */
  maxBytes?: number;
  /**
   * Without maxBytes, room the micro-batch (when not given) should keep within: the largest that
   * fits without recomputation, else 1. Unlike maxBytes it never turns recomputation on and never refuses.
   */
  roomBytes?: number;
  /** 'auto': recompute only when the budget needs it. */
  recompute: 'auto' | 'on' | 'off';
  /** Whether the micro-batch size was chosen by the user (otherwise the plan picks the largest that fits). */
  microBatchGiven: boolean;
  /** Sequences per step: the largest micro-batch worth having. */
  sequencesPerStep: number;
}

/**
 * On a CPU adapter device memory is the system's: a default micro-batch keeps its step within half
 * of what is available now (and of a container's limit). A GPU's memory is not reported by
 * WebGPU, so there the micro-batch stays as configured.
 */
export function cpuAdapterRoom(): number {
  const limit = process.constrainedMemory?.();
  return Math.min(freemem(), limit ? limit : Infinity) / 2;
}

export const formatGiB = (bytes: number): string => `${(bytes / GiB).toFixed(2)} GiB`;

export function describeEstimate(e: StepMemoryEstimate): string {
  const projections = e.projections ? ` + rollout projections ${formatGiB(e.projections)}` : '';
  return `frozen ${formatGiB(e.frozen)} + adapters and optimizer ${formatGiB(e.trainable)} + pool cache ${formatGiB(e.poolCache)}${projections} + max(generation ${formatGiB(e.generation)}, activations ${formatGiB(e.activations)}) = ${formatGiB(e.peak)}`;
}

/**
 * Chooses the micro-batch size and activation recomputation for a budget: without recomputation
 * (it costs one more forward of every layer) at the largest micro-batch that fits, else with it;
 * a micro-batch the user gave is kept. Throws, naming the flags, when nothing fits.
 */
export function planMemory(model: TrainedModelShape, shape: Omit<StepShape, 'recompute'>, budget: MemoryBudget): MemoryPlan {
  const plan = (microBatchSize: number, recompute: boolean, poolCacheCap = shape.poolCacheCap): MemoryPlan => ({
    microBatchSize,
    recompute,
    poolCacheCap,
    estimate: estimateStepMemory(model, { ...shape, microBatchSize, recompute, poolCacheCap }),
  });
  const recomputeChoices = budget.recompute === 'auto' ? [false, true] : [budget.recompute === 'on'];
  const micros = budget.microBatchGiven ? [shape.microBatchSize] : Array.from({ length: budget.sequencesPerStep }, (_, i) => budget.sequencesPerStep - i);
  if (budget.maxBytes === undefined) {
    const recompute = recomputeChoices.at(0)!;
    const roomBytes = budget.roomBytes;
    if (roomBytes === undefined || budget.microBatchGiven) return plan(shape.microBatchSize, recompute);
    return plan(micros.find((micro) => plan(micro, recompute).estimate.peak <= roomBytes) ?? 1, recompute);
  }
  for (const recompute of recomputeChoices) {
    for (const micro of micros) {
      // The pool's cache gets what the step leaves of the budget (up to its own cap; an uncapped pool is capped there).
      const room = budget.maxBytes - plan(micro, recompute, 0).estimate.peak;
      if (room >= 0) return plan(micro, recompute, Math.min(shape.poolCacheCap, room));
    }
  }
  const smallest = plan(micros.at(-1)!, recomputeChoices.at(-1)!, 0);
  const phase = smallest.estimate.generation >= smallest.estimate.activations ? 'generation (lower --generation-batch-size or --max-new-tokens)' : 'training (lower --max-new-tokens, or shorter prompts)';
  throw new Error(
    `--max-memory ${formatGiB(budget.maxBytes)}: a step does not fit even at micro-batch ${smallest.microBatchSize}` +
      `${smallest.recompute ? ' with activation recomputation' : ' (--recompute off)'}: estimated ${describeEstimate(smallest.estimate)}; ` +
      `the larger phase is ${phase}${model.matrixDtype === 'f32' ? '; --base-dtype f16 halves the frozen weights' : ''}`,
  );
}
