import { readFileSync } from 'node:fs';

/** Causal-LM architectures the trainer's model code implements (all Llama-shaped decoders). */
export const SUPPORTED_ARCHITECTURES = ['LlamaForCausalLM', 'Qwen2ForCausalLM', 'MistralForCausalLM'] as const;
export type SupportedArchitecture = (typeof SUPPORTED_ARCHITECTURES)[number];

/**
 * The subset of a Hugging Face `config.json` the trainer uses, with defaults filled in the way
 * transformers fills them, so model code never has to guess.
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
  vocab_size: number;
  max_position_embeddings: number;
  tie_word_embeddings: boolean;
  /** Whether q/k/v projections carry a bias (Qwen2 always does; Llama and Mistral by flag). */
  attention_bias: boolean;
  hidden_act: string;
  bos_token_id: number | null;
  eos_token_id: number | number[] | null;
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

/** Validates a parsed config.json; `source` names it in errors. */
export function parseHfConfig(json: unknown, source: string): HfModelConfig {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new Error(`${source}: config is not a JSON object`);
  const raw = json as Record<string, unknown>;
  const architecture = requireSupportedArchitecture(raw.architectures, source);

  const positiveInt = (key: string, fallback?: number): number => {
    const value = raw[key] ?? fallback;
    if (!Number.isSafeInteger(value) || (value as number) <= 0) {
      throw new Error(`${source}: "${key}" must be a positive integer, got ${JSON.stringify(raw[key] ?? null)}`);
    }
    return value as number;
  };
  const positiveNumber = (value: unknown, key: string): number => {
    if (typeof value !== 'number' || !(value > 0)) throw new Error(`${source}: "${key}" must be a positive number, got ${JSON.stringify(value ?? null)}`);
    return value;
  };
  const tokenId = (key: string): number | null => {
    const value = raw[key];
    if (value === undefined || value === null) return null;
    if (!Number.isSafeInteger(value)) throw new Error(`${source}: "${key}" must be an integer or null`);
    return value as number;
  };

  if (raw.rope_scaling !== undefined && raw.rope_scaling !== null) {
    throw new Error(`${source}: rope_scaling ${JSON.stringify(raw.rope_scaling)} is not supported yet`);
  }
  const heads = positiveInt('num_attention_heads');
  const hidden = positiveInt('hidden_size');
  // transformers 5 moved rope_theta into rope_parameters; accept either spelling.
  const ropeParameters = raw.rope_parameters as { rope_theta?: unknown; rope_type?: unknown } | undefined;
  if (ropeParameters?.rope_type !== undefined && ropeParameters.rope_type !== 'default') {
    throw new Error(`${source}: rope type ${JSON.stringify(ropeParameters.rope_type)} is not supported yet`);
  }
  const eos = raw.eos_token_id;
  if (!(eos === undefined || eos === null || Number.isSafeInteger(eos) || (Array.isArray(eos) && eos.every(Number.isSafeInteger)))) {
    throw new Error(`${source}: "eos_token_id" must be an integer, a list of integers or null`);
  }

  return {
    architectures: [architecture],
    model_type: typeof raw.model_type === 'string' ? raw.model_type : architecture.replace('ForCausalLM', '').toLowerCase(),
    hidden_size: hidden,
    intermediate_size: positiveInt('intermediate_size'),
    num_hidden_layers: positiveInt('num_hidden_layers'),
    num_attention_heads: heads,
    num_key_value_heads: positiveInt('num_key_value_heads', heads),
    head_dim: positiveInt('head_dim', hidden / heads),
    rms_norm_eps: positiveNumber(raw.rms_norm_eps ?? 1e-6, 'rms_norm_eps'),
    rope_theta: positiveNumber(raw.rope_theta ?? ropeParameters?.rope_theta ?? 10000, 'rope_theta'),
    vocab_size: positiveInt('vocab_size'),
    max_position_embeddings: positiveInt('max_position_embeddings', 2048),
    tie_word_embeddings: raw.tie_word_embeddings === true,
    attention_bias: architecture === 'Qwen2ForCausalLM' || raw.attention_bias === true,
    hidden_act: typeof raw.hidden_act === 'string' ? raw.hidden_act : 'silu',
    bos_token_id: tokenId('bos_token_id'),
    eos_token_id: (eos as number | number[] | null | undefined) ?? null,
  };
}

export function readHfConfig(path: string): HfModelConfig {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new Error(`${path}: cannot read model config (${(error as Error).message})`);
  }
  return parseHfConfig(json, path);
}
