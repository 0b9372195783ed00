import { describe, expect, it } from 'vitest';
import { backward } from '../src/autograd/backward.js';
import { parseHfConfig } from '../src/io/hf-config.js';
import { SafetensorsFile } from '../src/io/safetensors.js';
import { serializeSafetensors } from '../src/io/safetensors-writer.js';
import { initialLlamaWeights } from '../src/io/random-weights.js';
import { LlamaModel } from '../src/model/llama.js';
import { sequenceBatch } from '../src/train/completion-logprobs.js';
import { sftLoss } from '../src/train/sft.js';
import { useGpu } from './helpers/gpu.js';
import { checkParameterGradient } from './helpers/parameter-gradcheck.js';
import { rng } from './helpers/random.js';

const gpu = useGpu();

// A 2-layer toy transformer with every kind of block: GQA attention with RoPE, SwiGLU MLP,
// RMSNorms, tied embeddings; the loss is the SFT cross-entropy over completion tokens.
const config = parseHfConfig(
  {
    architectures: ['LlamaForCausalLM'], hidden_size: 24, intermediate_size: 40, num_hidden_layers: 2,
    num_attention_heads: 3, num_key_value_heads: 1, head_dim: 8, vocab_size: 37, rms_norm_eps: 1e-5,
    rope_theta: 10000, max_position_embeddings: 64, tie_word_embeddings: true,
  },
  'toy config',
);

describe('composite: 2-layer toy transformer', () => {
  it('autograd gradients of the SFT loss match finite differences for every kind of weight', async () => {
    const g = gpu();
    const weights = initialLlamaWeights(config, 3, 0.3);
    // Norm weights away from 1 so their gradients are not special.
    for (const [name, t] of Object.entries(weights)) {
      if (name.endsWith('norm.weight')) (t.data as Float32Array).forEach((_, i, a) => (a[i] = 0.7 + 0.05 * (i % 11)));
    }
    const model = new LlamaModel(g, config, SafetensorsFile.fromBytes(serializeSafetensors(weights)), { trainable: true });
    const examples = [
      { promptIds: [5, 9, 13, 2], completionIds: [7, 30, 1] },
      { promptIds: [3, 36], completionIds: [11, 12, 14, 15, 0] },
    ];
    const batch = g.tidy(() => {
      const b = sequenceBatch(g, examples);
      for (const t of [b.ids, b.positions, b.targets, b.mask]) g.keep(t);
      return b;
    });
    g.tidy(() => backward(sftLoss(model, batch)));
    const pick = rng(17);
    const checked = [
      'model.embed_tokens.weight',
      'model.layers.0.input_layernorm.weight',
      'model.layers.0.self_attn.q_proj.weight',
      'model.layers.0.self_attn.k_proj.weight',
      'model.layers.0.self_attn.v_proj.weight',
      'model.layers.0.self_attn.o_proj.weight',
      'model.layers.1.post_attention_layernorm.weight',
      'model.layers.1.mlp.gate_proj.weight',
      'model.layers.1.mlp.up_proj.weight',
      'model.layers.1.mlp.down_proj.weight',
      'model.norm.weight',
    ];
    for (const name of checked) {
      const p = model.parameters.get(name)!;
      expect(p.grad, `${name} has a gradient`).not.toBeNull();
      await checkParameterGradient(g, p, () => sftLoss(model, batch), pick, name);
    }
  });
});
