import { checkpoint, type ReplayableState } from '../autograd/checkpoint.js';
import { isGradEnabled } from '../autograd/grad-node.js';
import type { Gpu } from '../gpu/gpu.js';
import { bytesPerElement, type DType, type Tensor } from '../gpu/tensor.js';
import type { TensorReader } from '../io/tensor-reader.js';
import { Linear } from './linear.js';
import { ATTENTION_HEAD_DIMS, attention, supportsHeadDim } from '../ops/attention.js';
import { add } from '../ops/binary.js';
import { embedding } from '../ops/embedding.js';
import { concat, gatherRows, repeatRows, view } from '../ops/layout.js';
import { addRmsnorm, rmsnorm } from '../ops/rmsnorm.js';
import { rope } from '../ops/rope.js';
import { swiglu } from '../ops/swiglu.js';
import type { HfModelConfig } from '../io/hf-config.js';
import { checkCheckpointTensors, expectedParameterShapes } from '../io/checkpoint-layout.js';
import type { KVCache } from './kv-cache.js';
import type { ProjectionStore } from './projection-store.js';

interface DecoderLayer {
  inputNorm: Tensor;
  q: Linear;
  k: Linear;
  v: Linear;
  o: Linear;
  /** Qwen3's per-head RMSNorm weights for q and k ([head_dim]), applied before RoPE. */
  qNorm: Tensor | null;
  kNorm: Tensor | null;
  /** Keys a query sees in a sliding-window layer (itself included); null for full attention. */
  window: number | null;
  postAttentionNorm: Tensor;
  gate: Linear;
  up: Linear;
  down: Linear;
}

export interface LoadOptions {
  /** Storage of the matrices: f16 halves memory for a frozen base; norms and trained weights stay f32. */
  dtype?: DType;
  /** Full-parameter training: every weight is f32 and requires grad. */
  trainable?: boolean;
  /**
   * Bytes one block of rows of the embedding or LM head may hold: what one binding of the adapter
   * holds (the smaller of maxStorageBufferBindingSize and maxBufferSize) unless lowered here, which
   * only tests and benches do, to split a small model's vocabulary.
   */
  vocabularyBlockBytes?: number;
}

export interface ForwardOptions {
  /** Position ids [B, T] (u32): left-padded rows start counting at their first real token. */
  positions: Tensor;
  /** First valid key per row [B] (u32): masks the left padding. */
  keyStart?: Tensor;
  /** Generation: keys/values are appended here and attention reads the whole cache. */
  cache?: KVCache;
  /**
   * Training on rows that continue shared prompts: attention reads the prompt's keys, then the
   * row's own, so keyStart and positions count from the prompt's first slot.
   */
  prefix?: SharedPrefix;
  /** Filled with each layer's rotated keys and values [B, T, Hkv, D], to serve as a later forward's prefix. */
  keyValuesOut?: LayerKeyValues;
  /**
   * ids [1, N] are the real positions of a [B, W] batch packed one after another (training): every
   * op but attention runs on them; attention sees them at their slots of the [B, W] layout.
   */
  packed?: PackedPositions;
  /**
   * The linears' outputs: written to a store (`write`: the forward's first slot; the forwards that
   * sample a rollout) or read from it at `read` (u32 [B·T] slots) instead of computed (the training
   * forward of the same tokens with the same weights).
   */
  projections?: { store: ProjectionStore; write: number } | { store: ProjectionStore; read: Tensor };
}

/** Where packed positions sit in a [B, W] batch (see ForwardOptions.packed). */
export interface PackedPositions {
  /** u32 [B·W]: the packed position at each slot, N at padding (which reads as zeros). */
  slots: Tensor;
  /** u32 [N]: the slot of each packed position. */
  rows: Tensor;
  /** [B, W]. */
  shape: readonly [number, number];
  /** Real positions of each row (the first ones of its W); attention skips the rest (AttentionOptions.queryLengths). */
  lengths: readonly number[];
}

/** Rotated keys and values [B, T, Hkv, D], one of each per layer. */
export interface LayerKeyValues {
  keys: Tensor[];
  values: Tensor[];
}

/**
 * Prompts run once (their keyValuesOut) and continued by several rows each. The gradients of all
 * continuing rows flow back into the one prompt forward (repeatRows sums them).
 */
export interface SharedPrefix extends LayerKeyValues {
  /** u32 [B]: the prompt row each batch row continues. */
  rows: Tensor;
}

/** The matrices indexed by the vocabulary: stored as blocks of rows when one binding cannot hold them. */
const VOCABULARY_MATRICES = new Set(['model.embed_tokens.weight', 'lm_head.weight']);

/** A block of rows of a split weight appears in `parameters` under its weight's name and row range. */
export const rowBlockName = (name: string, start: number, end: number): string => `${name}[${start}:${end}]`;

/**
 * Row ranges of a [rows, width] matrix of `bytesPerRow`-byte rows, as few as fit `limit` bytes
 * each and as even as possible; one range when the whole fits.
 */
export function rowBlocks(rows: number, bytesPerRow: number, limit: number): [number, number][] {
  if (bytesPerRow > limit) throw new Error(`one row of ${bytesPerRow} bytes exceeds a binding of ${limit} bytes`);
  let count = Math.ceil((rows * bytesPerRow) / limit);
  while (Math.ceil(rows / count) * bytesPerRow > limit) count++;
  const per = Math.ceil(rows / count);
  const ranges: [number, number][] = [];
  for (let start = 0; start < rows; start += per) ranges.push([start, Math.min(rows, start + per)]);
  return ranges;
}

/**
 * Every op binds a weight whole, so each must fit one storage binding: refused before any weight is
 * read. The vocabulary's matrices are split into blocks of rows instead (lavapipe binds at most
 * 128 MiB, less than a 1.7B model's f16 embedding of 192 MiB), unless they train.
 */
function checkBindingSize(source: string, config: HfModelConfig, matrixDtype: DType, limits: GPUSupportedLimits, trainable: boolean): void {
  const [limitName, limit] = limits.maxBufferSize < limits.maxStorageBufferBindingSize ? ['maxBufferSize', limits.maxBufferSize] : ['maxStorageBufferBindingSize', limits.maxStorageBufferBindingSize];
  const MiB = 2 ** 20;
  for (const [name, shape] of expectedParameterShapes(config)) {
    const bytes = shape.reduce((a, b) => a * b, 1) * bytesPerElement(shape.length === 2 ? matrixDtype : 'f32');
    if (bytes > limit && (trainable || !VOCABULARY_MATRICES.has(name))) {
      throw new Error(
        `${source}: ${name} [${shape.join(', ')}] ${shape.length === 2 ? matrixDtype : 'f32'} takes ${(bytes / MiB).toFixed(0)} MiB, more than one storage binding of this adapter holds ` +
          `(${limitName} ${(limit / MiB).toFixed(0)} MiB); ` +
          (trainable ? 'a trained weight is not split across bindings (train LoRA adapters instead)' : 'only the embedding and the LM head are split across bindings'),
      );
    }
  }
}

/** A Llama-family decoder (Llama, Mistral, Qwen2, Qwen3) built from the core ops. Weights use HF names. */
export class LlamaModel {
  readonly layers: DecoderLayer[] = [];
  /** The embedding's blocks of rows: one, the whole table, unless it is larger than one binding. */
  readonly embedTokens: readonly Tensor[];
  readonly finalNorm: Tensor;
  readonly lmHead: Linear;
  /** Every weight by its Hugging Face name; the blocks of a split one under rowBlockName. */
  readonly parameters = new Map<string, Tensor>();
  /** The weights split into blocks of rows (larger than one binding), by Hugging Face name. */
  readonly splitWeights = new Map<string, readonly Tensor[]>();
  /**
   * Activation recomputation: a recorded forward keeps only each decoder layer's input (and the
   * keys and values a shared prompt hands on); the backward runs the layer again.
   */
  recomputeLayers = false;
  /** Counters a training forward advances (LoRA's dropout stream): a recomputed layer replays them from where it first ran. */
  readonly replayable: ReplayableState[] = [];

  constructor(
    readonly gpu: Gpu,
    readonly config: HfModelConfig,
    reader: TensorReader,
    options: LoadOptions = {},
  ) {
    const trainable = options.trainable ?? false;
    const matrixDtype: DType = trainable ? 'f32' : (options.dtype ?? 'f32');
    if (!supportsHeadDim(config.head_dim)) {
      throw new Error(`${reader.name}: head_dim ${config.head_dim} is not supported: the attention kernels take ${ATTENTION_HEAD_DIMS}`);
    }
    checkCheckpointTensors(config, reader);
    const limits = gpu.device.limits;
    const bindingBytes = Math.min(limits.maxStorageBufferBindingSize, limits.maxBufferSize);
    checkBindingSize(reader.name, config, matrixDtype, limits, trainable);
    // A tied checkpoint may still hold its own lm_head (see tiedHead).
    const shapes = expectedParameterShapes(config).set('lm_head.weight', [config.vocab_size, config.hidden_size]);
    const load = (name: string, dtype: DType): Tensor => {
      const t = gpu.keep(gpu.tensor(reader.readFloat32(name), shapes.get(name)!, dtype));
      t.requiresGrad = trainable;
      this.parameters.set(name, t);
      return t;
    };
    const norm = (name: string) => load(name, 'f32');
    const linear = (name: string): Linear => {
      const bias = shapes.has(`${name}.bias`) ? load(`${name}.bias`, 'f32') : null;
      return new Linear(name, load(`${name}.weight`, matrixDtype), bias);
    };
    // The vocabulary's matrices: whole when one binding holds them, else as blocks of rows.
    const vocabularyMatrix = (name: string): Tensor[] => {
      const [rows, width] = shapes.get(name)!;
      const ranges = rowBlocks(rows, width * bytesPerElement(matrixDtype), Math.min(options.vocabularyBlockBytes ?? Infinity, bindingBytes));
      if (ranges.length === 1) return [load(name, matrixDtype)];
      const data = reader.readFloat32(name);
      const blocks = ranges.map(([start, end]) => {
        const t = gpu.keep(gpu.tensor(data.subarray(start * width, end * width), [end - start, width], matrixDtype));
        this.parameters.set(rowBlockName(name, start, end), t);
        return t;
      });
      this.splitWeights.set(name, blocks);
      return blocks;
    };
    const c = config;
    this.embedTokens = vocabularyMatrix('model.embed_tokens.weight');
    for (let i = 0; i < c.num_hidden_layers; i++) {
      const p = `model.layers.${i}`;
      this.layers.push({
        inputNorm: norm(`${p}.input_layernorm.weight`),
        q: linear(`${p}.self_attn.q_proj`),
        k: linear(`${p}.self_attn.k_proj`),
        v: linear(`${p}.self_attn.v_proj`),
        o: linear(`${p}.self_attn.o_proj`),
        qNorm: c.qk_norm ? norm(`${p}.self_attn.q_norm.weight`) : null,
        kNorm: c.qk_norm ? norm(`${p}.self_attn.k_norm.weight`) : null,
        window: c.layer_types[i] === 'sliding_attention' ? c.sliding_window : null,
        postAttentionNorm: norm(`${p}.post_attention_layernorm.weight`),
        gate: linear(`${p}.mlp.gate_proj`),
        up: linear(`${p}.mlp.up_proj`),
        down: linear(`${p}.mlp.down_proj`),
      });
    }
    this.finalNorm = norm('model.norm.weight');
    this.lmHead = new Linear('lm_head', this.tiedHead(reader) ? this.embedTokens : vocabularyMatrix('lm_head.weight'));
  }

  /**
   * Whether the head shares the embedding matrix. As in transformers: an untied config loads
   * lm_head.weight; a tied one shares unless the checkpoint also stores an lm_head that differs.
   */
  private tiedHead(reader: TensorReader): boolean {
    if (!this.config.tie_word_embeddings) return false;
    if (!reader.has('lm_head.weight')) return true;
    const head = reader.readFloat32('lm_head.weight');
    const embedding = reader.readFloat32('model.embed_tokens.weight');
    if (head.every((value, i) => Object.is(value, embedding[i]))) return true;
    console.warn(`${reader.name}: tie_word_embeddings is true but lm_head.weight differs from the embedding; using lm_head.weight untied, as transformers does`);
    return false;
  }

  /** Token ids [B, T] (u32) → final hidden states [B·T, hidden] (after the last RMSNorm). */
  forward(ids: Tensor, options: ForwardOptions): Tensor {
    const [batch, steps] = ids.shape;
    // Without autograd nothing needs a layer's intermediates afterwards: free them layer by layer,
    // so inference (generation, reference log-probs) holds one layer's worth at a time.
    const inference = !isGradEnabled();
    const columns = (options.cache?.length ?? 0) + steps;
    if (this.config.rope_scaling.rope_type === 'dynamic' && columns > this.config.max_position_embeddings) {
      // transformers then recomputes the frequencies from the longest sequence seen so far, a
      // history-dependent state this model does not reproduce; up to this length they are the default ones.
      throw new Error(`dynamic RoPE: ${columns} positions exceed max_position_embeddings ${this.config.max_position_embeddings}, past which transformers rescales the frequencies; not supported`);
    }
    let x = embedding(view(ids, [batch * steps]), this.embedTokens);
    const collected = options.keyValuesOut;
    if (collected && (collected.keys.length || collected.values.length)) throw new Error('LlamaModel.forward: keyValuesOut must start empty');
    if (options.prefix && options.cache) throw new Error('LlamaModel.forward: a shared prefix is for training; generation reads its KV cache');
    if (options.packed && (options.cache || batch !== 1)) throw new Error('LlamaModel.forward: packed positions are ids [1, N] of a training batch, not a generation step');
    const { projections } = options;
    if (projections && 'read' in projections && projections.read.size !== batch * steps) {
      throw new Error(`LlamaModel.forward: ${projections.read.size} projection slots for ${batch * steps} positions`);
    }
    this.layers.forEach((layer, i) => {
      const input = x;
      const prefix = options.prefix && { keys: options.prefix.keys[i], values: options.prefix.values[i], rows: options.prefix.rows };
      // The layer's output, then its keys and values when they are collected. The store's copies of
      // the layer's projections are recorded before its temporaries go back to the pool, so the
      // outputs they hold go back with them and the next layer and decode step bind the buffers they
      // would without a store (held to the forward's end, they made nearly every decode dispatch
      // miss the bind-group cache).
      const run = (layerInput: Tensor, layerPrefix = prefix): Tensor[] => {
        const { out, k, v } = this.decoderLayer(layer, i, layerInput, batch, steps, options, layerPrefix);
        if (projections && 'write' in projections) projections.store.flush();
        return collected ? [out, k, v] : [out];
      };
      let outputs: Tensor[];
      if (inference) {
        outputs = this.gpu.tidy(() => run(input));
        input.dispose();
      } else if (this.recomputeLayers && !options.cache) {
        const prefixInputs = prefix ? [prefix.keys, prefix.values] : [];
        outputs = checkpoint(`decoder layer ${i}`, [input, ...prefixInputs], ([layerInput, keys, values]) => run(layerInput, prefix && { keys, values, rows: prefix.rows }), this.replayable);
      } else {
        outputs = run(input);
      }
      x = outputs[0];
      if (collected) {
        collected.keys.push(outputs[1]);
        collected.values.push(outputs[2]);
      }
    });
    if (options.cache) options.cache.length += steps;
    return rmsnorm(x, this.finalNorm, this.config.rms_norm_eps);
  }

  /** One decoder layer: its output and its rotated keys and values. `prefix`: this layer's keys and values of the shared prompts. */
  private decoderLayer(
    layer: DecoderLayer,
    i: number,
    x: Tensor,
    batch: number,
    steps: number,
    options: ForwardOptions,
    prefix?: { keys: Tensor; values: Tensor; rows: Tensor },
  ): { out: Tensor; k: Tensor; v: Tensor } {
    const c = this.config;
    const rows = batch * steps;
    const { cache } = options;
    const h = rmsnorm(x, layer.inputNorm, c.rms_norm_eps);
    const project = (linear: Linear, input: Tensor): Tensor => {
      const p = options.projections;
      if (p && 'read' in p) return linear.project(input, p.store.read(linear, p.read)).output;
      const { output, inner } = linear.project(input);
      if (p) p.store.write(linear, output, p.write, inner);
      return output;
    };
    const heads = (linear: Linear, count: number, norm: Tensor | null) => {
      const projected = view(project(linear, h), [batch, steps, count, c.head_dim]);
      return norm ? rmsnorm(projected, norm, c.rms_norm_eps) : projected;
    };
    const ropeOptions = { theta: c.rope_theta, scaling: c.rope_scaling };
    const q = rope(heads(layer.q, c.num_attention_heads, layer.qNorm), options.positions, ropeOptions);
    const k = rope(heads(layer.k, c.num_key_value_heads, layer.kNorm), options.positions, ropeOptions);
    const v = heads(layer.v, c.num_key_value_heads, null);
    const { packed } = options;
    // Packed positions go to their slots of the [B, W] batch for attention, and come back after it.
    const slotted = (t: Tensor) => {
      if (!packed) return t;
      const [, , count, dim] = t.shape;
      return view(gatherRows(view(t, [rows, count, dim]), packed.slots, packed.rows), [...packed.shape, count, dim]);
    };
    const window = layer.window ?? undefined;
    let attended: Tensor;
    if (cache) {
      cache.write(i, k, v);
      // Decoding one position reads a prompt's keys once for the samples that continue it.
      const rows = steps === 1 ? { kvRows: cache.rows, sharedKeys: cache.sharedKeys } : { kvRows: cache.kvRows };
      attended = attention(q, cache.keys[i], cache.values[i], { kvLength: cache.length + steps, keyStart: options.keyStart, window, ...rows });
    } else if (prefix) {
      // The window counts slots of the prompt + completion row, as the unshared forward would.
      const keys = concat([repeatRows(prefix.keys, prefix.rows), slotted(k)], 1);
      const values = concat([repeatRows(prefix.values, prefix.rows), slotted(v)], 1);
      attended = attention(slotted(q), keys, values, { keyStart: options.keyStart, window, queryLengths: packed?.lengths });
    } else {
      attended = attention(slotted(q), slotted(k), slotted(v), { keyStart: options.keyStart, window, queryLengths: packed?.lengths });
    }
    const width = c.num_attention_heads * c.head_dim;
    const merged = packed ? gatherRows(view(attended, [attended.size / width, width]), packed.rows, packed.slots) : view(attended, [rows, width]);
    const { sum: afterAttention, normed: m } = addRmsnorm(x, project(layer.o, merged), layer.postAttentionNorm, c.rms_norm_eps);
    return { out: add(afterAttention, project(layer.down, swiglu(project(layer.gate, m), project(layer.up, m)))), k, v };
  }

  /** Hidden states [N, hidden] → logits [N, vocab]. Training computes these chunk by chunk. */
  logits(hidden: Tensor): Tensor {
    return this.lmHead.forward(hidden);
  }

  /** Every Linear of the decoder, by HF module name (LoRA targets these). */
  linears(): Linear[] {
    return this.layers.flatMap((l) => [l.q, l.k, l.v, l.o, l.gate, l.up, l.down]);
  }
}
