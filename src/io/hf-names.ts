// llama.cpp's tensor names (gguf-py's tensor_mapping.py, MODEL_TENSOR names) for Llama-shaped
// decoders, and the Hugging Face parameter names the same tensors have in transformers.

const GLOBAL_NAMES: Readonly<Record<string, string>> = {
  token_embd: 'model.embed_tokens',
  output_norm: 'model.norm',
  output: 'lm_head',
};

const BLOCK_NAMES: Readonly<Record<string, string>> = {
  attn_norm: 'input_layernorm',
  attn_q: 'self_attn.q_proj',
  attn_k: 'self_attn.k_proj',
  attn_v: 'self_attn.v_proj',
  attn_output: 'self_attn.o_proj',
  ffn_norm: 'post_attention_layernorm',
  ffn_gate: 'mlp.gate_proj',
  ffn_up: 'mlp.up_proj',
  ffn_down: 'mlp.down_proj',
};

/**
 * Tensors llama.cpp stores that have no Hugging Face parameter: `rope_freqs` holds RoPE frequency
 * factors that transformers recomputes from the config.
 */
const DERIVED_TENSORS = new Set(['rope_freqs.weight']);

const BLOCK_PATTERN = /^blk\.(\d+)\.([a-z_]+)\.(weight|bias)$/;
const GLOBAL_PATTERN = /^([a-z_]+)\.(weight|bias)$/;

/**
 * The Hugging Face name for a GGUF tensor name, `null` for tensors with no HF counterpart, and
 * `undefined` for names this mapping does not know.
 */
export function ggufToHfName(name: string): string | null | undefined {
  if (DERIVED_TENSORS.has(name)) return null;
  const block = BLOCK_PATTERN.exec(name);
  if (block) {
    const mapped = BLOCK_NAMES[block[2]];
    return mapped === undefined ? undefined : `model.layers.${block[1]}.${mapped}.${block[3]}`;
  }
  const global = GLOBAL_PATTERN.exec(name);
  if (global) {
    const mapped = GLOBAL_NAMES[global[1]];
    return mapped === undefined ? undefined : `${mapped}.${global[2]}`;
  }
  return undefined;
}
