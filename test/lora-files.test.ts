import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseHfConfig } from '../src/io/hf-config.js';
import { SafetensorsFile } from '../src/io/safetensors.js';
import { serializeSafetensors, writeSafetensors, type TensorsToWrite } from '../src/io/safetensors-writer.js';
import { initialLlamaWeights } from '../src/io/random-weights.js';
import { LlamaModel } from '../src/model/llama.js';
import { attachLora, loadLora } from '../src/nn/lora.js';
import { parsePeftAdapterConfig } from '../src/nn/lora-peft.js';
import { useGpu } from './helpers/gpu.js';
import { randn } from './helpers/random.js';

const gpu = useGpu();

const config = parseHfConfig(
  {
    architectures: ['LlamaForCausalLM'], hidden_size: 16, intermediate_size: 24, num_hidden_layers: 2,
    num_attention_heads: 2, num_key_value_heads: 1, head_dim: 8, vocab_size: 20, rms_norm_eps: 1e-5,
    rope_theta: 10000, max_position_embeddings: 32, tie_word_embeddings: true,
  },
  'toy config',
);
const newModel = () => new LlamaModel(gpu(), config, SafetensorsFile.fromBytes(serializeSafetensors(initialLlamaWeights(config, 1))));

/** A valid adapter directory (q_proj and v_proj, r = 2) written by our own save. */
let goodDir = '';
beforeAll(async () => {
  const model = newModel();
  const adapters = attachLora(model, { rank: 2, alpha: 4, targetModules: ['q_proj', 'v_proj'], seed: 1 });
  adapters.modules.forEach((m, i) => gpu().write(m.b, randn(m.b.size, i, 0.1)));
  goodDir = mkdtempSync(join(tmpdir(), 'lora-good-'));
  await adapters.save(goodDir, 'toy');
  adapters.dispose();
});

/** A copy of the good adapter with its config and/or tensors changed. */
function variant(edit: { config?: (c: Record<string, unknown>) => void; tensors?: (t: Record<string, TensorsToWrite[string]>) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'lora-bad-'));
  cpSync(goodDir, dir, { recursive: true });
  if (edit.config) {
    const json = JSON.parse(readFileSync(join(dir, 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
    edit.config(json);
    writeFileSync(join(dir, 'adapter_config.json'), JSON.stringify(json));
  }
  if (edit.tensors) {
    const file = SafetensorsFile.open(join(dir, 'adapter_model.safetensors'));
    const tensors: Record<string, TensorsToWrite[string]> = {};
    for (const name of file.tensorNames()) tensors[name] = { dtype: 'F32', shape: file.info(name).shape, data: file.readFloat32(name) };
    file.close();
    edit.tensors(tensors);
    writeSafetensors(join(dir, 'adapter_model.safetensors'), tensors);
  }
  return dir;
}

const Q0_A = 'base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight';

describe('PEFT adapter files', () => {
  it('save writes PEFT names and shapes, and loads back to the same weights', async () => {
    const file = SafetensorsFile.open(join(goodDir, 'adapter_model.safetensors'));
    expect(file.tensorNames().sort()).toEqual(
      [0, 1].flatMap((l) => ['q_proj', 'v_proj'].flatMap((m) => ['A', 'B'].map((x) => `base_model.model.model.layers.${l}.self_attn.${m}.lora_${x}.weight`))).sort(),
    );
    expect(file.info(Q0_A).shape).toEqual([2, 16]);
    expect(file.info('base_model.model.model.layers.1.self_attn.v_proj.lora_B.weight').shape).toEqual([8, 2]);
    const model = newModel();
    const adapters = loadLora(model, goodDir);
    expect(adapters.config).toMatchObject({ rank: 2, alpha: 4, dropout: 0, useRslora: false, targetModules: ['q_proj', 'v_proj'] });
    expect(Array.from(await adapters.modules[0].a.toArray())).toEqual(Array.from(file.readFloat32(Q0_A)));
    expect(adapters.parameters().every((p) => p.requiresGrad && p.dtype === 'f32')).toBe(true);
    file.close();
    adapters.dispose();
  });

  const cases: [string, Parameters<typeof variant>[0], RegExp][] = [
    ['a wrongly shaped tensor', { tensors: (t) => void (t[Q0_A] = { dtype: 'F32', shape: [2, 17], data: new Float32Array(34) }) }, /q_proj\.lora_A\.weight has shape \[2, 17\], expected \[2, 16\]/],
    ['a rank that disagrees with the tensors', { config: (c) => void (c.r = 4) }, /has shape \[2, 16\], expected \[4, 16\] \(r = 4\)/],
    ['a missing tensor', { tensors: (t) => void delete t[Q0_A] }, /missing 1 LoRA tensor.*q_proj\.lora_A\.weight/],
    ['a tensor the config does not cover', { tensors: (t) => void (t['base_model.model.lm_head.lora_A.weight'] = { dtype: 'F32', shape: [2, 16], data: new Float32Array(32) }) }, /does not account for: base_model\.model\.lm_head\.lora_A\.weight/],
    ['a target the model lacks', { config: (c) => void (c.target_modules = ['q_proj', 'embed_tokens']) }, /target module "embed_tokens" matches no linear layer/],
    ['another PEFT method', { config: (c) => void (c.peft_type = 'IA3') }, /peft_type is "IA3", only "LORA"/],
    ['a rank of zero', { config: (c) => void (c.r = 0) }, /"r" must be a positive integer, got 0/],
    ['DoRA', { config: (c) => void (c.use_dora = true) }, /"use_dora" is true; this PEFT feature is not supported/],
    ['trained biases', { config: (c) => void (c.bias = 'lora_only') }, /"bias" is "lora_only"; only "none"/],
    ['dropout of 1', { config: (c) => void (c.lora_dropout = 1) }, /"lora_dropout" must be a number in \[0, 1\)/],
    ['no target_modules', { config: (c) => void delete c.target_modules }, /"target_modules" must be a non-empty list/],
  ];
  for (const [what, edit, message] of cases) {
    it(`refuses ${what} with a clear error, leaving the model untouched`, () => {
      const model = newModel();
      expect(() => loadLora(model, variant(edit))).toThrow(message);
      expect(model.linears().every((l) => l.delta === null)).toBe(true);
    });
  }

  it('refuses a directory without config, invalid JSON, or without weights', () => {
    const model = newModel();
    const empty = mkdtempSync(join(tmpdir(), 'lora-empty-'));
    expect(() => loadLora(model, empty)).toThrow(/no adapter_config\.json, so this is not a PEFT adapter directory/);
    const broken = variant({});
    writeFileSync(join(broken, 'adapter_config.json'), '{"r": 2,');
    expect(() => loadLora(model, broken)).toThrow(/adapter_config\.json: invalid JSON/);
    const noWeights = variant({});
    rmSync(join(noWeights, 'adapter_model.safetensors'));
    writeFileSync(join(noWeights, 'adapter_model.bin'), '');
    expect(() => loadLora(model, noWeights)).toThrow(/no adapter_model\.safetensors \(adapter_model\.bin, a pickle, is not read/);
  });

  it('accepts a regular-expression target_modules and "all-linear" as PEFT does', () => {
    const settings = parsePeftAdapterConfig({ peft_type: 'LORA', r: 2, lora_alpha: 2, target_modules: '.*\\.(q_proj|down_proj)' }, 'inline');
    const model = newModel();
    const adapters = attachLora(model, { ...settings, seed: 0 });
    expect(adapters.modules.map((m) => m.linear.name)).toEqual(['model.layers.0.self_attn.q_proj', 'model.layers.0.mlp.down_proj', 'model.layers.1.self_attn.q_proj', 'model.layers.1.mlp.down_proj']);
    adapters.dispose();
    const all = attachLora(model, { rank: 1, alpha: 1, targetModules: 'all-linear' });
    expect(all.modules).toHaveLength(14);
    all.dispose();
  });

  it('refuses to attach twice, and bad options', () => {
    const model = newModel();
    const adapters = attachLora(model, { rank: 2, alpha: 4 });
    expect(() => attachLora(model, { rank: 2, alpha: 4 })).toThrow(/already has a delta term/);
    adapters.dispose();
    expect(() => attachLora(model, { rank: 0, alpha: 4 })).toThrow(/rank must be a positive integer/);
    expect(() => attachLora(model, { rank: 2, alpha: 4, dropout: 1 })).toThrow(/dropout must be in \[0, 1\)/);
    expect(() => attachLora(model, { rank: 2, alpha: 4, targetModules: ['q_prj'] })).toThrow(/"q_prj" matches no linear layer/);
    expect(model.linears().every((l) => l.delta === null)).toBe(true);
  });
});
