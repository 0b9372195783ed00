import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { noGrad } from '../src/autograd/grad-node.js';
import { generate } from '../src/generate/generate.js';
import { readHfConfig } from '../src/io/hf-config.js';
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

for (const arch of ['llama', 'qwen2'] as const) {
  describe(`${arch}: our forward against transformers`, () => {
    let dir = '';
    let ref: Reference;
    let model: LlamaModel;
    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), `tiny-${arch}-`));
      await runPythonAsync('tiny_hf_reference.py', [arch, dir]);
      ref = JSON.parse(readFileSync(join(dir, 'reference.json'), 'utf8')) as Reference;
      const reader = openWeights({ format: 'safetensors', path: join(dir, 'model.safetensors') });
      model = new LlamaModel(gpu(), readHfConfig(join(dir, 'config.json')), reader);
      reader.close();
    });

    it('gives the same logits and next-token log-probs on the same ids (f32)', async () => {
      const g = gpu();
      const [batch, steps] = [ref.ids.length, ref.ids[0].length];
      const { logits, logprobs } = noGrad(() =>
        g.tidy(() => {
          const ids = g.tensor(ref.ids.flat(), [batch, steps], 'u32');
          const positions = g.tensor(ref.ids.flatMap((row) => row.map((_, i) => i)), [batch, steps], 'u32');
          const out = model.logits(model.forward(ids, { positions }));
          const targets = g.tensor(ref.ids.flatMap((row) => [...row.slice(1), 0]), [batch * steps], 'u32');
          return { logits: out, logprobs: tokenLogprobs(out, targets) };
        }),
      );
      // f32 throughout on both sides; differences come from summation order only.
      expectClose(await logits.toArray(), ref.logits, { atol: 1e-4, rtol: 1e-4 }, 'logits');
      const ours = await logprobs.toArray();
      const shifted = Array.from({ length: batch }, (_, b) => Array.from(ours.slice(b * steps, b * steps + steps - 1))).flat();
      expectClose(shifted, ref.logprobs, { atol: 1e-4, rtol: 1e-4 }, 'log-probs');
    });

    it('greedy decoding of a left-padded batch reproduces transformers.generate', async () => {
      const completions = await generate(model, ref.prompts, { maxNewTokens: ref.greedy[0].length, temperature: 0, eosTokenIds: [] });
      expect(completions.map((c) => c.tokens)).toEqual(ref.greedy);
      expect(completions.every((c) => c.finishReason === 'length')).toBe(true);
    });
  });
}
