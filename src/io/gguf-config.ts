// A Hugging Face-style config rebuilt from a GGUF file's metadata (the file ships no config.json),
// with the keys transformers' GGUF loader reads for these architectures.

import type { GgufFile } from './gguf.js';
import { auditHfConfig, type HfModelConfig, type SupportedArchitecture } from './hf-config.js';

const GGUF_ARCHITECTURES: Readonly<Record<string, { architecture: SupportedArchitecture; modelType: string }>> = {
  llama: { architecture: 'LlamaForCausalLM', modelType: 'llama' },
  qwen2: { architecture: 'Qwen2ForCausalLM', modelType: 'qwen2' },
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

/**
 * The config.json transformers' GGUF loader would write for this file, read through the same
 * audit as a checkpoint's own config.json.
 */
export function configFromGguf(file: GgufFile): HfModelConfig {
  const arch = ggufArchitecture(file);
  const { architecture, modelType } = GGUF_ARCHITECTURES[arch];
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
  const scaling = file.get(`${arch}.rope.scaling.type`);
  if (scaling !== undefined && scaling !== 'none') {
    throw new Error(`${file.name}: metadata "${arch}.rope.scaling.type" ${JSON.stringify(String(scaling))} is not supported`);
  }
  // llama.cpp stores Llama 3.1-style RoPE frequency factors as a tensor instead of metadata.
  if (file.has('rope_freqs.weight')) {
    throw new Error(`${file.name}: tensor "rope_freqs.weight" (RoPE frequency factors, e.g. Llama 3 rope scaling) is not supported from GGUF; load the Hugging Face checkpoint instead`);
  }

  const hidden = required('embedding_length');
  const heads = required('attention.head_count');
  const tokens = file.get('tokenizer.ggml.tokens');
  const vocab = number(`${arch}.vocab_size`) ?? (Array.isArray(tokens) ? tokens.length : undefined);
  if (vocab === undefined) throw new Error(`${file.name}: neither "${arch}.vocab_size" nor a tokenizer vocabulary states the vocabulary size`);
  const config = {
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
    bos_token_id: number('tokenizer.ggml.bos_token_id') ?? null,
    eos_token_id: number('tokenizer.ggml.eos_token_id') ?? null,
  };
  return auditHfConfig(config, file.name).config;
}
