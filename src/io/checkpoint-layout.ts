import type { HfModelConfig } from './hf-config.js';
import type { TensorReader } from './tensor-reader.js';

/**
 * Every parameter the decoder a config describes has, by Hugging Face name, with its shape —
 * exactly the modules transformers builds for that config (biases only where the class has them,
 * q/k norms for Qwen3, lm_head only when untied).
 */
export function expectedParameterShapes(config: HfModelConfig): Map<string, number[]> {
  const c = config;
  const h = c.hidden_size;
  const q = c.num_attention_heads * c.head_dim;
  const kv = c.num_key_value_heads * c.head_dim;
  const shapes = new Map<string, number[]>([['model.embed_tokens.weight', [c.vocab_size, h]]]);
  const linear = (name: string, out: number, inFeatures: number, bias: boolean) => {
    shapes.set(`${name}.weight`, [out, inFeatures]);
    if (bias) shapes.set(`${name}.bias`, [out]);
  };
  for (let i = 0; i < c.num_hidden_layers; i++) {
    const p = `model.layers.${i}`;
    shapes.set(`${p}.input_layernorm.weight`, [h]);
    linear(`${p}.self_attn.q_proj`, q, h, c.attention_bias);
    linear(`${p}.self_attn.k_proj`, kv, h, c.attention_bias);
    linear(`${p}.self_attn.v_proj`, kv, h, c.attention_bias);
    linear(`${p}.self_attn.o_proj`, h, q, c.o_proj_bias);
    if (c.qk_norm) {
      shapes.set(`${p}.self_attn.q_norm.weight`, [c.head_dim]);
      shapes.set(`${p}.self_attn.k_norm.weight`, [c.head_dim]);
    }
    shapes.set(`${p}.post_attention_layernorm.weight`, [h]);
    linear(`${p}.mlp.gate_proj`, c.intermediate_size, h, c.mlp_bias);
    linear(`${p}.mlp.up_proj`, c.intermediate_size, h, c.mlp_bias);
    linear(`${p}.mlp.down_proj`, h, c.intermediate_size, c.mlp_bias);
  }
  shapes.set('model.norm.weight', [h]);
  if (!c.tie_word_embeddings) shapes.set('lm_head.weight', [c.vocab_size, h]);
  return shapes;
}

/** Buffers older checkpoints saved that transformers recomputes and ignores. */
const IGNORED_TENSOR = /^model\.layers\.\d+\.self_attn\.rotary_emb\.inv_freq$/;

const LAYER = /^model\.layers\.(\d+)\./;

function listed(names: readonly string[]): string {
  const shown = names.slice(0, 6).join(', ');
  return names.length > 6 ? `${shown} and ${names.length - 6} more` : shown;
}

/**
 * Compares a checkpoint's tensor names and shapes (headers only) with what the config describes,
 * so a mismatch fails by name before any weight is read. A tied checkpoint may also carry
 * lm_head.weight (the loader then compares it with the embedding).
 */
export function checkCheckpointTensors(config: HfModelConfig, reader: TensorReader, configSource = 'config.json'): void {
  const expected = expectedParameterShapes(config);
  const present = reader.tensorNames().filter((name) => !IGNORED_TENSOR.test(name));
  const layersInWeights = new Set(present.flatMap((name) => LAYER.exec(name)?.[1] ?? []).map(Number));
  if (layersInWeights.size !== config.num_hidden_layers || [...layersInWeights].some((i) => i >= config.num_hidden_layers)) {
    throw new Error(
      `${reader.name}: the weights hold ${layersInWeights.size} decoder layers (${listed([...layersInWeights].sort((a, b) => a - b).map((i) => `model.layers.${i}`))}) but ${configSource} has num_hidden_layers ${config.num_hidden_layers}`,
    );
  }
  const missing = [...expected.keys()].filter((name) => !reader.has(name));
  if (missing.length) {
    throw new Error(`${reader.name}: missing ${missing.length} tensor(s) that ${configSource} implies: ${listed(missing)}`);
  }
  const allowed = (name: string) => expected.has(name) || (name === 'lm_head.weight' && config.tie_word_embeddings);
  const unexpected = present.filter((name) => !allowed(name));
  if (unexpected.length) {
    throw new Error(`${reader.name}: ${unexpected.length} tensor(s) that ${configSource} does not describe (the model would ignore them): ${listed(unexpected)}`);
  }
  for (const name of present) {
    const want = expected.get(name) ?? expected.get('model.embed_tokens.weight')!;
    const { shape } = reader.info(name);
    if (shape.length !== want.length || shape.some((d, i) => d !== want[i])) {
      throw new Error(`${reader.name}: ${name} has shape [${shape.join(', ')}], expected [${want.join(', ')}] from ${configSource}`);
    }
  }
}
