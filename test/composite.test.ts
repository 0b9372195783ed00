import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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
import { expectClose } from './helpers/check.js';
import { expectGradientClose, SFT_LOSS_TOL, torchSftGradients } from './helpers/torch-sft-gradients.js';

const gpu = useGpu();

// A 2-layer toy transformer with every kind of block: GQA attention with RoPE, SwiGLU MLP,
// RMSNorms, tied embeddings; the loss is the SFT cross-entropy over completion tokens.
const rawConfig = {
  architectures: ['LlamaForCausalLM'], hidden_size: 24, intermediate_size: 40, num_hidden_layers: 2,
  num_attention_heads: 3, num_key_value_heads: 1, head_dim: 8, vocab_size: 37, rms_norm_eps: 1e-5,
  rope_theta: 10000, max_position_embeddings: 64, tie_word_embeddings: true,
};
const config = parseHfConfig(rawConfig, 'toy config');

describe('composite: 2-layer toy transformer', () => {
  it('the SFT loss and the gradient of every weight match transformers and torch autograd in float64', async () => {
    const g = gpu();
    const weights = initialLlamaWeights(config, 3, 0.3);
    // Norm weights away from 1 so their gradients are not special.
    for (const [name, t] of Object.entries(weights)) {
      if (name.endsWith('norm.weight')) (t.data as Float32Array).forEach((_, i, a) => (a[i] = 0.7 + 0.05 * (i % 11)));
    }
    const bytes = serializeSafetensors(weights);
    const dir = mkdtempSync(join(tmpdir(), 'toy-transformer-'));
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...rawConfig, model_type: 'llama' }));
    writeFileSync(join(dir, 'model.safetensors'), bytes);
    const model = new LlamaModel(g, config, SafetensorsFile.fromBytes(bytes), { trainable: true });
    const examples = [
      { promptIds: [5, 9, 13, 2], completionIds: [7, 30, 1] },
      { promptIds: [3, 36], completionIds: [11, 12, 14, 15, 0] },
    ];
    const batch = g.tidy(() => {
      const b = sequenceBatch(g, examples);
      for (const t of [b.ids, b.positions, b.targets, b.mask]) g.keep(t);
      return b;
    });
    const loss = g.tidy(() => {
      const l = sftLoss(model, batch);
      backward(l);
      return g.keep(l);
    });
    const torch = await torchSftGradients(batch, dir);

    expectClose([await g.readScalar(loss)], [torch.loss], SFT_LOSS_TOL, 'loss');
    expect([...model.parameters.keys()].sort()).toEqual(Object.keys(torch.grads).sort());
    for (const [name, p] of model.parameters) {
      expect(p.grad, `${name} has a gradient`).not.toBeNull();
      expectGradientClose(await p.grad!.toArray(), torch.grads[name], name);
    }
    loss.dispose();
    for (const t of [batch.ids, batch.positions, batch.targets, batch.mask]) t.dispose();
  }, 120_000);
});
