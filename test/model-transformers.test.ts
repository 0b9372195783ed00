import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { noGrad } from '../src/autograd/grad-node.js';
import { generate } from '../src/generate/generate.js';
import { type HfModelConfig, readHfConfig } from '../src/io/hf-config.js';
import { openWeights } from '../src/io/weight-source.js';
import { LlamaModel } from '../src/model/llama.js';
import { tokenLogprobs } from '../src/ops/token-logprobs.js';
import { expectClose } from './helpers/check.js';
import { useGpu } from './helpers/gpu.js';
import { runPythonAsync } from './python/run-python.js';

interface Reference {
  ids: number[][];
  logits: number[];
  logprobs: number[];
  prompts: number[][];
  greedy: number[][];
}

const gpu = useGpu();

interface ParityCase {
  name: string;
  arch: 'llama' | 'qwen2' | 'mistral' | 'qwen3';
  /** Config fields given to transformers on top of the script's small defaults. */
  overrides?: Record<string, unknown>;
  /** Fields deleted from the saved config.json, so the loader derives them as transformers would. */
  dropFromConfig?: string[];
  /** What must hold of the loaded config, so the case exercises what it says. */
  expectConfig?: Record<string, unknown>;
  /** The same weights with every layer on full attention must give other logits. */
  windowMatters?: boolean;
}

const CASES: ParityCase[] = [
  { name: 'llama', arch: 'llama' },
  { name: 'qwen2', arch: 'qwen2' },
  {
    name: 'llama: MQA, head_dim ≠ hidden/heads, odd vocab and MLP sizes, attention and MLP biases',
    arch: 'llama',
    overrides: { num_key_value_heads: 1, head_dim: 20, vocab_size: 1003, intermediate_size: 203, attention_bias: true, mlp_bias: true },
    expectConfig: { head_dim: 20, o_proj_bias: true, mlp_bias: true },
  },
  {
    // A window of 4 over 13-token sequences and 5 + 12 generated positions: every later query drops keys.
    name: 'mistral: sliding window 4 on every layer',
    arch: 'mistral',
    overrides: { sliding_window: 4 },
    windowMatters: true,
    expectConfig: { sliding_window: 4, layer_types: ['sliding_attention', 'sliding_attention'] },
  },
  {
    name: "qwen2: use_sliding_window with max_window_layers 1 (layer 0 full, layer 1 window 3), from the config's own fields",
    arch: 'qwen2',
    overrides: { use_sliding_window: true, sliding_window: 3, max_window_layers: 1 },
    windowMatters: true,
    dropFromConfig: ['layer_types'],
    expectConfig: { sliding_window: 3, layer_types: ['full_attention', 'sliding_attention'] },
  },
  {
    name: 'qwen3: per-head q/k RMSNorm, head_dim 24 ≠ hidden/heads, biases',
    arch: 'qwen3',
    overrides: { head_dim: 24, attention_bias: true },
    expectConfig: { head_dim: 24, qk_norm: true, o_proj_bias: true },
  },
  {
    name: 'qwen3: sliding layers listed in layer_types',
    arch: 'qwen3',
    overrides: { head_dim: 16, use_sliding_window: true, sliding_window: 5, layer_types: ['sliding_attention', 'full_attention'] },
    windowMatters: true,
    expectConfig: { sliding_window: 5, layer_types: ['sliding_attention', 'full_attention'] },
  },
  {
    name: 'llama: llama3 rope scaling (Llama 3.1/3.2 style, a short original context so it bites)',
    arch: 'llama',
    overrides: { rope_parameters: { rope_type: 'llama3', rope_theta: 10000, factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 32 } },
    expectConfig: { rope_scaling: { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 32 } },
  },
  {
    name: 'qwen2: yarn rope scaling with its attention factor',
    arch: 'qwen2',
    overrides: { rope_parameters: { rope_type: 'yarn', rope_theta: 10000, factor: 4, original_max_position_embeddings: 64 } },
    expectConfig: { rope_scaling: { rope_type: 'yarn', factor: 4, original_max_position_embeddings: 64 } },
  },
];

for (const c of CASES) {
  describe(`${c.name}: our forward against transformers`, () => {
    let dir = '';
    let ref: Reference;
    let model: LlamaModel;
    let config: HfModelConfig;
    const weights = () => openWeights({ format: 'safetensors', path: join(dir, 'model.safetensors') });
    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), `tiny-${c.arch}-`));
      await runPythonAsync('tiny_hf_reference.py', [c.arch, dir, JSON.stringify(c.overrides ?? {})]);
      ref = JSON.parse(readFileSync(join(dir, 'reference.json'), 'utf8')) as Reference;
      const configPath = join(dir, 'config.json');
      if (c.dropFromConfig) {
        const json = JSON.parse(readFileSync(configPath, 'utf8')) as Record<string, unknown>;
        for (const key of c.dropFromConfig) delete json[key];
        writeFileSync(configPath, JSON.stringify(json));
      }
      config = readHfConfig(configPath);
      expect(config).toMatchObject(c.expectConfig ?? {});
      const reader = weights();
      try {
        model = new LlamaModel(gpu(), config, reader);
      } finally {
        reader.close();
      }
    });

    const forward = (network: LlamaModel) => {
      const g = gpu();
      const [batch, steps] = [ref.ids.length, ref.ids[0].length];
      return noGrad(() =>
        g.tidy(() => {
          const ids = g.tensor(ref.ids.flat(), [batch, steps], 'u32');
          const positions = g.tensor(ref.ids.flatMap((row) => row.map((_, i) => i)), [batch, steps], 'u32');
          const out = network.logits(network.forward(ids, { positions }));
          const targets = g.tensor(ref.ids.flatMap((row) => [...row.slice(1), 0]), [batch * steps], 'u32');
          return { logits: out, logprobs: tokenLogprobs(out, targets) };
        }),
      );
    };

    it('gives the same logits and next-token log-probs on the same ids (f32)', async () => {
      const [batch, steps] = [ref.ids.length, ref.ids[0].length];
      const { logits, logprobs } = forward(model);
      // f32 throughout on both sides; differences come from summation order only.
      expectClose(await logits.toArray(), ref.logits, { atol: 1e-4, rtol: 1e-4 }, 'logits');
      const ours = await logprobs.toArray();
      const shifted = Array.from({ length: batch }, (_, b) => Array.from(ours.slice(b * steps, b * steps + steps - 1))).flat();
      expectClose(shifted, ref.logprobs, { atol: 1e-4, rtol: 1e-4 }, 'log-probs');
    });

    it('greedy decoding of a left-padded batch reproduces transformers.generate', async () => {
      const completions = await generate(model, ref.prompts, { maxNewTokens: ref.greedy[0].length, temperature: 0, eosTokenIds: [] });
      expect(completions.map((completion) => completion.tokens)).toEqual(ref.greedy);
      expect(completions.every((completion) => completion.finishReason === 'length')).toBe(true);
    });

    if (c.windowMatters) {
      it('the window matters: full attention on the same weights gives other logits', async () => {
        const reader = weights();
        const full = new LlamaModel(gpu(), { ...config, layer_types: config.layer_types.map(() => 'full_attention'), sliding_window: null }, reader);
        reader.close();
        const logits = await forward(full).logits.toArray();
        expect(Math.max(...ref.logits.map((v, i) => Math.abs(v - logits[i])))).toBeGreaterThan(0.01);
      });
    }
  });
}
