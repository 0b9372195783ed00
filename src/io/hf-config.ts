import { readFileSync } from 'node:fs';
import { parseRopeScaling, type RopeScaling } from './rope-scaling.js';

/** Causal-LM architectures the trainer's model code implements (all Llama-shaped decoders). */
export const SUPPORTED_ARCHITECTURES = ['LlamaForCausalLM', 'Qwen2ForCausalLM', 'MistralForCausalLM', 'Qwen3ForCausalLM'] as const;
export type SupportedArchitecture = (typeof SUPPORTED_ARCHITECTURES)[number];

export type LayerType = 'full_attention' | 'sliding_attention';

/**
 * Everything in a Hugging Face `config.json` that decides what a supported model computes, with
 * defaults and derived values filled in exactly as transformers fills them, so model code never
 * has to guess.
 */
export interface HfModelConfig {
  architectures: [SupportedArchitecture];
  model_type: string;
  hidden_size: number;
  intermediate_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  num_key_value_heads: number;
  head_dim: number;
  rms_norm_eps: number;
  rope_theta: number;
  /** How the rotary frequencies are derived from rope_theta (transformers' `rope_type`). */
  rope_scaling: RopeScaling;
  vocab_size: number;
  max_position_embeddings: number;
  tie_word_embeddings: boolean;
  /** Whether q/k/v projections carry a bias (Qwen2 always; Llama and Qwen3 by `attention_bias`). */
  attention_bias: boolean;
  /** Whether the output projection carries a bias (Llama and Qwen3 by `attention_bias`). */
  o_proj_bias: boolean;
  /** Whether gate/up/down carry a bias (Llama's `mlp_bias`). */
  mlp_bias: boolean;
  /** Qwen3: an RMSNorm over each head of q and k (weights [head_dim]) before RoPE. */
  qk_norm: boolean;
  /** Per layer: full causal attention, or causal attention over the last `sliding_window` keys. */
  layer_types: LayerType[];
  /** Keys a sliding-attention query sees, itself included; null when no layer slides. */
  sliding_window: number | null;
  hidden_act: string;
  bos_token_id: number | null;
  eos_token_id: number | number[] | null;
}

export interface ConfigAudit {
  config: HfModelConfig;
  /** Fields the loader has never seen for this architecture (they were not used). */
  warnings: string[];
}

function isSupported(name: unknown): name is SupportedArchitecture {
  return (SUPPORTED_ARCHITECTURES as readonly unknown[]).includes(name);
}

/** Checks the architecture before anything else, so an unsupported model fails with that reason. */
export function requireSupportedArchitecture(architectures: unknown, source: string): SupportedArchitecture {
  const list = Array.isArray(architectures) ? architectures : [];
  const supported = list.find(isSupported);
  if (!supported) {
    throw new Error(
      `${source}: unsupported architecture ${JSON.stringify(architectures ?? null)}; supported: ${SUPPORTED_ARCHITECTURES.join(', ')}`,
    );
  }
  return supported;
}

/** Fields that never change what the network computes (bookkeeping, generation defaults, labels). */
const METADATA_FIELDS = new Set([
  'architectures', 'model_type', 'transformers_version', 'torch_dtype', 'dtype', '_name_or_path', 'use_cache',
  'initializer_range', 'pad_token_id', 'bos_token_id', 'eos_token_id', 'sep_token_id', 'decoder_start_token_id',
  'output_attentions', 'output_hidden_states', 'return_dict', 'use_return_dict', 'torchscript', 'id2label', 'label2id',
  'problem_type', 'is_encoder_decoder', 'is_decoder', 'add_cross_attention', 'tie_encoder_decoder',
  'chunk_size_feed_forward', 'tokenizer_class', 'prefix', 'task_specific_params', 'finetuning_task', 'auto_map',
  'max_length', 'min_length', 'do_sample', 'early_stopping', 'num_beams', 'num_beam_groups', 'diversity_penalty',
  'temperature', 'top_k', 'top_p', 'typical_p', 'repetition_penalty', 'length_penalty', 'no_repeat_ngram_size',
  'encoder_no_repeat_ngram_size', 'bad_words_ids', 'num_return_sequences', 'output_scores', 'return_dict_in_generate',
  'forced_bos_token_id', 'forced_eos_token_id', 'remove_invalid_values', 'exponential_decay_length_penalty',
  'suppress_tokens', 'begin_suppress_tokens', 'max_new_tokens',
  // Tensor-parallel pretraining bookkeeping; transformers 5 no longer reads it.
  'pretraining_tp',
]);

/** Fields this loader reads for every supported architecture. */
const COMMON_FIELDS = [
  'hidden_size', 'intermediate_size', 'num_hidden_layers', 'num_attention_heads', 'num_key_value_heads', 'rms_norm_eps',
  'rope_theta', 'rope_scaling', 'rope_parameters', 'partial_rotary_factor', 'original_max_position_embeddings', 'vocab_size', 'max_position_embeddings',
  'tie_word_embeddings', 'hidden_act', 'attention_dropout',
];

/** Per architecture, the further fields its transformers class reads (and this loader implements). */
const ARCHITECTURE_FIELDS: Record<SupportedArchitecture, readonly string[]> = {
  LlamaForCausalLM: ['head_dim', 'attention_bias', 'mlp_bias'],
  MistralForCausalLM: ['head_dim', 'sliding_window'],
  Qwen2ForCausalLM: ['head_dim', 'use_sliding_window', 'sliding_window', 'max_window_layers', 'layer_types'],
  Qwen3ForCausalLM: ['head_dim', 'attention_bias', 'use_sliding_window', 'sliding_window', 'max_window_layers', 'layer_types'],
};

const inactive = (value: unknown): boolean =>
  value === null || value === false || value === 0 || (Array.isArray(value) && value.length === 0) ||
  (typeof value === 'object' && value !== null && Object.keys(value).length === 0);

/**
 * Fields that switch on computation none of the supported architectures has (soft-capping, q/k
 * norms of other families, multipliers, experts, quantization, windows on a class without one).
 * The supported classes in transformers would ignore them, so a checkpoint that sets them was made
 * for another model: refused unless the value is the neutral one.
 */
const FOREIGN_FIELDS: Record<string, (value: unknown) => boolean> = {
  attn_logit_softcapping: inactive,
  final_logit_softcapping: inactive,
  query_pre_attn_scalar: inactive,
  use_qk_norm: inactive,
  qk_layernorm: inactive,
  qk_norm: inactive,
  attention_multiplier: (v) => v === null || v === 1,
  embedding_multiplier: (v) => v === null || v === 1,
  residual_multiplier: (v) => v === null || v === 1,
  logits_scaling: (v) => v === null || v === 1,
  scale_emb: (v) => v === null || v === 1,
  scale_depth: (v) => v === null || v === 1,
  attention_chunk_size: inactive,
  no_rope_layers: inactive,
  num_experts: inactive,
  num_local_experts: inactive,
  num_experts_per_tok: inactive,
  moe_intermediate_size: inactive,
  use_parallel_residual: inactive,
  parallel_attn: inactive,
  quantization_config: (v) => v === null || v === undefined,
  pruned_heads: inactive,
  use_sliding_window: inactive,
  sliding_window: inactive,
  max_window_layers: () => true,
  layer_types: (v) => inactive(v) || (Array.isArray(v) && v.every((t) => t === 'full_attention')),
};

/** transformers' ACT2FN names whose function is SiLU, the only MLP activation implemented. */
const SILU_NAMES = new Set(['silu', 'swish']);

/**
 * Reads a parsed config.json the way transformers' class for its architecture reads it: every
 * field that changes the computation is implemented or refused here by name and value, before
 * any weight is read; fields this loader has never seen come back as warnings.
 */
export function auditHfConfig(json: unknown, source: string): ConfigAudit {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new Error(`${source}: config is not a JSON object`);
  const raw = json as Record<string, unknown>;
  const architecture = requireSupportedArchitecture(raw.architectures, source);
  const refuse = (key: string, why: string): never => {
    throw new Error(`${source}: "${key}": ${JSON.stringify(raw[key])} ${why}`);
  };

  const own = new Set([...COMMON_FIELDS, ...ARCHITECTURE_FIELDS[architecture]]);
  const unknown: string[] = [];
  for (const [key, value] of Object.entries(raw)) {
    if (own.has(key) || METADATA_FIELDS.has(key)) continue;
    if (Object.hasOwn(FOREIGN_FIELDS, key)) {
      if (!FOREIGN_FIELDS[key](value)) refuse(key, `is not supported for ${architecture} (transformers' ${architecture} does not implement it; the checkpoint was made for another architecture)`);
    } else {
      unknown.push(key);
    }
  }

  const positiveInt = (key: string, fallback?: number): number => {
    const value = raw[key] ?? fallback;
    if (!Number.isSafeInteger(value) || (value as number) <= 0) {
      throw new Error(`${source}: "${key}" must be a positive integer, got ${JSON.stringify(raw[key] ?? null)}`);
    }
    return value as number;
  };
  const positiveNumber = (key: string, fallback: number): number => {
    const value = raw[key] ?? fallback;
    if (typeof value !== 'number' || !(value > 0)) throw new Error(`${source}: "${key}" must be a positive number, got ${JSON.stringify(raw[key])}`);
    return value;
  };
  const flag = (key: string, fallback: boolean): boolean => {
    const value = raw[key] ?? fallback;
    if (typeof value !== 'boolean') throw new Error(`${source}: "${key}" must be true or false, got ${JSON.stringify(raw[key])}`);
    return value;
  };
  const tokenId = (key: string): number | null => {
    const value = raw[key];
    if (value === undefined || value === null) return null;
    if (!Number.isSafeInteger(value)) throw new Error(`${source}: "${key}" must be an integer or null`);
    return value as number;
  };

  const hiddenAct = raw.hidden_act ?? 'silu';
  if (typeof hiddenAct !== 'string' || !SILU_NAMES.has(hiddenAct)) refuse('hidden_act', `is not supported: the MLP implements SiLU ("silu" or "swish") only`);
  if (raw.attention_dropout !== undefined && raw.attention_dropout !== null && raw.attention_dropout !== 0) {
    refuse('attention_dropout', 'is not supported: attention has no dropout (only 0 is)');
  }

  const heads = positiveInt('num_attention_heads');
  const hidden = positiveInt('hidden_size');
  const layers = positiveInt('num_hidden_layers');
  const kvHeads = positiveInt('num_key_value_heads', heads);
  if (heads % kvHeads !== 0) refuse('num_key_value_heads', `must divide num_attention_heads (${heads})`);
  // Qwen3Config's head_dim defaults to 128; the others derive it from the hidden size.
  if (architecture !== 'Qwen3ForCausalLM' && raw.head_dim === undefined && hidden % heads !== 0) {
    refuse('hidden_size', `is not a multiple of num_attention_heads (${heads}) and no head_dim is given`);
  }
  const headDim = positiveInt('head_dim', architecture === 'Qwen3ForCausalLM' ? 128 : Math.floor(hidden / heads));
  const maxPositions = positiveInt('max_position_embeddings', architecture === 'LlamaForCausalLM' ? 2048 : architecture === 'MistralForCausalLM' ? 131072 : 32768);
  const rope = parseRopeScaling(raw, { source, maxPositions });

  const eos = raw.eos_token_id;
  if (!(eos === undefined || eos === null || Number.isSafeInteger(eos) || (Array.isArray(eos) && eos.every(Number.isSafeInteger)))) {
    throw new Error(`${source}: "eos_token_id" must be an integer, a list of integers or null`);
  }

  const qkvBias = architecture === 'Qwen2ForCausalLM' || (ARCHITECTURE_FIELDS[architecture].includes('attention_bias') && flag('attention_bias', false));
  const { layerTypes, slidingWindow } = attentionLayout(raw, architecture, layers, source);
  return {
    config: {
      architectures: [architecture],
      model_type: typeof raw.model_type === 'string' ? raw.model_type : architecture.replace('ForCausalLM', '').toLowerCase(),
      hidden_size: hidden,
      intermediate_size: positiveInt('intermediate_size'),
      num_hidden_layers: layers,
      num_attention_heads: heads,
      num_key_value_heads: kvHeads,
      head_dim: headDim,
      rms_norm_eps: positiveNumber('rms_norm_eps', 1e-6),
      rope_theta: rope.theta,
      rope_scaling: rope.scaling,
      vocab_size: positiveInt('vocab_size'),
      max_position_embeddings: maxPositions,
      tie_word_embeddings: flag('tie_word_embeddings', false),
      attention_bias: qkvBias,
      o_proj_bias: architecture !== 'Qwen2ForCausalLM' && qkvBias,
      mlp_bias: architecture === 'LlamaForCausalLM' && flag('mlp_bias', false),
      qk_norm: architecture === 'Qwen3ForCausalLM',
      layer_types: layerTypes,
      sliding_window: slidingWindow,
      hidden_act: hiddenAct as string,
      bos_token_id: tokenId('bos_token_id'),
      eos_token_id: (eos as number | number[] | null | undefined) ?? null,
    },
    warnings: unknown.length
      ? [`${source}: fields not known for ${architecture}, not used: ${unknown.map((k) => `${k}=${JSON.stringify(raw[k])}`).join(', ')}`]
      : [],
  };
}

/**
 * Which layers slide, with each class's own rules: Mistral slides every layer when
 * `sliding_window` is set; Qwen2/Qwen3 only with `use_sliding_window`, from layer
 * `max_window_layers` on, unless `layer_types` lists the layers; Llama never.
 */
function attentionLayout(raw: Record<string, unknown>, architecture: SupportedArchitecture, layers: number, source: string) {
  const windowValue = (key: string, value: unknown): number => {
    if (!Number.isSafeInteger(value) || (value as number) <= 0) throw new Error(`${source}: "${key}" must be a positive integer or null, got ${JSON.stringify(value)}`);
    return value as number;
  };
  if (architecture === 'LlamaForCausalLM') return { layerTypes: Array<LayerType>(layers).fill('full_attention'), slidingWindow: null };
  if (architecture === 'MistralForCausalLM') {
    const window = raw.sliding_window === undefined ? 4096 : raw.sliding_window;
    const slidingWindow = window === null ? null : windowValue('sliding_window', window);
    return { layerTypes: Array<LayerType>(layers).fill(slidingWindow === null ? 'full_attention' : 'sliding_attention'), slidingWindow };
  }
  const useWindow = raw.use_sliding_window ?? false;
  if (typeof useWindow !== 'boolean') throw new Error(`${source}: "use_sliding_window" must be true or false, got ${JSON.stringify(useWindow)}`);
  const window = raw.sliding_window === undefined ? 4096 : raw.sliding_window;
  const slidingWindow = useWindow && window !== null ? windowValue('sliding_window', window) : null;
  let layerTypes: LayerType[];
  if (raw.layer_types !== undefined && raw.layer_types !== null) {
    const listed = raw.layer_types;
    if (!Array.isArray(listed) || listed.length !== layers || !listed.every((t) => t === 'full_attention' || t === 'sliding_attention')) {
      throw new Error(`${source}: "layer_types" must list "full_attention" or "sliding_attention" for each of the ${layers} layers, got ${JSON.stringify(listed)}`);
    }
    layerTypes = listed as LayerType[];
  } else {
    const maxWindowLayers = raw.max_window_layers ?? 28;
    if (!Number.isSafeInteger(maxWindowLayers) || (maxWindowLayers as number) < 0) {
      throw new Error(`${source}: "max_window_layers" must be a non-negative integer, got ${JSON.stringify(maxWindowLayers)}`);
    }
    layerTypes = Array.from({ length: layers }, (_, i) => (slidingWindow !== null && i >= (maxWindowLayers as number) ? 'sliding_attention' : 'full_attention'));
  }
  if (slidingWindow === null && layerTypes.includes('sliding_attention')) {
    // transformers raises here too: a sliding layer needs a window.
    throw new Error(`${source}: "layer_types" has sliding_attention layers but no window is active (use_sliding_window ${JSON.stringify(raw.use_sliding_window ?? null)}, sliding_window ${JSON.stringify(raw.sliding_window ?? null)})`);
  }
  return { layerTypes, slidingWindow: layerTypes.includes('sliding_attention') ? slidingWindow : null };
}

/** The config transformers would build from this JSON; warnings are dropped (see auditHfConfig). */
export function parseHfConfig(json: unknown, source: string): HfModelConfig {
  return auditHfConfig(json, source).config;
}

export function readHfConfigAudit(path: string): ConfigAudit {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new Error(`${path}: cannot read model config (${(error as Error).message})`);
  }
  return auditHfConfig(json, path);
}

export function readHfConfig(path: string): HfModelConfig {
  return readHfConfigAudit(path).config;
}
