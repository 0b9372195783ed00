// A Hugging Face-style config rebuilt from a GGUF file's metadata (the file ships no config.json),
// with the keys transformers' GGUF loader reads for these architectures.

import type { GgufFile } from './gguf.js';
import type { HfModelConfig, SupportedArchitecture } from './hf-config.js';

const GGUF_ARCHITECTURES: Readonly<Record<string, { architecture: SupportedArchitecture; modelType: string; attentionBias: boolean }>> = {
  llama: { architecture: 'LlamaForCausalLM', modelType: 'llama', attentionBias: false },
  qwen2: { architecture: 'Qwen2ForCausalLM', modelType: 'qwen2', attentionBias: true },
};

/** The GGUF architecture name (`general.architecture`), checked against those we can load. */
export function ggufArchitecture(file: GgufFile): string {
  const name = file.get('general.architecture');
  if (typeof name !== 'string' || !Object.hasOwn(GGUF_ARCHITECTURES, name)) {
    throw new Error(
      `${file.name}: unsupported GGUF architecture ${JSON.stringify(name ?? null)}; supported: ${Object.keys(GGUF_ARCHITECTURES).join(', ')}`,
    );
  }
  return name;
}

export function configFromGguf(file: GgufFile): HfModelConfig {
  const arch = ggufArchitecture(file);
  const { architecture, modelType, attentionBias } = GGUF_ARCHITECTURES[arch];
  const number = (key: string): number | undefined => {
    const value = file.get(key);
    if (value === undefined) return undefined;
    if (typeof value !== 'number') throw new Error(`${file.name}: metadata "${key}" should be a number, got ${JSON.stringify(String(value))}`);
    return value;
  };
  const required = (key: string): number => {
    const value = number(`${arch}.${key}`);
    if (value === undefined) throw new Error(`${file.name}: metadata "${arch}.${key}" is missing`);
    return value;
  };
  if (file.get(`${arch}.rope.scaling.type`) !== undefined && file.get(`${arch}.rope.scaling.type`) !== 'none') {
    throw new Error(`${file.name}: RoPE scaling "${String(file.get(`${arch}.rope.scaling.type`))}" is not supported yet`);
  }

  const hidden = required('embedding_length');
  const heads = required('attention.head_count');
  const tokens = file.get('tokenizer.ggml.tokens');
  const vocab = number(`${arch}.vocab_size`) ?? (Array.isArray(tokens) ? tokens.length : undefined);
  if (vocab === undefined) throw new Error(`${file.name}: neither "${arch}.vocab_size" nor a tokenizer vocabulary states the vocabulary size`);
  return {
    architectures: [architecture],
    model_type: modelType,
    hidden_size: hidden,
    intermediate_size: required('feed_forward_length'),
    num_hidden_layers: required('block_count'),
    num_attention_heads: heads,
    num_key_value_heads: number(`${arch}.attention.head_count_kv`) ?? heads,
    head_dim: number(`${arch}.attention.key_length`) ?? number(`${arch}.rope.dimension_count`) ?? hidden / heads,
    rms_norm_eps: required('attention.layer_norm_rms_epsilon'),
    rope_theta: number(`${arch}.rope.freq_base`) ?? 10000,
    vocab_size: vocab,
    max_position_embeddings: required('context_length'),
    // llama.cpp writes the output projection only when it differs from the embedding matrix.
    tie_word_embeddings: !file.has('output.weight'),
    attention_bias: attentionBias,
    hidden_act: 'silu',
    bos_token_id: number('tokenizer.ggml.bos_token_id') ?? null,
    eos_token_id: number('tokenizer.ggml.eos_token_id') ?? null,
  };
}
