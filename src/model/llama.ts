import { isGradEnabled } from '../autograd/grad-node.js';
import type { Gpu } from '../gpu/gpu.js';
import type { DType, Tensor } from '../gpu/tensor.js';
import type { TensorReader } from '../io/tensor-reader.js';
import { Linear } from './linear.js';
import { attention } from '../ops/attention.js';
import { add } from '../ops/binary.js';
import { embedding } from '../ops/embedding.js';
import { concat, repeatRows, view } from '../ops/layout.js';
import { rmsnorm } from '../ops/rmsnorm.js';
import { rope } from '../ops/rope.js';
import { swiglu } from '../ops/swiglu.js';
import type { HfModelConfig } from '../io/hf-config.js';
import type { KVCache } from './kv-cache.js';

interface DecoderLayer {
  inputNorm: Tensor;
  q: Linear;
  k: Linear;
  v: Linear;
  o: Linear;
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

/** A Llama-family decoder (Llama, Mistral, Qwen2) built from the core ops. Weights use HF names. */
export class LlamaModel {
  readonly layers: DecoderLayer[] = [];
  readonly embedTokens: Tensor;
  readonly finalNorm: Tensor;
  readonly lmHead: Linear;
  /** Every weight by its Hugging Face name. */
  readonly parameters = new Map<string, Tensor>();

  constructor(
    readonly gpu: Gpu,
    readonly config: HfModelConfig,
    reader: TensorReader,
    options: LoadOptions = {},
  ) {
    const trainable = options.trainable ?? false;
    const matrixDtype: DType = trainable ? 'f32' : (options.dtype ?? 'f32');
    const load = (name: string, dtype: DType, shape: readonly number[]): Tensor => {
      const info = reader.info(name);
      if (info.shape.length !== shape.length || info.shape.some((d, i) => d !== shape[i])) {
        throw new Error(`${reader.name}: ${name} has shape [${info.shape.join(', ')}], expected [${shape.join(', ')}] from the config`);
      }
      const t = gpu.keep(gpu.tensor(reader.readFloat32(name), shape, dtype));
      t.requiresGrad = trainable;
      this.parameters.set(name, t);
      return t;
    };
    const linear = (name: string, outFeatures: number, inFeatures: number): Linear => {
      const bias = reader.has(`${name}.bias`) ? load(`${name}.bias`, 'f32', [outFeatures]) : null;
      return new Linear(name, load(`${name}.weight`, matrixDtype, [outFeatures, inFeatures]), bias);
    };
    const c = config;
    const qDim = c.num_attention_heads * c.head_dim;
    const kvDim = c.num_key_value_heads * c.head_dim;
    this.embedTokens = load('model.embed_tokens.weight', matrixDtype, [c.vocab_size, c.hidden_size]);
    for (let i = 0; i < c.num_hidden_layers; i++) {
      const p = `model.layers.${i}`;
      this.layers.push({
        inputNorm: load(`${p}.input_layernorm.weight`, 'f32', [c.hidden_size]),
        q: linear(`${p}.self_attn.q_proj`, qDim, c.hidden_size),
        k: linear(`${p}.self_attn.k_proj`, kvDim, c.hidden_size),
        v: linear(`${p}.self_attn.v_proj`, kvDim, c.hidden_size),
        o: linear(`${p}.self_attn.o_proj`, c.hidden_size, qDim),
        postAttentionNorm: load(`${p}.post_attention_layernorm.weight`, 'f32', [c.hidden_size]),
        gate: linear(`${p}.mlp.gate_proj`, c.intermediate_size, c.hidden_size),
        up: linear(`${p}.mlp.up_proj`, c.intermediate_size, c.hidden_size),
        down: linear(`${p}.mlp.down_proj`, c.hidden_size, c.intermediate_size),
      });
    }
    this.finalNorm = load('model.norm.weight', 'f32', [c.hidden_size]);
    const tied = c.tie_word_embeddings || !reader.has('lm_head.weight');
    this.lmHead = tied ? new Linear('lm_head', this.embedTokens) : linear('lm_head', c.vocab_size, c.hidden_size);
  }

  /** Token ids [B, T] (u32) → final hidden states [B·T, hidden] (after the last RMSNorm). */
  forward(ids: Tensor, options: ForwardOptions): Tensor {
    const [batch, steps] = ids.shape;
    // Without autograd nothing needs a layer's intermediates afterwards: free them layer by layer,
    // so inference (generation, reference log-probs) holds one layer's worth at a time.
    const inference = !isGradEnabled();
    let x = embedding(view(ids, [batch * steps]), this.embedTokens);
    const collected = options.keyValuesOut;
    if (collected && (collected.keys.length || collected.values.length)) throw new Error('LlamaModel.forward: keyValuesOut must start empty');
    if (options.prefix && options.cache) throw new Error('LlamaModel.forward: a shared prefix is for training; generation reads its KV cache');
    this.layers.forEach((layer, i) => {
      const input = x;
      // Collected keys and values are returned from the layer so that its tidy lets them live.
      const run = () => ({ out: this.decoderLayer(layer, i, input, batch, steps, options), k: collected?.keys[i], v: collected?.values[i] });
      x = (inference ? this.gpu.tidy(run) : run()).out;
      if (inference) input.dispose();
    });
    if (options.cache) options.cache.length += steps;
    return rmsnorm(x, this.finalNorm, this.config.rms_norm_eps);
  }

  private decoderLayer(layer: DecoderLayer, i: number, x: Tensor, batch: number, steps: number, options: ForwardOptions): Tensor {
    const c = this.config;
    const rows = batch * steps;
    const { cache } = options;
    const h = rmsnorm(x, layer.inputNorm, c.rms_norm_eps);
    const q = rope(view(layer.q.forward(h), [batch, steps, c.num_attention_heads, c.head_dim]), options.positions, { theta: c.rope_theta });
    const k = rope(view(layer.k.forward(h), [batch, steps, c.num_key_value_heads, c.head_dim]), options.positions, { theta: c.rope_theta });
    const v = view(layer.v.forward(h), [batch, steps, c.num_key_value_heads, c.head_dim]);
    options.keyValuesOut?.keys.push(k);
    options.keyValuesOut?.values.push(v);
    let attended: Tensor;
    const { prefix } = options;
    if (cache) {
      cache.write(i, k, v);
      attended = attention(q, cache.keys[i], cache.values[i], { kvLength: cache.length + steps, keyStart: options.keyStart });
    } else if (prefix) {
      const keys = concat([repeatRows(prefix.keys[i], prefix.rows), k], 1);
      const values = concat([repeatRows(prefix.values[i], prefix.rows), v], 1);
      attended = attention(q, keys, values, { keyStart: options.keyStart });
    } else {
      attended = attention(q, k, v, { keyStart: options.keyStart });
    }
    const afterAttention = add(x, layer.o.forward(view(attended, [rows, c.num_attention_heads * c.head_dim])));
    const m = rmsnorm(afterAttention, layer.postAttentionNorm, c.rms_norm_eps);
    return add(afterAttention, layer.down.forward(swiglu(layer.gate.forward(m), layer.up.forward(m))));
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
