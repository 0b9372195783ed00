import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { backward } from '../src/autograd/backward.js';
import { noGrad } from '../src/autograd/grad-node.js';
import { generate } from '../src/generate/generate.js';
import { GgufHfReader } from '../src/io/gguf-hf-reader.js';
import { parseHfConfig } from '../src/io/hf-config.js';
import { RandomLlamaWeights } from '../src/io/random-weights.js';
import { repositoryRoot } from '../src/io/repository-root.js';
import type { TensorReader } from '../src/io/tensor-reader.js';
import { openWeights } from '../src/io/weight-source.js';
import { LlamaModel, rowBlockName, rowBlocks, type LoadOptions } from '../src/model/llama.js';
import { hfTensorsToWrite } from '../src/model/save.js';
import { attachLora } from '../src/nn/lora.js';
import { mul } from '../src/ops/binary.js';
import { sumAll } from '../src/ops/reduce.js';
import { grpoLoss } from '../src/rl/grpo-loss.js';
import { completionLogprobs, sharedPromptBatch, type SequenceInput } from '../src/train/completion-logprobs.js';
import { expectClose } from './helpers/check.js';
import { useGpu } from './helpers/gpu.js';
import { randn } from './helpers/random.js';
import { tinyModel } from './helpers/tiny-checkpoint.js';
import { runPython } from './python/run-python.js';

const gpu = useGpu();

/** tiny's f32 rows are 128 × 4 bytes: blocks of at most 100 rows split its 259 into 87 + 87 + 85. */
const SPLIT: LoadOptions = { vocabularyBlockBytes: 100 * 128 * 4 };

const workDir = mkdtempSync(join(tmpdir(), 'vocabulary-blocks-'));
afterAll(() => rmSync(workDir, { recursive: true, force: true }));

/** Each block of every split matrix holds its rows of the checkpoint's tensor, and is listed under its range. */
async function expectBlocksHoldRows(model: LlamaModel, reader: TensorReader, names: string[]): Promise<void> {
  expect([...model.splitWeights.keys()].sort()).toEqual([...names].sort());
  for (const name of names) {
    const whole = reader.readFloat32(name);
    const blocks = model.splitWeights.get(name)!;
    expect(blocks.length, name).toBeGreaterThan(1);
    const width = blocks[0].shape[1];
    let start = 0;
    for (const block of blocks) {
      const end = start + block.shape[0];
      expect(model.parameters.get(rowBlockName(name, start, end)), `${name} rows ${start}..${end}`).toBe(block);
      expect(await block.toArray(), `${name} rows ${start}..${end}`).toEqual(whole.subarray(start * width, end * width));
      start = end;
    }
    expect(start * width, name).toBe(whole.length);
    expect(model.parameters.has(name), name).toBe(false);
  }
}

describe('embedding and LM head split into blocks of rows (larger than one binding)', () => {
  it('rowBlocks: as few blocks as fit the limit, as even as possible', () => {
    expect(rowBlocks(259, 512, 100 * 512)).toEqual([[0, 87], [87, 174], [174, 259]]);
    expect(rowBlocks(259, 512, 259 * 512)).toEqual([[0, 259]]);
    // 49 152 rows of 2048 f16 (SmolLM2-1.7B's embedding, 192 MiB) in lavapipe's 128 MiB bindings.
    expect(rowBlocks(49152, 4096, 2 ** 27)).toEqual([[0, 24576], [24576, 49152]]);
    expect(rowBlocks(10, 4, 39)).toEqual([[0, 5], [5, 10]]);
    expect(() => rowBlocks(10, 64, 32)).toThrow(/one row of 64 bytes exceeds a binding of 32 bytes/);
  });

  it('a model that fits one binding keeps whole matrices', () => {
    const model = tinyModel(gpu());
    expect(model.embedTokens).toHaveLength(1);
    expect(model.splitWeights.size).toBe(0);
    expect(model.parameters.get('model.embed_tokens.weight')).toBe(model.embedTokens[0]);
  });

  it('places the rows of a safetensors checkpoint, random weights and a GGUF (untied head) in their blocks', async () => {
    const g = gpu();
    const tiny = tinyModel(g, SPLIT);
    expect(tiny.embedTokens.map((b) => b.shape[0])).toEqual([87, 87, 85]);
    expect(tiny.lmHead.weightBlocks).toBe(tiny.embedTokens);
    const tinyReader = openWeights({ format: 'safetensors', path: join(repositoryRoot(), 'models', 'tiny', 'model.safetensors') });
    await expectBlocksHoldRows(tiny, tinyReader, ['model.embed_tokens.weight']);
    // Saved (a merged or fully trained model), the blocks are one tensor again under its own name.
    const written = await hfTensorsToWrite(tiny);
    expect(Object.keys(written).filter((name) => name.includes('embed'))).toEqual(['model.embed_tokens.weight']);
    expect(written['model.embed_tokens.weight'].shape).toEqual([259, 128]);
    expect(written['model.embed_tokens.weight'].data).toEqual(tinyReader.readFloat32('model.embed_tokens.weight'));
    tinyReader.close();

    const untied = parseHfConfig(
      {
        architectures: ['LlamaForCausalLM'], hidden_size: 32, intermediate_size: 48, num_hidden_layers: 1, num_attention_heads: 4,
        num_key_value_heads: 2, head_dim: 8, vocab_size: 301, rms_norm_eps: 1e-5, rope_theta: 10000, max_position_embeddings: 64, tie_word_embeddings: false,
      },
      'untied random',
    );
    const random = new RandomLlamaWeights(untied, 3);
    await expectBlocksHoldRows(new LlamaModel(g, untied, random, { vocabularyBlockBytes: 64 * 32 * 4 }), random, ['model.embed_tokens.weight', 'lm_head.weight']);

    // The fixture's 40-token vocabulary of 64-wide rows (a Q8_0 embedding, an f32 output head) in blocks of 16 rows.
    const fixture = JSON.parse(runPython('make_gguf_fixture.py', ['llama', workDir])) as { path: string };
    const gguf = GgufHfReader.open(fixture.path);
    try {
      const model = new LlamaModel(g, gguf.config, gguf, { vocabularyBlockBytes: 16 * 64 * 4 });
      expect(model.lmHead.weightBlocks.map((b) => b.shape[0])).toEqual([14, 14, 12]);
      await expectBlocksHoldRows(model, gguf, ['model.embed_tokens.weight', 'lm_head.weight']);
    } finally {
      gguf.close();
    }
  });

  for (const dtype of ['f32', 'f16'] as const) {
    it(`logits and a gradient through them equal the whole head's (${dtype})`, async (ctx) => {
      const g = gpu();
      if (dtype === 'f16' && !g.hasF16) ctx.skip();
      const ids = Array.from({ length: 2 * 9 }, (_, i) => (i * 37 + 5) % 259);
      const weights = randn(2 * 9 * 259, 4);
      const run = async (options: LoadOptions) => {
        const model = tinyModel(g, { dtype, ...options });
        const hidden = noGrad(() => model.forward(g.tensor(ids, [2, 9], 'u32'), { positions: g.tensor(ids.map((_, i) => i % 9), [2, 9], 'u32') }));
        hidden.requiresGrad = true;
        const logits = g.tidy(() => {
          const out = model.logits(hidden);
          backward(sumAll(mul(out, g.tensor(weights, out.shape))));
          return out;
        });
        return { blocks: model.lmHead.weightBlocks.length, logits: await logits.toArray(), grad: await hidden.grad!.toArray() };
      };
      const whole = await run({});
      // The same three blocks of rows in either storage.
      const split = await run({ vocabularyBlockBytes: 100 * 128 * (dtype === 'f16' ? 2 : 4) });
      expect([whole.blocks, split.blocks]).toEqual([1, 3]);
      // Every logit is the same dot product over the hidden width, whichever block holds its row.
      expect(split.logits, 'logits').toEqual(whole.logits);
      // d hidden sums over the vocabulary: per block, then across blocks, a reassociated float sum.
      expectClose(split.grad, whole.grad, { atol: 1e-6, rtol: 1e-5 }, 'd hidden');
    });
  }

  it('GRPO: log-probs and loss bit-equal, LoRA gradients within float reassociation', async () => {
    const g = gpu();
    const tokens = (n: number, seed: number) => Array.from({ length: n }, (_, i) => 3 + ((seed * 7 + i * 13) % 250));
    const sequences: SequenceInput[] = [
      ...[5, 2, 7].map((n, i) => ({ promptIds: tokens(6, 1), completionIds: tokens(n, 10 + i) })),
      ...[3, 6].map((n, i) => ({ promptIds: tokens(9, 2), completionIds: tokens(n, 20 + i) })),
    ];
    const step = async (options: LoadOptions) => {
      const model = tinyModel(g, options);
      const lora = attachLora(model, { rank: 4, alpha: 8, seed: 7 });
      // Non-zero B, so the adapters change the logits and every A gets a gradient too.
      lora.modules.forEach((m, i) => g.write(m.b, randn(m.b.size, 100 + i, 0.05)));
      lora.training = true;
      const out = g.tidy(() => {
        const batch = sharedPromptBatch(g, sequences);
        const { logprobs } = completionLogprobs(model, batch);
        const { loss } = grpoLoss(
          { logprobs, advantages: g.tensor(randn(sequences.length, 3), [sequences.length]), mask: batch.mask },
          { beta: 0, epsilonLow: 0.2, epsilonHigh: 0.2, lossType: 'dapo', importanceSampling: 'token', klEstimator: 'k3', numItemsInBatch: 23 },
        );
        backward(loss);
        return { logprobs, loss };
      });
      const grads = await Promise.all(lora.parameters().map((p) => p.grad!.toArray()));
      const result = { logprobs: await out.logprobs.toArray(), loss: await g.readScalar(out.loss), grads };
      lora.dispose();
      return result;
    };
    const whole = await step({});
    const split = await step(SPLIT);
    expect(split.logprobs).toEqual(whole.logprobs);
    expect(split.loss).toBe(whole.loss);
    // The only difference: the LM head's d hidden sums the vocabulary per block (see above), and
    // that rounding difference travels back through four layers into sums over positions, where it
    // meets cancellation: relative to the gradient's largest element (as in the shared-prompt and
    // recomputation tests), lavapipe's worst was 1.9e-6, about 16 f32 ulps.
    split.grads.forEach((grad, i) => {
      const scale = whole.grads[i].reduce((m, x) => Math.max(m, Math.abs(x)), 0);
      expect(scale, `gradient ${i} is non-zero`).toBeGreaterThan(0);
      expectClose(grad, whole.grads[i], { atol: 1e-5 * scale, rtol: 1e-4 }, `LoRA gradient ${i} of ${whole.grads.length}`);
    });
  });

  it('generation: the same greedy and seeded samples', async () => {
    const g = gpu();
    const prompts = [[10, 20, 30, 40, 50, 60], [7], [100, 101, 102]];
    const sample = async (options: LoadOptions) => {
      const model = tinyModel(g, options);
      const greedy = await generate(model, prompts, { maxNewTokens: 12, temperature: 0, eosTokenIds: [] });
      const sampled = await generate(model, prompts, { maxNewTokens: 12, temperature: 1, topK: 50, seed: 5, eosTokenIds: [] });
      return [greedy, sampled].map((run) => run.map((c) => c.tokens));
    };
    expect(await sample(SPLIT)).toEqual(await sample({}));
  });
});
