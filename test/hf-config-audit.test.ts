import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { noGrad } from '../src/autograd/grad-node.js';
import { auditHfConfig, parseHfConfig } from '../src/io/hf-config.js';
import { resolveModel } from '../src/io/model-registry.js';
import { SafetensorsFile } from '../src/io/safetensors.js';
import { writeSafetensors } from '../src/io/safetensors-writer.js';
import { checkCheckpointTensors } from '../src/io/checkpoint-layout.js';
import { initialLlamaWeights } from '../src/io/random-weights.js';
import { LlamaModel } from '../src/model/llama.js';
import { useGpu } from './helpers/gpu.js';

const gpu = useGpu();

const base = {
  hidden_size: 32, intermediate_size: 48, num_hidden_layers: 3, num_attention_heads: 4, num_key_value_heads: 2,
  vocab_size: 40, max_position_embeddings: 64, rms_norm_eps: 1e-5, rope_theta: 10000,
};
const llama = { architectures: ['LlamaForCausalLM'], ...base };
const mistral = { architectures: ['MistralForCausalLM'], ...base };
const qwen2 = { architectures: ['Qwen2ForCausalLM'], ...base };
const qwen3 = { architectures: ['Qwen3ForCausalLM'], ...base, head_dim: 8 };

describe('config audit: every unsupported value is refused by name and value', () => {
  const refusals: [string, Record<string, unknown>, RegExp][] = [
    ['hidden_act gelu', { ...llama, hidden_act: 'gelu' }, /"hidden_act": "gelu" is not supported: the MLP implements SiLU/],
    ['hidden_act relu on Qwen3', { ...qwen3, hidden_act: 'relu' }, /"hidden_act": "relu" is not supported/],
    ['attention dropout', { ...qwen2, attention_dropout: 0.1 }, /"attention_dropout": 0.1 is not supported: attention has no dropout/],
    ['longrope', { ...llama, rope_scaling: { rope_type: 'longrope', long_factor: [1], short_factor: [1] } }, /"rope_scaling" rope_type "longrope" is not supported/],
    ['legacy "type" spelling', { ...llama, rope_scaling: { type: 'su', factor: 2 } }, /"rope_scaling" rope_type "su" is not supported/],
    ['proportional rope in rope_parameters', { ...qwen3, rope_parameters: { rope_type: 'proportional', rope_theta: 1e6 } }, /"rope_parameters" rope_type "proportional" is not supported/],
    ['partial rotary factor at the top level', { ...llama, partial_rotary_factor: 0.5 }, /partial_rotary_factor 0\.5 is not supported/],
    ['partial rotary factor inside rope_parameters', { ...llama, rope_parameters: { rope_type: 'default', rope_theta: 1e4, partial_rotary_factor: 0.25 } }, /partial_rotary_factor 0\.25 is not supported/],
    ['llama3 without its frequency factors', { ...llama, rope_scaling: { rope_type: 'llama3', factor: 8 } }, /"rope_scaling" low_freq_factor must be a positive number for rope_type "llama3", got null/],
    ['linear rope with a yarn parameter', { ...llama, rope_scaling: { rope_type: 'linear', factor: 2, beta_fast: 32 } }, /"rope_scaling" has parameters beta_fast=32 that rope_type "linear" does not use/],
    ['dynamic rope without a factor', { ...qwen2, rope_parameters: { rope_type: 'dynamic' } }, /"rope_parameters" factor must be a positive number for rope_type "dynamic", got null/],
    ['default rope with stray parameters', { ...llama, rope_parameters: { rope_type: 'default', factor: 8 } }, /"rope_parameters" has parameters factor=8 that rope_type "default" does not use/],
    ['final logit soft-capping', { ...llama, final_logit_softcapping: 30 }, /"final_logit_softcapping": 30 is not supported for LlamaForCausalLM/],
    ['attention logit soft-capping', { ...qwen2, attn_logit_softcapping: 50 }, /"attn_logit_softcapping": 50 is not supported for Qwen2ForCausalLM/],
    ['a q/k norm flag of another family', { ...llama, use_qk_norm: true }, /"use_qk_norm": true is not supported for LlamaForCausalLM/],
    ['Granite multipliers', { ...llama, residual_multiplier: 0.22 }, /"residual_multiplier": 0\.22 is not supported/],
    ['experts', { ...mistral, num_local_experts: 8 }, /"num_local_experts": 8 is not supported for MistralForCausalLM/],
    ['quantized weights', { ...llama, quantization_config: { quant_method: 'gptq', bits: 4 } }, /"quantization_config": \{"quant_method":"gptq","bits":4\} is not supported/],
    ['a sliding window on Llama', { ...llama, sliding_window: 16 }, /"sliding_window": 16 is not supported for LlamaForCausalLM/],
    ['use_sliding_window on Mistral', { ...mistral, use_sliding_window: true }, /"use_sliding_window": true is not supported for MistralForCausalLM/],
    ['layer_types on Mistral', { ...mistral, layer_types: ['full_attention', 'sliding_attention', 'full_attention'] }, /"layer_types": \["full_attention","sliding_attention","full_attention"\] is not supported for MistralForCausalLM/],
    ['sliding layers without an active window', { ...qwen2, layer_types: ['full_attention', 'sliding_attention', 'full_attention'] }, /"layer_types" has sliding_attention layers but no window is active \(use_sliding_window null, sliding_window null\)/],
    ['layer_types of the wrong length', { ...qwen3, use_sliding_window: true, sliding_window: 4, layer_types: ['full_attention'] }, /"layer_types" must list "full_attention" or "sliding_attention" for each of the 3 layers/],
    ['a window of 0', { ...mistral, sliding_window: 0 }, /"sliding_window" must be a positive integer or null, got 0/],
    ['kv heads that do not divide the heads', { ...llama, num_key_value_heads: 3 }, /"num_key_value_heads": 3 must divide num_attention_heads \(4\)/],
    ['hidden size not a multiple of the heads, no head_dim', { ...llama, hidden_size: 30 }, /"hidden_size": 30 is not a multiple of num_attention_heads \(4\) and no head_dim is given/],
    ['a missing size', { ...llama, intermediate_size: undefined }, /"intermediate_size" must be a positive integer, got null/],
    ['an unsupported architecture', { ...llama, architectures: ['Gemma2ForCausalLM'] }, /unsupported architecture \["Gemma2ForCausalLM"\]; supported: LlamaForCausalLM, Qwen2ForCausalLM, MistralForCausalLM, Qwen3ForCausalLM/],
  ];
  for (const [name, config, message] of refusals) {
    it(name, () => {
      expect(() => parseHfConfig(config, 'm/config.json')).toThrow(message);
      expect(() => parseHfConfig(config, 'm/config.json')).toThrow(/^m\/config\.json: /);
    });
  }
});

describe('config audit: what each architecture computes', () => {
  it('Mistral slides every layer: sliding_window set, null, or absent (transformers defaults it to 4096)', () => {
    expect(parseHfConfig({ ...mistral, sliding_window: 7 }, 'c')).toMatchObject({ sliding_window: 7, layer_types: Array(3).fill('sliding_attention') });
    expect(parseHfConfig({ ...mistral, sliding_window: null }, 'c')).toMatchObject({ sliding_window: null, layer_types: Array(3).fill('full_attention') });
    expect(parseHfConfig(mistral, 'c')).toMatchObject({ sliding_window: 4096, layer_types: Array(3).fill('sliding_attention') });
  });

  it('Qwen2/Qwen3 slide only with use_sliding_window, from max_window_layers on, or as layer_types says', () => {
    for (const arch of [qwen2, qwen3]) {
      expect(parseHfConfig({ ...arch, sliding_window: 5, max_window_layers: 1 }, 'c')).toMatchObject({ sliding_window: null, layer_types: Array(3).fill('full_attention') });
      expect(parseHfConfig({ ...arch, use_sliding_window: true, sliding_window: 5, max_window_layers: 1 }, 'c')).toMatchObject({
        sliding_window: 5,
        layer_types: ['full_attention', 'sliding_attention', 'sliding_attention'],
      });
      // The default max_window_layers (28) leaves every layer of a small model full.
      expect(parseHfConfig({ ...arch, use_sliding_window: true, sliding_window: 5 }, 'c')).toMatchObject({ sliding_window: null, layer_types: Array(3).fill('full_attention') });
      const listed = ['sliding_attention', 'full_attention', 'sliding_attention'];
      expect(parseHfConfig({ ...arch, use_sliding_window: true, sliding_window: 3, layer_types: listed }, 'c')).toMatchObject({ sliding_window: 3, layer_types: listed });
    }
  });

  it('biases, head_dim and q/k norms follow each class', () => {
    expect(parseHfConfig(llama, 'c')).toMatchObject({ head_dim: 8, attention_bias: false, o_proj_bias: false, mlp_bias: false, qk_norm: false });
    expect(parseHfConfig({ ...llama, attention_bias: true, mlp_bias: true }, 'c')).toMatchObject({ attention_bias: true, o_proj_bias: true, mlp_bias: true });
    expect(parseHfConfig(qwen2, 'c')).toMatchObject({ attention_bias: true, o_proj_bias: false, mlp_bias: false, qk_norm: false });
    expect(parseHfConfig({ ...qwen2, head_dim: 16 }, 'c').head_dim).toBe(16);
    expect(parseHfConfig({ ...qwen3, attention_bias: true }, 'c')).toMatchObject({ head_dim: 8, attention_bias: true, o_proj_bias: true, qk_norm: true });
    // Qwen3Config's head_dim defaults to 128 whatever the hidden size.
    expect(parseHfConfig({ ...qwen3, head_dim: undefined }, 'c').head_dim).toBe(128);
    expect(parseHfConfig({ ...mistral, hidden_act: 'swish' }, 'c').hidden_act).toBe('swish');
  });

  it('reads every supported rope type with transformers\' defaults', () => {
    expect(parseHfConfig({ ...llama, rope_scaling: { rope_type: 'llama3', factor: 32, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 }, rope_theta: 5e5 }, 'c')).toMatchObject({
      rope_theta: 5e5,
      rope_scaling: { rope_type: 'llama3', factor: 32, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 },
    });
    expect(parseHfConfig({ ...llama, rope_scaling: { type: 'linear', factor: 2 } }, 'c').rope_scaling).toEqual({ rope_type: 'linear', factor: 2 });
    // yarn: original length defaults to max_position_embeddings (a top-level value wins), betas 32/1, attention factor 0.1·ln(factor) + 1.
    expect(parseHfConfig({ ...qwen2, rope_scaling: { rope_type: 'yarn', factor: 4 } }, 'c').rope_scaling).toEqual({
      rope_type: 'yarn', factor: 4, original_max_position_embeddings: 64, beta_fast: 32, beta_slow: 1, truncate: true, attention_factor: 0.1 * Math.log(4) + 1,
    });
    expect(parseHfConfig({ ...qwen2, original_max_position_embeddings: 16, rope_scaling: { rope_type: 'yarn', factor: 4, original_max_position_embeddings: 32 } }, 'c').rope_scaling).toMatchObject({ original_max_position_embeddings: 16 });
  });

  it('reads rope_theta from either spelling', () => {
    expect(parseHfConfig({ ...llama, rope_theta: undefined, rope_parameters: { rope_type: 'default', rope_theta: 5e5 } }, 'c').rope_theta).toBe(5e5);
    expect(parseHfConfig({ ...llama, rope_scaling: null, rope_theta: 1e6 }, 'c').rope_theta).toBe(1e6);
  });

  it('warns about fields it has never seen, listing them, and is quiet about metadata', () => {
    const { warnings } = auditHfConfig({ ...qwen2, torch_dtype: 'bfloat16', transformers_version: '4.51', use_cache: true, my_flag: 1, other: 'x' }, 'm/config.json');
    expect(warnings).toEqual(['m/config.json: fields not known for Qwen2ForCausalLM, not used: my_flag=1, other="x"']);
    expect(auditHfConfig({ ...llama, torch_dtype: 'float32', pretraining_tp: 1, initializer_range: 0.02 }, 'c').warnings).toEqual([]);
    // Neutral values of foreign fields are accepted quietly: they ask for nothing.
    expect(auditHfConfig({ ...llama, sliding_window: null, use_sliding_window: false, max_window_layers: 28, layer_types: Array(3).fill('full_attention'), final_logit_softcapping: null }, 'c').warnings).toEqual([]);
  });
});

describe('checkpoint tensors against the config, before any weight is read', () => {
  const dir = mkdtempSync(join(tmpdir(), 'config-audit-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const weightsFor = (config: Record<string, unknown>, name: string, edit?: (w: Record<string, ReturnType<typeof initialLlamaWeights>[string]>) => void) => {
    const weights = { ...initialLlamaWeights(parseHfConfig(config, 'w'), 1) };
    edit?.(weights);
    const path = join(dir, `${name}.safetensors`);
    writeSafetensors(path, weights);
    return SafetensorsFile.open(path);
  };
  const check = (config: Record<string, unknown>, reader: SafetensorsFile) => () => {
    try {
      checkCheckpointTensors(parseHfConfig(config, 'c'), reader);
    } finally {
      reader.close();
    }
  };

  it('refuses a config with fewer or more layers than the weights', () => {
    expect(check({ ...llama, num_hidden_layers: 2 }, weightsFor(llama, 'three-layers'))).toThrow(
      /three-layers\.safetensors: the weights hold 3 decoder layers \(model\.layers\.0, model\.layers\.1, model\.layers\.2\) but config\.json has num_hidden_layers 2/,
    );
    expect(check({ ...llama, num_hidden_layers: 4 }, weightsFor(llama, 'three-again'))).toThrow(/the weights hold 3 decoder layers .* but config\.json has num_hidden_layers 4/);
  });

  it('refuses missing and unexpected tensors by name, and wrong shapes', () => {
    expect(check(qwen2, weightsFor(llama, 'no-bias'))).toThrow(/missing 9 tensor\(s\) that config\.json implies: model\.layers\.0\.self_attn\.q_proj\.bias, /);
    expect(check(llama, weightsFor(qwen2, 'extra-bias'))).toThrow(/9 tensor\(s\) that config\.json does not describe \(the model would ignore them\): model\.layers\.0\.self_attn\.k_proj\.bias, model\.layers\.0\.self_attn\.q_proj\.bias, .* and 3 more/);
    expect(check({ ...llama, tie_word_embeddings: false }, weightsFor({ ...llama, tie_word_embeddings: true }, 'no-head'))).toThrow(/missing 1 tensor\(s\) that config\.json implies: lm_head\.weight/);
    expect(check(qwen3, weightsFor({ ...qwen3, head_dim: 4 }, 'head-dim'))).toThrow(/head-dim\.safetensors: model\.layers\.0\.self_attn\.k_norm\.weight has shape \[4\], expected \[8\] from config\.json/);
    expect(check({ ...llama, tie_word_embeddings: true }, weightsFor({ ...llama, tie_word_embeddings: false }, 'tied-with-head'))).not.toThrow();
  });

  it('refuses a head_dim the attention kernels do not take, before reading weights', () => {
    const config = { ...llama, hidden_size: 24, head_dim: 6 };
    const reader = weightsFor(config, 'head-dim-6');
    try {
      expect(() => new LlamaModel(gpu(), parseHfConfig(config, 'c'), reader)).toThrow(/head-dim-6\.safetensors: head_dim 6 is not supported: the attention kernels take multiples of 4 up to 128/);
    } finally {
      reader.close();
    }
  });

  it('a tied config whose checkpoint also stores lm_head: shared when equal, separate when not (as transformers)', () => {
    const tied = { ...llama, tie_word_embeddings: true };
    const load = (name: string, head: 'same' | 'other') => {
      const reader = weightsFor(tied, name, (w) => {
        const embedding = w['model.embed_tokens.weight'];
        w['lm_head.weight'] = head === 'same' ? embedding : { ...embedding, data: (embedding.data as Float32Array).map((v) => v + 1) };
      });
      try {
        return new LlamaModel(gpu(), parseHfConfig(tied, 'c'), reader);
      } finally {
        reader.close();
      }
    };
    const shared = load('tied-same', 'same');
    expect(shared.lmHead.weightBlocks).toBe(shared.embedTokens);
    expect(shared.parameters.has('lm_head.weight')).toBe(false);
    const separate = load('tied-other', 'other');
    expect(separate.lmHead.weight).not.toBe(separate.embedTokens[0]);
    expect(separate.parameters.has('lm_head.weight')).toBe(true);
  });

  it('dynamic rope: the default frequencies up to max_position_embeddings, longer sequences refused', () => {
    const config = { ...llama, max_position_embeddings: 8, rope_parameters: { rope_type: 'dynamic', rope_theta: 10000, factor: 2 } };
    const reader = weightsFor(config, 'dynamic');
    const g = gpu();
    try {
      const model = new LlamaModel(g, parseHfConfig(config, 'c'), reader);
      const run = (steps: number) => () =>
        noGrad(() => g.tidy(() => model.forward(g.tensor(Array<number>(steps).fill(3), [1, steps], 'u32'), { positions: g.tensor(Array.from({ length: steps }, (_, i) => i), [1, steps], 'u32') })));
      expect(run(8)).not.toThrow();
      expect(run(9)).toThrow(/dynamic RoPE: 9 positions exceed max_position_embeddings 8, past which transformers rescales the frequencies; not supported/);
    } finally {
      reader.close();
    }
  });

  it('resolveModel carries the warnings of a checkpoint directory', () => {
    const model = mkdtempSync(join(dir, 'warned-'));
    writeFileSync(join(model, 'config.json'), JSON.stringify({ ...llama, shiny_new_field: true }));
    writeFileSync(join(model, 'tokenizer.json'), '{}');
    writeSafetensors(join(model, 'model.safetensors'), initialLlamaWeights(parseHfConfig(llama, 'w'), 1));
    expect(resolveModel(model).warnings).toEqual([`${join(model, 'config.json')}: fields not known for LlamaForCausalLM, not used: shiny_new_field=true`]);
  });
});
